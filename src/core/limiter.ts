/**
 * A concurrency limiter: a count of permits held against the limit its `LimitAlgorithm` gives
 * (src/core/limit-algorithm.ts; a `FixedLimit` unless told otherwise), and a FIFO queue of
 * entries waiting for room. It never blocks: `tryAcquire()` returns a permit or nothing.
 * Waiting is the caller's business (see admission.ts): the queue only keeps entries in order,
 * runs their deadlines on the injected Clock, and hands the head back (`onRoom`) whenever room
 * appears. Limits are resized in place on reload so that permits in flight stay counted, and
 * the algorithm itself can be replaced in place (fixed <-> adaptive) for the same reason.
 */
import type { Clock, TimerHandle } from './clock.ts';
import { systemClock } from './clock.ts';
import { PortcullisError } from './errors.ts';
import { FixedLimit } from './limit-algorithm.ts';
import type { LimitAlgorithm, LimitListener, LimitSample } from './limit-algorithm.ts';
import type { AdaptiveConfig, AdaptiveLimit, AdaptiveSnapshot } from './limits/adaptive.ts';
import type { ReleaseOutcome, ReleaseTiming } from './release-outcome.ts';

export type LimiterKind = 'global' | 'route' | 'client' | 'route-client';

export interface LimiterLimits {
  /** Permits held at most while the limit is a `FixedLimit` (an adaptive one finds its own); 0 admits nothing. */
  max: number;
  /** Entries queued at most; 0 = no queue. */
  queueSize: number;
  /** Longest wait in the queue, ms. */
  queueTimeout: number;
}

export interface LimiterOptions {
  name: string;
  kind: LimiterKind;
  /** Queue settings, and the max of the `FixedLimit` made when no `algorithm` is given. */
  limits: LimiterLimits;
  clock?: Clock;
  /** Rules the limit (`limits.max` is then not used, except to set a `FixedLimit` on reload). */
  algorithm?: LimitAlgorithm;
}

/** An algorithm that learns its limit (src/core/limits/adaptive.ts), as opposed to a fixed one. */
export function isAdaptive(a: LimitAlgorithm): a is AdaptiveLimit {
  return a.wantsSamples && typeof (a as Partial<AdaptiveLimit>).snapshot === 'function' && typeof (a as Partial<AdaptiveLimit>).retune === 'function';
}

export interface Permit {
  /**
   * Gives the permit back with how the request went (default 'ignored': teaches the limit
   * nothing) and wakes the limiter's queue. Idempotent: only the first call counts, and the
   * algorithm gets one sample per permit. `timing` narrows the sample's RTT to the app's part
   * of the exchange (see ReleaseTiming); without it the RTT runs from acquire to now.
   */
  release(outcome?: ReleaseOutcome, timing?: ReleaseTiming): void;
  /**
   * The same without waking anyone, for a holder of several permits that gives them all back
   * before any waiter retries, then wakes the queues itself. False when already released.
   */
  releaseQuiet(outcome?: ReleaseOutcome, timing?: ReleaseTiming): boolean;
  /**
   * A link for a holder of several permits (a request's grant) to chain them, so that holding
   * them allocates no list; the limiter never reads it.
   */
  next: Permit | undefined;
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
  /** Only for an adaptive limiter (`max` is then the limit it has found so far). */
  adaptive?: AdaptiveSnapshot;
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

/** A permit's `startedAt` when no clock was read for it (its algorithm wanted no samples): it reports no sample. */
export const UNTIMED = -1;

class LimiterPermit implements Permit {
  next: Permit | undefined = undefined;
  private limiter: Limiter | undefined;
  /** Clock time when taken; `UNTIMED` when the algorithm wanted no samples then (no clock read). */
  private readonly startedAt: number;
  private readonly inflightAtStart: number;

  constructor(limiter: Limiter, startedAt: number, inflightAtStart: number) {
    this.limiter = limiter;
    this.startedAt = startedAt;
    this.inflightAtStart = inflightAtStart;
  }

  release(outcome: ReleaseOutcome = 'ignored', timing?: ReleaseTiming): void {
    const l = this.limiter;
    if (l === undefined) return;
    this.limiter = undefined;
    l.giveBack(this.startedAt, this.inflightAtStart, outcome, timing);
    l.wake();
  }

  releaseQuiet(outcome: ReleaseOutcome = 'ignored', timing?: ReleaseTiming): boolean {
    const l = this.limiter;
    if (l === undefined) return false;
    this.limiter = undefined;
    l.giveBack(this.startedAt, this.inflightAtStart, outcome, timing);
    return true;
  }
}

export class Limiter implements LimitListener {
  readonly name: string;
  readonly kind: LimiterKind;
  private algo: LimitAlgorithm;
  private readonly clock: Clock;
  /** The algorithm when it is a FixedLimit, which `setLimits` sets from `limits.max`. */
  private fixed: FixedLimit | undefined;
  /** The algorithm when it is adaptive: /stats and spans show what it learnt. */
  private _adaptive: AdaptiveLimit | undefined;
  /** Reused for every sample; undefined while the algorithm wants none. */
  private sample: LimitSample | undefined;
  /** Set while this limiter changes the limit itself or reports a sample: its caller wakes the queue after. */
  private quiet = false;
  private _queueSize: number;
  private _queueTimeout: number;
  private _inflight = 0;
  private _peak = 0;
  private _acquired = 0;
  private _released = 0;
  private head: QueueEntry | undefined = undefined;
  private tail: QueueEntry | undefined = undefined;
  private length = 0;

  constructor(o: LimiterOptions) {
    const limits = checkLimits(o.name, o.limits);
    this.name = o.name;
    this.kind = o.kind;
    this.clock = o.clock ?? systemClock;
    this._queueSize = limits.queueSize;
    this._queueTimeout = limits.queueTimeout;
    this.algo = o.algorithm ?? new FixedLimit(limits.max);
    this.adopt(this.algo);
  }

  /** What rules the limit now. */
  get algorithm(): LimitAlgorithm {
    return this.algo;
  }
  /** The algorithm when it is adaptive, else undefined. */
  get adaptive(): AdaptiveLimit | undefined {
    return this._adaptive;
  }

  get inflight(): number {
    return this._inflight;
  }
  /** The limit now (the algorithm's); the name is the config's and the /stats field's. */
  get max(): number {
    return this.algo.limit;
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
    return this._inflight < this.algo.limit;
  }

  /**
   * A permit when there is room, else undefined; never blocks. No overtaking: every release
   * and every raise of the limit wakes the queue at once, so room means an empty queue for a
   * newcomer. (The entry being woken, and an older waiter woken from another queue, take the
   * room they were given even while younger entries wait here.)
   */
  tryAcquire(): Permit | undefined {
    if (this._inflight >= this.algo.limit) return undefined;
    return this.take();
  }

  /** A permit even without room: dry run reports and never enforces, so its counts may exceed the limit. */
  forceAcquire(): Permit {
    return this.take();
  }

  /**
   * Uncounts a permit, once per permit (the permit guards that), and reports its sample, unless
   * it was taken untimed (under a FixedLimit, before a switch to an adaptive one). @internal
   */
  giveBack(startedAt: number, inflightAtStart: number, outcome: ReleaseOutcome, timing: ReleaseTiming | undefined): void {
    this._inflight--;
    this._released++;
    const s = this.sample;
    if (s === undefined || startedAt === UNTIMED) return;
    // The app's part: from the later of acquire and the body's end, to the app's answer done.
    // An answer done before acquire cannot be (another clock's reading): take now; one done
    // before the body was all in (the app did not wait for it) runs from acquire.
    const appDoneAt = timing?.appDoneAt;
    const end = appDoneAt !== undefined && appDoneAt >= startedAt ? appDoneAt : this.clock.now();
    const bodyDoneAt = timing?.bodyDoneAt;
    const start = bodyDoneAt !== undefined && bodyDoneAt > startedAt && bodyDoneAt <= end ? bodyDoneAt : startedAt;
    s.rttMs = end - start;
    s.inflightAtStart = inflightAtStart;
    s.outcome = outcome;
    // An algorithm that changes its limit here must not wake the queue before the caller has
    // given back the request's other permits; the caller wakes right after.
    this.quiet = true;
    try {
      this.algo.onSample(s);
    } finally {
      this.quiet = false;
    }
  }

  /** From the algorithm: wake waiters if the limit went up (a lower one wakes nobody). */
  limitChanged(): void {
    if (!this.quiet) this.wake();
  }

  /**
   * Replaces the limit algorithm in place (a reload between fixed and adaptive, or between two
   * adaptive algorithms): the count, the queue and the permits in flight stay as they are. A
   * higher limit wakes waiters at once (unless `wake: false`, for a reload that wakes once all
   * is applied); a lower one admits nothing new until the count falls below it. Permits taken
   * under the old algorithm report to the new one, except untimed ones, which report nothing.
   */
  setAlgorithm(algorithm: LimitAlgorithm, options: { wake?: boolean } = {}): void {
    if (algorithm === this.algo) return;
    this.algo.listen(undefined);
    this.algo = algorithm;
    this.adopt(algorithm);
    if (options.wake !== false) this.wake();
  }

  /**
   * A reload with the same adaptive algorithm: its new parameters, in place, waking no one (like
   * `setLimits`). Throws when the algorithm is not adaptive.
   */
  retune(config: AdaptiveConfig): void {
    const a = this._adaptive;
    if (a === undefined) throw new Error(`limiter ${this.name}: retune without an adaptive limit`);
    this.quiet = true;
    try {
      a.retune(config);
    } finally {
      this.quiet = false;
    }
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
    this._queueSize = limits.queueSize;
    this._queueTimeout = limits.queueTimeout;
    if (this.fixed === undefined) return;
    this.quiet = true;
    try {
      this.fixed.set(limits.max);
    } finally {
      this.quiet = false;
    }
  }

  /** Whether `enqueue` would take one more entry. A max of 0 never frees room, so it never queues. */
  canQueue(): boolean {
    return this.algo.limit > 0 && this.length < this._queueSize;
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
    if (this._inflight >= this.algo.limit) return false;
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
    const s: LimiterSnapshot = {
      name: this.name,
      kind: this.kind,
      inflight: this._inflight,
      max: this.algo.limit,
      queued: this.length,
      queueSize: this._queueSize,
      queueTimeout: this._queueTimeout,
      peak: this._peak,
      acquired: this._acquired,
      released: this._released,
    };
    if (this._adaptive !== undefined) s.adaptive = this._adaptive.snapshot();
    return s;
  }

  /** Takes `a` as the algorithm: listens to it and keeps what the hot path asks of it at hand. */
  private adopt(a: LimitAlgorithm): void {
    this.fixed = a instanceof FixedLimit ? a : undefined;
    this._adaptive = isAdaptive(a) ? a : undefined;
    // One sample object for the limiter's life, made the first time an algorithm wants samples.
    if (a.wantsSamples) this.sample ??= { rttMs: 0, inflightAtStart: 0, outcome: 'ignored' };
    else this.sample = undefined;
    a.listen(this);
  }

  private take(): Permit {
    const n = ++this._inflight;
    this._acquired++;
    if (n > this._peak) this._peak = n;
    return new LimiterPermit(this, this.sample === undefined ? UNTIMED : this.clock.now(), n);
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
