/**
 * A request's grant: the permits of every slot of its plan, taken in one synchronous step and
 * released all at once, exactly once.
 */
import type { Plan, Slot } from './admission-plan.ts';
import type { Grant } from './decision.ts';
import type { Limiter, Permit } from './limiter.ts';
import type { ReleaseOutcome, ReleaseTiming } from './release-outcome.ts';
import { wakeOldestFirst } from './waiter.ts';

/**
 * Takes a permit in every slot of `plan`. The caller has just checked that each has room;
 * `force` (dry run) takes them without room.
 */
export function takeGrant(plan: Plan, key: string, force: boolean): Grant {
  const slots = plan.slots;
  const first = take((slots[0] as Slot).obtain(key), force);
  // One fixed slot: its permit already releases once and wakes its queue.
  if (plan.single) return first;
  let last = first;
  for (let i = 1; i < slots.length; i++) {
    const p = take((slots[i] as Slot).obtain(key), force);
    last.next = p;
    last = p;
  }
  return new RequestGrant(plan, key, first);
}

function take(l: Limiter, force: boolean): Permit {
  const p = force ? l.forceAcquire() : l.tryAcquire();
  // Room was checked in the same synchronous step, so this would be a bug in admission.
  if (p === undefined) throw new Error(`admission: ${l.name} has no room after the check`);
  return p;
}

class RequestGrant implements Grant {
  /** The permits, one per slot in slot order, chained through `next`; undefined once released. */
  private first: Permit | undefined;
  private readonly plan: Plan;
  private readonly key: string;

  constructor(plan: Plan, key: string, first: Permit) {
    this.plan = plan;
    this.key = key;
    this.first = first;
  }

  release(outcome?: ReleaseOutcome, timing?: ReleaseTiming): void {
    let p = this.first;
    if (p === undefined) return;
    this.first = undefined;
    const slots = this.plan.slots;
    // Give everything back before anyone retries, so a waiter does not find this request's
    // global permit still held after its route permit came free.
    for (let i = 0; p !== undefined; p = p.next, i++) {
      p.releaseQuiet(outcome, timing);
      (slots[i] as Slot).released(this.key);
    }
    wakeOldestFirst(this.plan.queues);
  }
}
