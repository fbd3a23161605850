/**
 * A concurrency limiter: a count of permits held against a `max`, and a FIFO queue of entries
 * waiting for room. It never blocks: `tryAcquire()` returns a permit or nothing. Waiting is the
 * caller's business (see admission.ts): the queue only keeps entries in order, runs their
 * deadlines on the injected Clock, and hands the head back (`onRoom`) whenever room appears.
 * Limits are resized in place on reload so that permits in flight stay counted.
 */
import type { Clock, TimerHandle } from './clock.ts';
import { systemClock } from './clock.ts';
import { PortcullisError } from './errors.ts';

export type LimiterKind = 'global' | 'route' | 'client' | 'route-client';

export interface LimiterLimits {
  /** Permits held at most; 0 admits nothing. */
  max: number;
  /** Entries queued at most; 0 = no queue. */
  queueSize: number;
  /** Longest wait in the queue, ms. */
  queueTimeout: number;
}

export interface Permit {
  /** Idempotent: only the first call gives the permit back. */
  release(): void;
}

export interface LimiterSnapshot {
  name: string;
  kind: LimiterKind;
  inflight: number;
  max: number;
  queued: number;
  queueSize: number;
  queueTimeout: number;
  /** Highest in-flight count seen. */
  peak: number;
  /** Permits handed out and given back since creation; equal when idle. */
  acquired: number;
  released: number;
}

/**
 * Something waiting in a limiter's queue. The links are intrusive so that removing an entry
 * from the middle (timeout, cancel, move to another queue) is O(1) and allocates nothing.
 */
export abstract class QueueEntry {
  /** Arrival order across all queues, so a caller waking several queues can take the oldest head first. */
  readonly order: number;
  /** When the entry leaves the queue with `onDeadline`; set by `enqueue`. */
  deadline = 0;
  /** The limiter whose queue holds this entry, if any. The fields below belong to it. */
  queue: Limiter | undefined = undefined;
  /** @internal */ prev: QueueEntry | undefined = undefined;
  /** @internal */ next: QueueEntry | undefined = undefined;
  /** @internal */ timer: TimerHandle | undefined = undefined;

  constructor(order: number) {
    this.order = order;
  }

  /** `from` has room and has already taken this entry off its queue. */
  abstract onRoom(from: Limiter): void;
  /** The deadline passed; `from` has already taken this entry off its queue. */
  abstract onDeadline(from: Limiter): void;
}

/** Throws when limits are not whole, non-negative numbers (the config schema should have caught it). */
export function checkLimits(name: string, limits: LimiterLimits): LimiterLimits {
  const bad = (field: string, v: number) =>
    new PortcullisError('CONFIG_INVALID', `limiter ${name}: ${field} must be a whole number >= 0, got ${String(v)}`);
  if (!Number.isInteger(limits.max) || limits.max < 0) throw bad('max', limits.max);
  if (!Number.isInteger(limits.queueSize) || limits.queueSize < 0) throw bad('queueSize', limits.queueSize);
  if (!Number.isFinite(limits.queueTimeout) || limits.queueTimeout < 0) throw bad('queueTimeout', limits.queueTimeout);
  return limits;
}

class LimiterPermit implements Permit {
  private limiter: Limiter | undefined;
  constructor(limiter: Limiter) {
    this.limiter = limiter;
  }
  release(): void {
    const l = this.limiter;
    if (l === undefined) return;
    this.limiter = undefined;
    l.releaseUnchecked();
    l.wake();
  }
}

export class Limiter {
  readonly name: string;
  readonly kind: LimiterKind;
  private readonly clock: Clock;
  private _max: number;
  private _queueSize: number;
  private _queueTimeout: number;
  private _inflight = 0;
  private _peak = 0;
  private _acquired = 0;
  private _released = 0;
  private head: QueueEntry | undefined = undefined;
  private tail: QueueEntry | undefined = undefined;
  private length = 0;

  constructor(name: string, kind: LimiterKind, limits: LimiterLimits, clock: Clock = systemClock) {
    checkLimits(name, limits);
    this.name = name;
    this.kind = kind;
    this.clock = clock;
    this._max = limits.max;
    this._queueSize = limits.queueSize;
    this._queueTimeout = limits.queueTimeout;
  }

  get inflight(): number {
    return this._inflight;
  }
  get max(): number {
    return this._max;
  }
  get queued(): number {
    return this.length;
  }
  get queueSize(): number {
    return this._queueSize;
  }
  get queueTimeout(): number {
    return this._queueTimeout;
  }
  get peak(): number {
    return this._peak;
  }
  get acquired(): number {
    return this._acquired;
  }
  get released(): number {
    return this._released;
  }
  /** Holding permits or entries: must not be forgotten while so. */
  get busy(): boolean {
    return this._inflight > 0 || this.length > 0;
  }

  hasRoom(): boolean {
    return this._inflight < this._max;
  }

  /** A permit, or undefined when full or when someone is already waiting (no overtaking). */
  tryAcquire(): Permit | undefined {
    if (this._inflight >= this._max || this.head !== undefined) return undefined;
    this.acquireUnchecked();
    return new LimiterPermit(this);
  }

  /**
   * Counts a permit without checking room. For a caller that has just checked `hasRoom()` on
   * every limiter a request needs (so that taking them all is one step), or for dry run.
   */
  acquireUnchecked(): void {
    const n = ++this._inflight;
    this._acquired++;
    if (n > this._peak) this._peak = n;
  }

  /**
   * Uncounts a permit taken with `acquireUnchecked`, exactly once per permit. Does not wake
   * the queue, so a request holding several limiters can give them all back before any
   * waiter retries; call `wake()` afterwards.
   */
  releaseUnchecked(): void {
    this._inflight--;
    this._released++;
  }

  /** Applies new limits in place and wakes waiters if the max went up. */
  resize(limits: LimiterLimits): void {
    this.setLimits(limits);
    this.wake();
  }

  /**
   * Applies new limits without waking anyone, for a reload that resizes several limiters and
   * must not let a waiter retry against half-applied limits. A lower max admits nothing until
   * the count falls below it; a lower queueSize keeps the entries already queued (a reload
   * never drops a queued request) and accepts new ones once below; entries keep the deadline
   * they were given.
   */
  setLimits(limits: LimiterLimits): void {
    checkLimits(this.name, limits);
    this._max = limits.max;
    this._queueSize = limits.queueSize;
    this._queueTimeout = limits.queueTimeout;
  }

  /** Whether `enqueue` would take one more entry. A max of 0 never frees room, so it never queues. */
  canQueue(): boolean {
    return this._max > 0 && this.length < this._queueSize;
  }

  /** Appends at the tail with an absolute deadline (Clock time); false when the queue is full. */
  enqueue(entry: QueueEntry, deadline: number): boolean {
    if (!this.canQueue() || entry.queue !== undefined) return false;
    entry.queue = this;
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail === undefined) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    this.length++;
    entry.deadline = deadline;
    entry.timer = this.clock.setTimer(() => this.expire(entry), Math.max(0, deadline - this.clock.now()));
    return true;
  }

  /** Takes the entry off this queue (cancel); false when it was not queued here. */
  remove(entry: QueueEntry): boolean {
    if (entry.queue !== this) return false;
    this.unlink(entry);
    return true;
  }

  peek(): QueueEntry | undefined {
    return this.head;
  }

  /** Takes the head off without asking for room (used when a reload switches to dry run). */
  dequeue(): QueueEntry | undefined {
    const e = this.head;
    if (e !== undefined) this.unlink(e);
    return e;
  }

  /** If there is room and a waiter, hands the head its chance (`onRoom`); true when it did. */
  wakeOne(): boolean {
    if (this._inflight >= this._max) return false;
    const e = this.head;
    if (e === undefined) return false;
    this.unlink(e);
    e.onRoom(this);
    return true;
  }

  /** Hands the head its chance while there is room; keeps "room => empty queue" true. */
  wake(): void {
    // Bounded by the current length in case an entry came back to this queue, which would loop.
    for (let n = this.length; n > 0 && this.wakeOne(); n--);
  }

  /** Queued entries, head first (stats and tests). */
  *waiting(): IterableIterator<QueueEntry> {
    for (let e = this.head; e !== undefined; e = e.next) yield e;
  }

  snapshot(): LimiterSnapshot {
    return {
      name: this.name,
      kind: this.kind,
      inflight: this._inflight,
      max: this._max,
      queued: this.length,
      queueSize: this._queueSize,
      queueTimeout: this._queueTimeout,
      peak: this._peak,
      acquired: this._acquired,
      released: this._released,
    };
  }

  private expire(entry: QueueEntry): void {
    if (entry.queue !== this) return;
    entry.timer = undefined;
    this.unlink(entry);
    entry.onDeadline(this);
  }

  private unlink(e: QueueEntry): void {
    if (e.prev === undefined) this.head = e.next;
    else e.prev.next = e.next;
    if (e.next === undefined) this.tail = e.prev;
    else e.next.prev = e.prev;
    e.prev = undefined;
    e.next = undefined;
    e.queue = undefined;
    this.length--;
    if (e.timer !== undefined) {
      this.clock.clearTimer(e.timer);
      e.timer = undefined;
    }
  }
}
