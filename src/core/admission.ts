/**
 * The admission decision for one request over every limiter that applies to it: `global`,
 * the first matching route's `route:<name>`, and, when switched on, the per-client `client`
 * and `route:<name>:client`. A request is admitted only when all of them have room, and takes
 * them all in one synchronous step; while it waits it holds nothing.
 *
 * Each config compiles to a plan per route (admission-plan.ts: the slots in check order);
 * admission loops over the slots under a policy (admission-policy.ts: enforce or dry run).
 * A waiter woken from one queue retries all its slots in the same order; if another one
 * lacks room it moves to the tail of that one's queue, keeping the earlier deadline.
 */
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import type { Config } from './config-schema.ts';
import { LimiterSet } from './admission-plan.ts';
import type { AdmissionPlan, LimiterSetOptions, Plan } from './admission-plan.ts';
import { dryRun, enforce } from './admission-policy.ts';
import type { AdmissionCore, AdmissionPolicy } from './admission-policy.ts';
import { newDecision } from './decision.ts';
import { rejectStatus } from './reject-response.ts';
import type { Decision, PendingDecision, Reason } from './decision.ts';
import type { Limiter, LimiterSnapshot } from './limiter.ts';
import type { RequestInfo } from './route-match.ts';
import { Waiter } from './waiter.ts';
import type { WaiterOwner } from './waiter.ts';

export type { RequestInfo } from './route-match.ts';
export type { Decision, Grant, PendingDecision, Reason } from './decision.ts';

/** `adaptive`: the factory of adaptive limits (default createAdaptiveLimit); `changes`: where their moves are reported. */
export interface AdmissionOptions extends LimiterSetOptions {
  clock?: Clock;
}

export class Admission {
  private readonly state: AdmissionState;

  constructor(config: Config, options: AdmissionOptions = {}) {
    const { clock, ...limits } = options;
    this.state = new AdmissionState(config, clock ?? systemClock, limits);
  }

  /** Synchronous decision; a PendingDecision only when the request was queued. */
  admit(req: RequestInfo): Decision | PendingDecision {
    return this.state.admit(req);
  }

  /**
   * Live reload in one step: limiters are resized in place by name (an adaptive limit retuned,
   * or its algorithm replaced in place when it switches between fixed and adaptive or between
   * algorithms); a new route gets a new limiter; a removed route is no longer matched but its
   * limiter keeps counting its in-flight requests and keeps its queued waiters until they are
   * admitted or time out.
   */
  update(config: Config): void {
    this.state.update(config);
  }

  /** The live limiters: global, routes, per-client ones, and retired ones still busy. */
  limiters(): Iterable<Limiter> {
    return this.state.set.all();
  }

  snapshot(): LimiterSnapshot[] {
    return Array.from(this.state.set.all(), (l) => l.snapshot());
  }
}

class AdmissionState implements AdmissionCore, WaiterOwner {
  readonly set: LimiterSet;
  private readonly clock: Clock;
  private plan: AdmissionPlan;
  private policy: AdmissionPolicy = enforce;
  private order = 0;

  constructor(config: Config, clock: Clock, limits: LimiterSetOptions) {
    this.clock = clock;
    this.set = new LimiterSet(config, clock, limits);
    this.plan = this.set.apply(config);
    this.policy = config.dryRun ? dryRun : enforce;
  }

  admit(req: RequestInfo): Decision | PendingDecision {
    const i = this.plan.match(req);
    const plan = i < 0 ? this.plan.none : (this.plan.routes[i] as Plan);
    if (plan.bypass !== undefined) return plan.bypass;
    return this.policy.admit(this, plan, req.client);
  }

  now(): number {
    return this.clock.now();
  }

  statusOf(reason: Reason): number {
    return rejectStatus(this.plan.reject, reason);
  }

  wait(plan: Plan, key: string, l: Limiter): PendingDecision {
    const now = this.clock.now();
    const w = new Waiter({ owner: this, order: ++this.order, arrival: now, plan, key, queueDepth: l.queued });
    l.enqueue(w, now + l.queueTimeout);
    return w;
  }

  /** `w` was taken off `from`'s queue because `from` has room. */
  retry(w: Waiter, from: Limiter): void {
    const now = this.clock.now();
    // A late timer must not let a waiter in after its deadline.
    if (now >= w.deadline) return this.timeout(w, from, now);
    this.policy.retry(this, w, now);
  }

  timedOut(w: Waiter, from: Limiter): void {
    this.timeout(w, from, this.clock.now());
  }

  private timeout(w: Waiter, from: Limiter, now: number): void {
    const d = newDecision('rejected', from);
    d.reason = 'queue_timeout';
    this.finish(w, d, now);
  }

  finish(w: Waiter, d: Decision, now: number): void {
    d.queueDepth = w.queueDepth;
    d.queueWaitMs = now - w.arrival;
    d.route = w.plan.routeName;
    d.status = d.reason === undefined ? 0 : this.statusOf(d.reason);
    // Only an admit can happen under dry run (the queue is let through when it is switched on).
    d.dryRun = d.decision === 'admitted' && this.policy.dryRun;
    w.resolve(d);
  }

  update(config: Config): void {
    // Throws before anything changed when the config is invalid.
    this.plan = this.set.apply(config);
    this.policy = config.dryRun ? dryRun : enforce;
    const queues = this.set.queues();
    // Queued requests keep the route limiter they arrived with; their per-client slots follow
    // the new config, as a newcomer's would.
    for (const l of queues) {
      for (const e of l.waiting()) {
        const w = e as Waiter;
        w.plan = this.set.plan(w.plan.route, w.plan.routeLimiter);
      }
    }
    this.policy.settle(this, queues);
  }
}
