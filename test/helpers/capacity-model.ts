/**
 * A simulated app for the adaptive-limit tests: `slots` workers, a service time, one FIFO
 * queue; so latency is the service time up to `slots` in flight and grows in proportion
 * beyond (about serviceMs × inflight / slots). Driven through a real Limiter on a FakeClock by
 * an open-loop (arrival rate) or closed-loop (clients) load, with its own event queue so that
 * simulating tens of thousands of requests takes milliseconds.
 */
import type { LimitAlgorithm } from '../../src/core/limit-algorithm.ts';
import { Limiter } from '../../src/core/limiter.ts';
import type { Permit } from '../../src/core/limiter.ts';
import type { ReleaseOutcome } from '../../src/core/release-outcome.ts';
import { FakeClock } from './fake-clock.ts';

/** A seeded PRNG (mulberry32): the same seed, the same run. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class CapacityModel {
  /** When each worker is next free, clock ms. */
  private free: number[];
  serviceMs: number;
  /** ± this share of jitter on each service time. */
  jitter: number;
  /** Answer 503 at once (after `shedMs`) when more than this many wait; undefined: never shed. */
  shedAbove: number | undefined;
  shedMs = 1;
  private readonly rand: () => number;
  private readonly finishes: number[] = [];

  constructor(o: { slots: number; serviceMs: number; jitter?: number; shedAbove?: number; seed?: number }) {
    this.free = new Array<number>(o.slots).fill(0);
    this.serviceMs = o.serviceMs;
    this.jitter = o.jitter ?? 0;
    this.shedAbove = o.shedAbove;
    this.rand = random(o.seed ?? 1);
  }

  get slots(): number {
    return this.free.length;
  }

  /** Fewer workers keep the ones free soonest; more start free now. */
  setSlots(slots: number, now: number): void {
    this.free.sort((a, b) => a - b);
    while (this.free.length > slots) this.free.pop();
    while (this.free.length < slots) this.free.push(now);
  }

  /** Waiting (not yet on a worker) at `now`. */
  waiting(now: number): number {
    let n = 0;
    for (const f of this.finishes) if (f > now) n++;
    return Math.max(0, n - this.free.length);
  }

  /** A request arrives at `now`: when it is answered, and how. */
  admit(now: number): { at: number; outcome: ReleaseOutcome } {
    if (this.shedAbove !== undefined) {
      for (let i = this.finishes.length - 1; i >= 0; i--) if ((this.finishes[i] as number) <= now) this.finishes.splice(i, 1);
      if (this.waiting(now) > this.shedAbove) return { at: now + this.shedMs, outcome: 'dropped' };
    }
    let k = 0;
    for (let i = 1; i < this.free.length; i++) if ((this.free[i] as number) < (this.free[k] as number)) k = i;
    const start = Math.max(now, this.free[k] as number);
    const s = this.serviceMs * (1 + this.jitter * (2 * this.rand() - 1));
    const at = start + Math.max(0, s);
    this.free[k] = at;
    if (this.shedAbove !== undefined) this.finishes.push(at);
    return { at, outcome: 'success' };
  }
}

type Event = { at: number; seq: number; run: () => void };

/** A binary min-heap of events by time, then by order of scheduling. */
class Events {
  private readonly heap: Event[] = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  push(at: number, run: () => void): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, run });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as Event, h[p] as Event)) break;
      [h[i], h[p]] = [h[p] as Event, h[i] as Event];
      i = p;
    }
  }
  pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    h[0] = last;
    for (let i = 0; ; ) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let m = i;
      if (l < h.length && before(h[l] as Event, h[m] as Event)) m = l;
      if (r < h.length && before(h[r] as Event, h[m] as Event)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Event, h[i] as Event];
      i = m;
    }
    return top;
  }
  peekAt(): number {
    return this.heap[0]?.at ?? Infinity;
  }
}
const before = (a: Event, b: Event) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

export interface Trace {
  /** Clock ms of each point. */
  t: number[];
  limit: number[];
  inflight: number[];
}

/**
 * A limiter (no queue: the excess is rejected) whose permits go to `app`; `load(now)` is the
 * open-loop arrival rate per ms (undefined: closed loop of `clients` that send again at once
 * after an answer and after `retryMs` after a reject). Runs until `untilMs`, calling `at`
 * hooks at their times (change the app), recording the limit every `everyMs`.
 */
export class Simulation {
  readonly clock = new FakeClock();
  readonly limiter: Limiter;
  readonly app: CapacityModel;
  readonly trace: Trace = { t: [], limit: [], inflight: [] };
  admitted = 0;
  rejected = 0;
  dropped = 0;
  /** Highest in-flight count seen. */
  peakInflight = 0;
  private readonly events = new Events();
  private readonly rand: () => number;

  readonly algorithm: LimitAlgorithm;

  constructor(o: { algorithm: (clock: FakeClock) => LimitAlgorithm; app: CapacityModel; seed: number }) {
    this.app = o.app;
    this.rand = random(o.seed);
    this.algorithm = o.algorithm(this.clock);
    this.limiter = new Limiter({
      name: 'route:sim',
      kind: 'route',
      limits: { max: 1, queueSize: 0, queueTimeout: 0 },
      clock: this.clock,
      algorithm: this.algorithm,
    });
  }

  /** Open loop: Poisson arrivals at `rate(now)` per ms (re-read at every arrival). */
  openLoop(rate: (now: number) => number): this {
    const next = () => {
      const r = rate(this.clock.now());
      if (r <= 0) return this.events.push(this.clock.now() + 1, next);
      this.events.push(this.clock.now() - Math.log(1 - this.rand()) / r, () => {
        this.arrive(undefined);
        next();
      });
    };
    next();
    return this;
  }

  /** Closed loop: `clients` that send again at once after an answer, after `retryMs` after a reject. */
  closedLoop(clients: number, retryMs: number): this {
    for (let i = 0; i < clients; i++) {
      const send = (): void => this.arrive(send, retryMs);
      this.events.push(this.rand() * retryMs, send);
    }
    return this;
  }

  at(ms: number, fn: (now: number) => void): this {
    this.events.push(ms, () => fn(this.clock.now()));
    return this;
  }

  /** Runs events up to `untilMs`, recording every `everyMs`. */
  run(untilMs: number, everyMs = 5): this {
    let nextRecord = Math.ceil(this.clock.now() / everyMs) * everyMs;
    while (this.events.peekAt() <= untilMs) {
      const e = this.events.pop() as Event;
      for (; nextRecord < e.at; nextRecord += everyMs) this.record(nextRecord);
      this.clock.t = e.at;
      e.run();
    }
    for (; nextRecord <= untilMs; nextRecord += everyMs) this.record(nextRecord);
    this.clock.t = untilMs;
    return this;
  }

  /** min and max of the recorded limit over [fromMs, toMs]. */
  band(fromMs: number, toMs = Infinity): { lo: number; hi: number } {
    let [lo, hi] = [Infinity, -Infinity];
    this.trace.t.forEach((t, i) => {
      if (t < fromMs || t > toMs) return;
      const v = this.trace.limit[i] as number;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    });
    return { lo, hi };
  }

  private record(t: number): void {
    this.trace.t.push(t);
    this.trace.limit.push(this.limiter.max);
    this.trace.inflight.push(this.limiter.inflight);
  }

  private arrive(again: (() => void) | undefined, retryMs = 0): void {
    const permit: Permit | undefined = this.limiter.tryAcquire();
    const now = this.clock.now();
    if (permit === undefined) {
      this.rejected++;
      if (again !== undefined) this.events.push(now + retryMs, again);
      return;
    }
    this.admitted++;
    this.peakInflight = Math.max(this.peakInflight, this.limiter.inflight);
    const answer = this.app.admit(now);
    this.events.push(answer.at, () => {
      if (answer.outcome === 'dropped') this.dropped++;
      permit.release(answer.outcome);
      if (again !== undefined) again();
    });
  }
}
