/**
 * A request's grant: the permits of every slot of its plan, taken in one synchronous step and
 * released all at once, exactly once.
 */
import type { Plan, Slot } from './admission-plan.ts';
import type { Grant } from './decision.ts';
import type { Limiter, Permit } from './limiter.ts';
import type { Outcome } from './limit-algorithm.ts';
import { wakeOldestFirst } from './waiter.ts';

/**
 * Takes a permit in every slot of `plan`. The caller has just checked that each has room;
 * `force` (dry run) takes them without room.
 */
export function takeGrant(plan: Plan, key: string, force: boolean): Grant {
  const slots = plan.slots;
  // One fixed slot: its permit already releases once and wakes its queue.
  if (plan.single) return take((slots[0] as Slot).obtain(key), force);
  const permits = new Array<Permit>(slots.length);
  for (let i = 0; i < slots.length; i++) permits[i] = take((slots[i] as Slot).obtain(key), force);
  return new RequestGrant(plan, key, permits);
}

function take(l: Limiter, force: boolean): Permit {
  const p = force ? l.forceAcquire() : l.tryAcquire();
  // Room was checked in the same synchronous step, so this would be a bug in admission.
  if (p === undefined) throw new Error(`admission: ${l.name} has no room after the check`);
  return p;
}

class RequestGrant implements Grant {
  private permits: Permit[] | undefined;
  private readonly plan: Plan;
  private readonly key: string;

  constructor(plan: Plan, key: string, permits: Permit[]) {
    this.plan = plan;
    this.key = key;
    this.permits = permits;
  }

  release(outcome?: Outcome): void {
    const permits = this.permits;
    if (permits === undefined) return;
    this.permits = undefined;
    const slots = this.plan.slots;
    // Give everything back before anyone retries, so a waiter does not find this request's
    // global permit still held after its route permit came free.
    for (let i = 0; i < permits.length; i++) {
      (permits[i] as Permit).releaseQuiet(outcome);
      (slots[i] as Slot).released(this.key);
    }
    wakeOldestFirst(this.plan.queues);
  }
}
