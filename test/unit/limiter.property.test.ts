import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/core/admission.ts';
import type { Decision, Grant, PendingDecision, Reason } from '../../src/core/admission.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { configSchema } from '../../src/core/config-schema.ts';
import { Limiter, QueueEntry } from '../../src/core/limiter.ts';
import type { Permit } from '../../src/core/limiter.ts';
import { FixedLimit } from '../../src/core/limit-algorithm.ts';
import type { LimitAlgorithm, LimitListener, LimitSample } from '../../src/core/limit-algorithm.ts';
import type { AdaptiveLimit, AdaptiveSnapshot } from '../../src/core/limits/adaptive.ts';
import type { ReleaseOutcome } from '../../src/core/release-outcome.ts';

const outcomeArb: fc.Arbitrary<ReleaseOutcome | undefined> = fc.constantFrom(undefined, 'success' as const, 'dropped' as const, 'ignored' as const);

/** Lets promise reactions of the step run before the step is checked. */
const settle = () => new Promise<void>((r) => setImmediate(r));

class Probe extends QueueEntry {
  readonly log: string[];
  constructor(order: number, log: string[]) {
    super(order);
    this.log = log;
  }
  onRoom(from: Limiter): void {
    this.log.push(`room:${this.order}`);
    from.tryAcquire();
  }
  onDeadline(): void {
    this.log.push(`deadline:${this.order}`);
  }
}

describe('Limiter', () => {
  const limits = (max: number, queueSize = 0, queueTimeout = 1000) => ({ max, queueSize, queueTimeout });

  it('tryAcquire never blocks; permits release once', () => {
    const l = new Limiter({ name: 'global', kind: 'global', limits: limits(2) });
    const p1 = l.tryAcquire();
    const p2 = l.tryAcquire();
    expect(p1 && p2).toBeTruthy();
    expect(l.tryAcquire()).toBeUndefined();
    p1?.release();
    p1?.release();
    expect(l.snapshot()).toMatchObject({ inflight: 1, acquired: 2, released: 1, peak: 2 });
  });

  it('queue: FIFO wake on release, O(1) removal from the middle, deadlines on the clock', () => {
    const clock = new FakeClock();
    const log: string[] = [];
    const l = new Limiter({ name: 'route:r', kind: 'route', limits: limits(1, 3, 100), clock });
    const held = l.tryAcquire();
    const [e1, e2, e3] = [1, 2, 3].map((i) => new Probe(i, log));
    expect(l.enqueue(e1 as Probe, 100)).toBe(true);
    clock.advance(10);
    expect(l.enqueue(e2 as Probe, 110)).toBe(true);
    expect(l.enqueue(e3 as Probe, 110)).toBe(true);
    expect(l.enqueue(new Probe(4, log), 200)).toBe(false);
    expect(l.remove(e2 as Probe)).toBe(true);
    expect(l.remove(e2 as Probe)).toBe(false);
    expect([...l.waiting()].map((e) => e.order)).toEqual([1, 3]);
    held?.release();
    expect(log).toEqual(['room:1']);
    clock.advance(100);
    expect(log).toEqual(['room:1', 'deadline:3']);
    expect(l.queued).toBe(0);
    expect(clock.armed).toBe(0);
  });

  it('validates limits', () => {
    expect(() => new Limiter({ name: 'global', kind: 'global', limits: limits(-1) })).toThrow(/global: max must be a whole number >= 0, got -1/);
    const l = new Limiter({ name: 'global', kind: 'global', limits: limits(1) });
    expect(() => l.resize(limits(1.5))).toThrow(/max/);
    expect(l.max).toBe(1);
  });

  it('property: never more than max unless just lowered; every permit released once', () => {
    type Op = { t: 'acquire' } | { t: 'release'; i: number } | { t: 'resize'; max: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ t: 'acquire' as const }),
      fc.record({ t: fc.constant('release' as const), i: fc.nat() }),
      fc.record({ t: fc.constant('resize' as const), max: fc.integer({ min: 0, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.array(op, { maxLength: 80, size: 'max' }), (max0, ops) => {
        const l = new Limiter({ name: 'global', kind: 'global', limits: limits(max0) });
        const permits: { p: Permit; released: boolean }[] = [];
        let held = 0;
        for (const o of ops) {
          if (o.t === 'acquire') {
            const hadRoom = l.inflight < l.max;
            const p = l.tryAcquire();
            expect(p !== undefined).toBe(hadRoom);
            if (p) {
              permits.push({ p, released: false });
              held++;
            }
          } else if (o.t === 'release' && permits.length > 0) {
            const r = permits[o.i % permits.length] as { p: Permit; released: boolean };
            r.p.release();
            if (!r.released) held--;
            r.released = true;
          } else if (o.t === 'resize') l.resize(limits(o.max));
          expect(l.inflight).toBe(held);
          expect(l.acquired - l.released).toBe(held);
        }
        for (const r of permits) r.p.release();
        expect(l.snapshot()).toMatchObject({ inflight: 0, acquired: permits.length, released: permits.length });
      }),
      { numRuns: 300 },
    );
  });
});

describe('Limiter samples (property)', () => {
  /** Records copies of the samples; the limit moves when the test says. */
  class Recorder implements LimitAlgorithm {
    readonly wantsSamples = true;
    readonly samples: LimitSample[] = [];
    limit = 3;
    onSample(s: Readonly<LimitSample>): void {
      this.samples.push({ ...s });
    }
    listen(): void {}
  }

  it('one sample per permit however often it is released, with its rtt, in-flight at start and outcome', () => {
    type Op = { t: 'acquire' } | { t: 'release'; i: number; quiet: boolean; outcome: ReleaseOutcome | undefined } | { t: 'advance'; ms: number } | { t: 'limit'; n: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ t: 'acquire' as const }),
      fc.record({ t: fc.constant('release' as const), i: fc.nat(), quiet: fc.boolean(), outcome: outcomeArb }),
      fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ t: fc.constant('limit' as const), n: fc.integer({ min: 0, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80, size: 'max' }), (ops) => {
        const clock = new FakeClock();
        const algo = new Recorder();
        const l = new Limiter({ name: 'global', kind: 'global', limits: { max: 3, queueSize: 0, queueTimeout: 1000 }, clock, algorithm: algo });
        const held: { p: Permit; at: number; inflight: number; done: boolean }[] = [];
        const expected: LimitSample[] = [];
        for (const o of ops) {
          if (o.t === 'acquire') {
            const p = l.tryAcquire();
            if (p) held.push({ p, at: clock.now(), inflight: l.inflight, done: false });
          } else if (o.t === 'release' && held.length > 0) {
            const h = held[o.i % held.length] as (typeof held)[0];
            if (o.quiet) expect(h.p.releaseQuiet(o.outcome)).toBe(!h.done);
            else h.p.release(o.outcome);
            if (!h.done) expected.push({ rttMs: clock.now() - h.at, inflightAtStart: h.inflight, outcome: o.outcome ?? 'ignored' });
            h.done = true;
          } else if (o.t === 'advance') clock.advance(o.ms);
          else if (o.t === 'limit') algo.limit = o.n;
          expect(algo.samples).toEqual(expected);
          expect(l.inflight).toBe(held.filter((h) => !h.done).length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Several limiters through Admission: global, two routes (with per-route-client caps), global
// per-client caps, a bypass route; random arrivals, releases (double ones too), cancels, time
// advances and reloads that raise and lower every limit or drop and re-add routes.

type AdaptiveArb = { algorithm: 'gradient' | 'aimd'; min: number; max: number; initial: number };
type InflightArb = ({ max: number } | { adaptive: AdaptiveArb }) & { perClient: number; queue: { size: number; timeout: number } };
type RouteArb = { mode: 'limited' | 'unlimited' | 'removed'; inflight: InflightArb };
type ConfigArb = { global: InflightArb; a: RouteArb; b: RouteArb; dryRun: boolean };

// issue 12: a limit is fixed or adaptive, and reloads switch between them (and between algorithms).
const adaptiveArb: fc.Arbitrary<AdaptiveArb> = fc
  .record({ algorithm: fc.constantFrom('gradient' as const, 'aimd' as const), min: fc.integer({ min: 1, max: 2 }), span: fc.integer({ min: 0, max: 3 }), at: fc.nat() })
  .map(({ algorithm, min, span, at }) => ({ algorithm, min, max: min + span, initial: min + (at % (span + 1)) }));
const inflightArb: fc.Arbitrary<InflightArb> = fc.record({
  limit: fc.oneof({ weight: 2, arbitrary: fc.integer({ min: 0, max: 4 }).map((max) => ({ max })) }, { weight: 1, arbitrary: adaptiveArb.map((adaptive) => ({ adaptive })) }),
  perClient: fc.integer({ min: 0, max: 3 }),
  queue: fc.record({ size: fc.integer({ min: 0, max: 3 }), timeout: fc.integer({ min: 1, max: 1000 }) }),
}).map(({ limit, perClient, queue }) => ({ ...limit, perClient, queue }));
const routeArb: fc.Arbitrary<RouteArb> = fc.record({
  mode: fc.constantFrom('limited' as const, 'limited' as const, 'unlimited' as const, 'removed' as const),
  inflight: inflightArb,
});
const configArb = (dryRun: fc.Arbitrary<boolean>): fc.Arbitrary<ConfigArb> =>
  fc.record({ global: inflightArb, a: routeArb, b: routeArb, dryRun });

function toConfig(c: ConfigArb) {
  const routes: unknown[] = [{ name: 'p', match: { exact: '/p' }, bypass: true }];
  for (const [name, r] of [['a', c.a], ['b', c.b]] as const) {
    if (r.mode === 'limited') routes.push({ name, match: { prefix: `/${name}` }, inflight: r.inflight });
    else if (r.mode === 'unlimited') routes.push({ name, match: { prefix: `/${name}` } });
  }
  return configSchema.parse({ inflight: c.global, routes, dryRun: c.dryRun });
}

type Op =
  | { t: 'arrive'; path: string; client: string }
  | { t: 'release'; i: number; outcome: ReleaseOutcome | undefined }
  | { t: 'cancel'; i: number }
  | { t: 'advance'; ms: number }
  | { t: 'update'; config: ConfigArb };

const opArb = (dryRun: fc.Arbitrary<boolean>): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ t: fc.constant('arrive' as const), path: fc.constantFrom('/a', '/b', '/p', '/x'), client: fc.constantFrom('c1', 'c2', 'c3') }),
    },
    { weight: 4, arbitrary: fc.record({ t: fc.constant('release' as const), i: fc.nat(), outcome: outcomeArb }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), i: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 700 }) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('update' as const), config: configArb(dryRun) }) },
  );

interface GrantRec {
  grant: Grant;
  released: boolean;
}
interface WaitRec {
  p: PendingDecision;
  arrival: number;
  /** Latest deadline seen on the entry; never grows. */
  deadline: number;
  cancelled: boolean;
  cancelledStep: number;
  resolved: boolean;
  value: Decision | null | undefined;
  resolvedStep: number;
}
interface Before {
  acquired: number;
  released: number;
  waiting: QueueEntry[];
}

const REJECT_REASONS: readonly Reason[] = ['inflight_limit', 'client_inflight_limit', 'queue_full', 'queue_timeout'];

async function runScenario(start: ConfigArb, ops: Op[]): Promise<void> {
  const clock = new FakeClock();
  let config = toConfig(start);
  // An adaptive algorithm may lower its limit on a sample; a limiter lowered so in a step may end it over its limit.
  const lowered = new Set<string>();
  const adm = new Admission(config, {
    clock,
    changes: {
      moved: (limiter, _algorithm, change) => {
        if (change.to < change.from) lowered.add(limiter);
      },
      reloaded: () => {},
    },
  });
  const grants: GrantRec[] = [];
  const waits: WaitRec[] = [];
  const byEntry = new Map<unknown, WaitRec>();
  const seen = new Set<Limiter>();
  let step = 0;
  const global = [...adm.limiters()].find((l) => l.name === 'global') as Limiter;
  const held = () => grants.filter((g) => !g.released).length;

  const take = (d: Decision) => {
    if (d.grant !== undefined) grants.push({ grant: d.grant, released: false });
  };
  const checkDecision = (d: Decision) => {
    if (d.decision === 'rejected') {
      expect(REJECT_REASONS).toContain(d.reason);
      expect(d.status).toBe(d.reason === 'client_inflight_limit' ? config.reject.clientStatus : config.reject.status);
      if (!d.dryRun) expect(d.grant).toBeUndefined();
    } else if (d.decision === 'admitted') {
      expect(d.grant).toBeDefined();
      expect(d.reason).toBeUndefined();
      expect(d.status).toBe(0);
    }
    if (d.dryRun) expect(d.grant).toBeDefined();
  };

  const snapshotBefore = () => {
    for (const l of adm.limiters()) seen.add(l);
    const m = new Map<Limiter, Before>();
    for (const l of seen) m.set(l, { acquired: l.acquired, released: l.released, waiting: [...l.waiting()] });
    return m;
  };

  const checkStep = (before: Map<Limiter, Before>) => {
    for (const l of adm.limiters()) seen.add(l);
    for (const l of seen) {
      const b = before.get(l) ?? { acquired: 0, released: 0, waiting: [] };
      const admittedNow = l.acquired - b.acquired;
      // Permits: counted once each, released at most once.
      expect(l.inflight).toBe(l.acquired - l.released);
      expect(l.released).toBeLessThanOrEqual(l.acquired);
      expect(l.inflight).toBeGreaterThanOrEqual(0);
      if (!config.dryRun) {
        // 1. Over max only when a reload (or its adaptive algorithm) lowered it, and then nothing new is admitted.
        if (admittedNow > 0 && !lowered.has(l.name)) expect(l.inflight, `${l.name} over max after admitting`).toBeLessThanOrEqual(l.max);
        // Room means an empty queue, so a newcomer can never overtake a waiter.
        if (l.hasRoom()) expect(l.queued, `${l.name} has room and waiters`).toBe(0);
      }
      const after = [...l.waiting()];
      const prev = new Set(b.waiting);
      const appended = after.filter((e) => !prev.has(e));
      // 3. Never above size, except waiters kept through a reload that lowered it.
      if (appended.length > 0) expect(after.length, `${l.name} queue above size`).toBeLessThanOrEqual(l.queueSize);
      // FIFO: whoever left other than by timeout or cancel left from the head; the rest keep
      // their order; newcomers join at the tail.
      const now = new Set(after);
      const ordered = b.waiting.filter((e) => {
        const w = byEntry.get(e);
        const timedOut = w?.resolvedStep === step && w.value?.reason === 'queue_timeout';
        const cancelled = w?.cancelledStep === step;
        return !timedOut && !cancelled;
      });
      const left = ordered.filter((e) => !now.has(e)).length;
      for (let i = 0; i < left; i++) expect(now.has(ordered[i] as QueueEntry), `${l.name} not FIFO`).toBe(false);
      const survivors = after.filter((e) => prev.has(e));
      expect(survivors).toEqual(ordered.filter((e) => now.has(e)));
      expect(after.slice(0, survivors.length)).toEqual(survivors);
      for (const e of after) {
        const w = byEntry.get(e);
        if (w === undefined) throw new Error('unknown queue entry');
        // Nobody is still waiting at or past the deadline, and a deadline never grows.
        expect(e.deadline).toBeGreaterThan(clock.now());
        expect(e.deadline).toBeLessThanOrEqual(w.deadline);
        w.deadline = e.deadline;
      }
    }
    for (const w of waits) {
      if (w.resolvedStep !== step) continue;
      const v = w.value;
      if (v === null) {
        expect(w.cancelled).toBe(true);
        continue;
      }
      if (v === undefined) throw new Error('resolved without a value');
      checkDecision(v);
      // 3. Nobody waits longer than the deadline; only queue_timeout at it.
      expect(w.arrival + v.queueWaitMs).toBeLessThanOrEqual(w.deadline);
      expect(w.arrival + v.queueWaitMs).toBeLessThanOrEqual(clock.now());
      if (v.reason !== 'queue_timeout') expect(w.arrival + v.queueWaitMs).toBeLessThan(w.deadline);
      if (v.decision === 'admitted') take(v);
    }
    // Every admitted request holds exactly one global permit.
    expect(global.inflight).toBe(held());
  };

  for (const op of ops) {
    step++;
    lowered.clear();
    const before = snapshotBefore();
    const acquiredBefore = [...seen].reduce((n, l) => n + l.acquired, 0);
    const releasedBefore = [...seen].reduce((n, l) => n + l.released, 0);
    const globalReleasedBefore = global.released;
    let immediate: Decision | undefined;
    let doubleRelease = false;
    let freshRelease = false;
    switch (op.t) {
      case 'arrive': {
        const d = adm.admit({ method: 'GET', path: op.path, host: 'h', headers: {}, client: op.client });
        if ('pending' in d) {
          expect(config.dryRun).toBe(false);
          const rec: WaitRec = { p: d, arrival: clock.now(), deadline: Infinity, cancelled: false, cancelledStep: -1, resolved: false, value: undefined, resolvedStep: -1 };
          const entry = d as unknown as QueueEntry;
          expect(entry.queue, 'a pending decision is queued somewhere').toBeDefined();
          // Deadline bound: arrival + the timeout of the queue it joined.
          rec.deadline = clock.now() + (entry.queue as Limiter).queueTimeout;
          waits.push(rec);
          byEntry.set(d, rec);
          void d.promise.then((v) => {
            expect(rec.resolved, 'resolved twice').toBe(false);
            rec.resolved = true;
            rec.value = v;
            rec.resolvedStep = step;
          });
        } else {
          immediate = d;
          checkDecision(d);
          take(d);
        }
        break;
      }
      case 'release': {
        const g = grants[op.i % Math.max(1, grants.length)];
        if (g === undefined) break;
        doubleRelease = g.released;
        freshRelease = !g.released;
        g.grant.release(op.outcome);
        g.released = true;
        break;
      }
      case 'cancel': {
        const w = waits[op.i % Math.max(1, waits.length)];
        if (w === undefined) break;
        if (!w.resolved && !w.cancelled) {
          w.cancelled = true;
          w.cancelledStep = step;
        }
        w.p.cancel();
        // A late cancel of an admitted request gives its grant back.
        const rec = grants.find((g) => g.grant === w.value?.grant);
        if (rec !== undefined) rec.released = true;
        break;
      }
      case 'advance':
        clock.advance(op.ms);
        break;
      case 'update':
        config = toConfig(op.config);
        adm.update(config);
        break;
    }
    await settle();
    checkStep(before);
    const acquiredNow = [...seen].reduce((n, l) => n + l.acquired, 0);
    const releasedNow = [...seen].reduce((n, l) => n + l.released, 0);
    // Rejects and bypasses take nothing.
    if (immediate !== undefined && immediate.decision !== 'admitted' && !immediate.dryRun) expect(acquiredNow).toBe(acquiredBefore);
    if (immediate?.decision === 'admitted') expect(acquiredNow).toBeGreaterThan(acquiredBefore);
    if (doubleRelease) expect(releasedNow).toBe(releasedBefore);
    if (freshRelease) expect(releasedNow).toBeGreaterThan(releasedBefore);
    // Exactly once: every grant holds one global permit, given back by its first release only.
    if (op.t === 'release') expect(global.released - globalReleasedBefore).toBe(freshRelease ? 1 : 0);
    if (op.t === 'cancel') {
      const w = waits[op.i % Math.max(1, waits.length)];
      if (w?.cancelledStep === step) expect(w.value).toBeNull();
    }
  }

  // Wind down: release everything (twice), let the queues drain or time out.
  for (let round = 0; round < 1000; round++) {
    step++;
    lowered.clear();
    const before = snapshotBefore();
    for (const g of grants) {
      g.grant.release();
      g.grant.release();
      g.released = true;
    }
    clock.advance(1000);
    await settle();
    checkStep(before);
    if (held() === 0 && waits.every((w) => w.resolved)) break;
  }
  expect(waits.every((w) => w.resolved)).toBe(true);
  for (const l of seen) {
    expect(l.snapshot()).toMatchObject({ inflight: 0, queued: 0 });
    expect(l.released).toBe(l.acquired);
  }
  // Idle per-client limiters and retired limiters are gone; no timer left behind.
  expect([...adm.limiters()].filter((l) => l.kind === 'client' || l.kind === 'route-client')).toEqual([]);
  for (const l of adm.limiters()) expect(l.kind === 'global' || config.routes.some((r) => l.name === `route:${r.name}`)).toBe(true);
  expect(clock.armed).toBe(0);
}

describe('Admission over several limiters (property)', () => {
  it('enforced: caps, exactly-once release, FIFO, queue bounds, deadlines, clean end state', async () => {
    await fc.assert(
      fc.asyncProperty(configArb(fc.constant(false)), fc.array(opArb(fc.constant(false)), { minLength: 20, maxLength: 120, size: 'max' }), runScenario),
      { numRuns: 250 },
    );
  });

  it('with dry run switched on and off by reloads', async () => {
    await fc.assert(
      fc.asyncProperty(configArb(fc.boolean()), fc.array(opArb(fc.boolean()), { minLength: 20, maxLength: 120, size: 'max' }), runScenario),
      { numRuns: 120 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// issue 12: the algorithm replaced in place (fixed <-> adaptive) among everything else a limiter
// sees. The counts, the queue and the permits carry over; room still means an empty queue; a
// permit taken untimed (under a FixedLimit) never reports a sample; every other permit reports
// one, to the algorithm in force when it comes back, with its RTT ending at `endedAt` if given.

/** An adaptive limit whose limit the test moves. */
class Movable implements AdaptiveLimit {
  readonly wantsSamples = true;
  readonly algorithm = 'gradient' as const;
  readonly samples: LimitSample[] = [];
  onChange: AdaptiveLimit['onChange'] = undefined;
  minRttMs: number | undefined = undefined;
  sampleRttMs: number | undefined = undefined;
  private listener: LimitListener | undefined;
  constructor(public limit: number) {}
  onSample(s: Readonly<LimitSample>): void {
    this.samples.push({ ...s });
  }
  listen(l: LimitListener | undefined): void {
    this.listener = l;
  }
  snapshot(): AdaptiveSnapshot {
    return { algorithm: this.algorithm, min: 0, max: 10, minRttMs: undefined, sampleRttMs: undefined };
  }
  retune(): void {}
  move(n: number): void {
    this.limit = n;
    this.listener?.limitChanged();
  }
}

/** Takes the room it is handed and tells the test. */
class Taker extends QueueEntry {
  constructor(
    order: number,
    private readonly took: (p: Permit | undefined, from: Limiter) => void,
  ) {
    super(order);
  }
  onRoom(from: Limiter): void {
    this.took(from.tryAcquire(), from);
  }
  onDeadline(): void {}
}

describe('Limiter.setAlgorithm (property, issue 12)', () => {
  type Algo = { kind: 'fixed' | 'adaptive'; n: number };
  type Op =
    | { t: 'acquire' }
    | { t: 'enqueue'; timeout: number }
    | { t: 'release'; i: number; quiet: boolean; outcome: ReleaseOutcome | undefined; early: number | undefined }
    | { t: 'resize'; max: number; queueSize: number }
    | { t: 'set'; algo: Algo }
    | { t: 'move'; n: number }
    | { t: 'advance'; ms: number };
  const algoArb: fc.Arbitrary<Algo> = fc.record({ kind: fc.constantFrom('fixed' as const, 'adaptive' as const), n: fc.integer({ min: 0, max: 5 }) });
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ t: 'acquire' as const }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('enqueue' as const), timeout: fc.integer({ min: 1, max: 100 }) }) },
    {
      weight: 4,
      arbitrary: fc.record({
        t: fc.constant('release' as const),
        i: fc.nat(),
        quiet: fc.boolean(),
        outcome: outcomeArb,
        early: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('resize' as const), max: fc.integer({ min: 0, max: 5 }), queueSize: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('set' as const), algo: algoArb }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('move' as const), n: fc.integer({ min: 0, max: 5 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 60 }) }) },
  );

  it('counts, queue and permits carry over; room means an empty queue; untimed permits report nothing', () => {
    fc.assert(
      fc.property(algoArb, fc.array(op, { maxLength: 100, size: 'max' }), (start, ops) => {
        const clock = new FakeClock();
        const make = (a: Algo): LimitAlgorithm => (a.kind === 'fixed' ? new FixedLimit(a.n) : new Movable(a.n));
        const l = new Limiter({ name: 'route:r', kind: 'route', limits: { max: start.n, queueSize: 2, queueTimeout: 1000 }, clock, algorithm: make(start) });
        type Held = { p: Permit; at: number; inflight: number; timed: boolean; done: boolean };
        const held: Held[] = [];
        const sent = new Map<Movable, LimitSample[]>();
        const expectSample = (a: LimitAlgorithm, s: LimitSample) => {
          if (!(a instanceof Movable)) return;
          const list = sent.get(a) ?? [];
          list.push(s);
          sent.set(a, list);
        };
        const record = (p: Permit | undefined, from: Limiter) => {
          // Room was given, so the taker gets its permit.
          expect(p).toBeDefined();
          if (p) held.push({ p, at: clock.now(), inflight: from.inflight, timed: from.algorithm.wantsSamples, done: false });
        };
        let order = 0;
        for (const o of ops) {
          switch (o.t) {
            case 'acquire': {
              const hadRoom = l.inflight < l.max;
              const p = l.tryAcquire();
              expect(p !== undefined).toBe(hadRoom);
              if (p) held.push({ p, at: clock.now(), inflight: l.inflight, timed: l.algorithm.wantsSamples, done: false });
              break;
            }
            case 'enqueue':
              // Only a limiter without room takes a waiter (as admission does).
              if (!l.hasRoom()) l.enqueue(new Taker(++order, record), clock.now() + o.timeout);
              break;
            case 'release': {
              const h = held[o.i % Math.max(1, held.length)];
              if (h === undefined) break;
              const endedAt = o.early === undefined ? undefined : Math.max(h.at, clock.now() - o.early);
              const fresh = !h.done;
              const algo = l.algorithm;
              if (fresh && h.timed && algo.wantsSamples) {
                expectSample(algo, { rttMs: (endedAt ?? clock.now()) - h.at, inflightAtStart: h.inflight, outcome: o.outcome ?? 'ignored' });
              }
              h.done = true;
              if (o.quiet) {
                expect(h.p.releaseQuiet(o.outcome, { appDoneAt: endedAt, bodyDoneAt: undefined })).toBe(fresh);
                l.wake();
              } else h.p.release(o.outcome, { appDoneAt: endedAt, bodyDoneAt: undefined });
              break;
            }
            case 'resize':
              l.resize({ max: o.max, queueSize: o.queueSize, queueTimeout: 1000 });
              break;
            case 'set':
              l.setAlgorithm(make(o.algo));
              break;
            case 'move':
              if (l.algorithm instanceof Movable) l.algorithm.move(o.n);
              break;
            case 'advance':
              clock.advance(o.ms);
              break;
          }
          const open = held.filter((h) => !h.done).length;
          expect(l.inflight).toBe(open);
          expect(l.acquired - l.released).toBe(open);
          if (l.hasRoom()) expect(l.queued, 'room and waiters').toBe(0);
          expect(l.queued).toBeLessThanOrEqual(3);
          expect(l.adaptive === undefined).toBe(!(l.algorithm instanceof Movable));
          expect(l.snapshot().adaptive === undefined).toBe(l.adaptive === undefined);
          for (const [a, samples] of sent) expect(a.samples).toEqual(samples);
        }
        for (const h of held) h.p.release();
        clock.advance(2000);
        expect(l.snapshot()).toMatchObject({ inflight: 0, queued: 0 });
        expect(l.released).toBe(l.acquired);
        expect(clock.armed).toBe(0);
      }),
      { numRuns: 400 },
    );
  });

  it('a switch from fixed to adaptive keeps the permits but feeds it no RTT of the fixed ones', () => {
    const clock = new FakeClock();
    const l = new Limiter({ name: 'global', kind: 'global', limits: { max: 2, queueSize: 1, queueTimeout: 1000 }, clock });
    const old = l.tryAcquire() as Permit;
    clock.advance(100);
    const a = new Movable(3);
    l.setAlgorithm(a);
    expect(l.snapshot()).toMatchObject({ inflight: 1, max: 3, adaptive: { algorithm: 'gradient' } });
    const fresh = l.tryAcquire() as Permit;
    clock.advance(40);
    old.release('success');
    fresh.release('success', { appDoneAt: clock.now() - 15, bodyDoneAt: undefined });
    expect(a.samples).toEqual([{ rttMs: 25, inflightAtStart: 2, outcome: 'success' }]);
    // And back: the adaptive limit no longer listens; a lower fixed limit admits nothing until the count falls.
    const p1 = l.tryAcquire() as Permit;
    const p2 = l.tryAcquire() as Permit;
    l.setAlgorithm(new FixedLimit(1));
    a.move(5);
    expect(l.max).toBe(1);
    expect(l.tryAcquire()).toBeUndefined();
    p1.release();
    expect(l.tryAcquire()).toBeUndefined();
    p2.release('success');
    expect(a.samples).toHaveLength(1);
    expect(l.snapshot().adaptive).toBeUndefined();
  });
});
