/**
 * A queued request, and the one way queues are woken: oldest head first across queues.
 * A waiter woken from one queue retries all its slots; if another one lacks room it moves to
 * the tail of that one's queue, keeping the earlier deadline (see admission.ts).
 */
import type { Plan } from './admission-plan.ts';
import type { Decision, Grant, PendingDecision } from './decision.ts';
import { QueueEntry } from './limiter.ts';
import type { Limiter } from './limiter.ts';

/** What a waiter calls back into when its queue hands it room or its deadline passes. */
export interface WaiterOwner {
  retry(w: Waiter, from: Limiter): void;
  timedOut(w: Waiter, from: Limiter): void;
}

export interface WaiterFields {
  owner: WaiterOwner;
  order: number;
  arrival: number;
  plan: Plan;
  key: string;
  queueDepth: number;
}

export class Waiter extends QueueEntry implements PendingDecision {
  readonly pending = true;
  readonly promise: Promise<Decision | null>;
  readonly arrival: number;
  /** Its slots: the route limiter it arrived with, the per-client slots of the current config. */
  plan: Plan;
  readonly key: string;
  /** Queue length found on arrival. */
  readonly queueDepth: number;
  /** Set once the decision is out; a late cancel() releases it. */
  grant: Grant | undefined = undefined;
  settled = false;
  private readonly owner: WaiterOwner;
  private settle: (d: Decision | null) => void = () => {};

  constructor(f: WaiterFields) {
    super(f.order);
    this.owner = f.owner;
    this.arrival = f.arrival;
    this.plan = f.plan;
    this.key = f.key;
    this.queueDepth = f.queueDepth;
    this.promise = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  onRoom(from: Limiter): void {
    this.owner.retry(this, from);
  }

  onDeadline(from: Limiter): void {
    this.owner.timedOut(this, from);
  }

  resolve(d: Decision | null): void {
    if (this.settled) return;
    this.settled = true;
    this.grant = d?.grant;
    this.settle(d);
  }

  cancel(): void {
    if (this.queue !== undefined) {
      this.queue.remove(this);
      this.resolve(null);
    } else if (this.settled) this.grant?.release();
  }
}

/**
 * Wakes the queues that have room, always the oldest head first across them, until none has
 * both room and a waiter. After a release (the request's route and global queues) and after
 * a reload (every queue).
 */
export function wakeOldestFirst(queues: readonly Limiter[]): void {
  for (;;) {
    let best: Limiter | undefined;
    let bestOrder = Infinity;
    for (let i = 0; i < queues.length; i++) {
      const l = queues[i] as Limiter;
      const h = l.hasRoom() ? l.peek() : undefined;
      if (h !== undefined && h.order < bestOrder) {
        best = l;
        bestOrder = h.order;
      }
    }
    if (best === undefined) return;
    best.wakeOne();
  }
}
