/**
 * What admission does with a plan's slots: enforce (admit, queue or reject), or dry run
 * (decide as if enforcing, report, and let everything through). A reload picks one; nothing
 * else in admission asks which.
 */
import type { Plan, Slot } from './admission-plan.ts';
import { newDecision } from './decision.ts';
import type { Decision, Grant, PendingDecision, Reason } from './decision.ts';
import type { Limiter } from './limiter.ts';
import { takeGrant } from './request-grant.ts';
import { wakeOldestFirst } from './waiter.ts';
import type { Waiter } from './waiter.ts';

/** What a policy needs of admission. */
export interface AdmissionCore {
  now(): number;
  statusOf(reason: Reason): number;
  /** Queues a newcomer at the tail of `l`'s queue. */
  wait(plan: Plan, key: string, l: Limiter): PendingDecision;
  /** Resolves a waiter with `d`, filling in its queue depth, wait, route, status and dry run. */
  finish(w: Waiter, d: Decision, now: number): void;
}

export interface AdmissionPolicy {
  readonly dryRun: boolean;
  /** A newcomer, over its plan. */
  admit(core: AdmissionCore, plan: Plan, key: string): Decision | PendingDecision;
  /** `w` was taken off a queue that has room, before its deadline: try all its slots again. */
  retry(core: AdmissionCore, w: Waiter, now: number): void;
  /** A reload put this policy in place: what becomes of the queued requests. */
  settle(core: AdmissionCore, queues: readonly Limiter[]): void;
}

/** Index of the first slot, in check order, whose limiter lacks room; -1 when all have room. */
export function firstBlocked(plan: Plan, key: string): number {
  const slots = plan.slots;
  for (let i = 0; i < slots.length; i++) {
    const l = (slots[i] as Slot).find(key);
    if (l !== undefined && !l.hasRoom()) return i;
  }
  return -1;
}

/**
 * Invariant kept throughout: a queueing limiter with room has an empty queue (every release
 * or raise of a max drains the queue at once), so `hasRoom()` alone never lets a newcomer
 * overtake.
 */
export const enforce: AdmissionPolicy = {
  dryRun: false,

  admit(core, plan, key) {
    const i = firstBlocked(plan, key);
    if (i < 0) return admitted(plan, takeGrant(plan, key, false));
    const slot = plan.slots[i] as Slot;
    const l = slot.find(key) as Limiter;
    // Per-client limiters never queue, so a client at its cap is refused here.
    if (l.canQueue()) return core.wait(plan, key, l);
    const d = rejected(slot.refusal(l), l);
    d.queueDepth = l.queued;
    d.route = plan.routeName;
    d.status = core.statusOf(d.reason as Reason);
    return d;
  },

  retry(core, w, now) {
    const plan = w.plan;
    const i = firstBlocked(plan, w.key);
    if (i < 0) return core.finish(w, admitted(plan, takeGrant(plan, w.key, false)), now);
    const slot = plan.slots[i] as Slot;
    const l = slot.find(w.key) as Limiter;
    if (!l.canQueue()) return core.finish(w, rejected(slot.refusal(l), l), now);
    // Another slot lacks room: to the tail of its queue, keeping the earlier deadline.
    const deadline = Math.min(w.deadline, w.arrival + l.queueTimeout);
    if (deadline <= now) return core.finish(w, rejected('queue_timeout', l), now);
    l.enqueue(w, deadline);
  },

  settle(_core, queues) {
    wakeOldestFirst(queues);
  },
};

/**
 * Dry run: decide as if enforcing, but let everything through and count it (a grant is always
 * given, so in-flight counts stay meaningful and may exceed max). Nothing queues: a full
 * limiter with a queue counts the requests over its max as its would-be queue, so a request
 * is a would-be admit while it is less than queueSize over max (queueDepth = how far over max
 * it found the limiter) and a would-be queue_full beyond.
 */
export const dryRun: AdmissionPolicy = {
  dryRun: true,

  admit(core, plan, key) {
    const slots = plan.slots;
    let depth = 0;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i] as Slot;
      const l = slot.find(key);
      if (l === undefined || l.hasRoom()) continue;
      if (slot.family === undefined && wouldQueue(l)) {
        depth = Math.max(depth, l.inflight - l.max);
        continue;
      }
      const reason = slot.refusal(l);
      // Report the counts found, as an enforced reject would, then let it through anyway.
      const d = rejected(reason, l);
      d.queueDepth = reason === 'queue_full' ? l.inflight - l.max : 0;
      d.route = plan.routeName;
      d.status = core.statusOf(reason);
      d.dryRun = true;
      d.grant = takeGrant(plan, key, true);
      return d;
    }
    const d = admitted(plan, takeGrant(plan, key, true));
    d.queueDepth = depth;
    d.dryRun = true;
    return d;
  },

  retry(core, w, now) {
    core.finish(w, admitted(w.plan, takeGrant(w.plan, w.key, true)), now);
  },

  /** Switching to dry run lets everyone queued through at once: dry run never holds a request. */
  settle(core, queues) {
    const now = core.now();
    for (const l of queues) {
      for (let e = l.dequeue(); e !== undefined; e = l.dequeue()) {
        const w = e as Waiter;
        core.finish(w, admitted(w.plan, takeGrant(w.plan, w.key, true)), now);
      }
    }
  },
};

/** Admitted over `plan`, once its grant is taken (the reported count includes this request). */
function admitted(plan: Plan, grant: Grant): Decision {
  const d = newDecision('admitted', plan.reporter);
  d.route = plan.routeName;
  d.grant = grant;
  return d;
}

function rejected(reason: Reason, by: Limiter): Decision {
  const d = newDecision('rejected', by);
  d.reason = reason;
  return d;
}

/** A full limiter would have queued the request while less than queueSize over max. */
function wouldQueue(l: Limiter): boolean {
  return l.max > 0 && l.inflight - l.max < l.queueSize;
}
