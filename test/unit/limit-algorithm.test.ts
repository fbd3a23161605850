import { describe, expect, it } from 'vitest';
import { ClientLimiters } from '../../src/core/client-limiters.ts';
import { compilePlan } from '../../src/core/admission-plan.ts';
import { FixedLimit } from '../../src/core/limit-algorithm.ts';
import type { LimitAlgorithm, LimitListener, LimitSample } from '../../src/core/limit-algorithm.ts';
import { Limiter, QueueEntry } from '../../src/core/limiter.ts';
import type { LimiterKind, Permit } from '../../src/core/limiter.ts';
import { takeGrant } from '../../src/core/request-grant.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

/** Records every sample (copied: the limiter reuses the object); its limit is set by the test. */
class Recorder implements LimitAlgorithm {
  readonly wantsSamples = true;
  readonly samples: LimitSample[] = [];
  limit: number;
  /** Limit to switch to on the next sample, as an adaptive algorithm might. */
  onNextSample: number | undefined = undefined;
  private listener: LimitListener | undefined;
  constructor(limit: number) {
    this.limit = limit;
  }
  onSample(s: Readonly<LimitSample>): void {
    this.samples.push({ ...s });
    if (this.onNextSample !== undefined) this.setLimit(this.onNextSample);
    this.onNextSample = undefined;
  }
  listen(l: LimitListener | undefined): void {
    this.listener = l;
  }
  setLimit(n: number): void {
    this.limit = n;
    this.listener?.limitChanged();
  }
}

/** A queue entry that takes the room it is handed. */
class Probe extends QueueEntry {
  permit: Permit | undefined;
  onRoom(from: Limiter): void {
    this.permit = from.tryAcquire();
  }
  onDeadline(): void {}
}

class CountingClock extends FakeClock {
  reads = 0;
  override now(): number {
    this.reads++;
    return super.now();
  }
}

const make = (o: { name?: string; kind?: LimiterKind; max?: number; queueSize?: number; clock: FakeClock; algorithm?: LimitAlgorithm }) =>
  new Limiter({
    name: o.name ?? 'global',
    kind: o.kind ?? 'global',
    limits: { max: o.max ?? 10, queueSize: o.queueSize ?? 0, queueTimeout: 1000 },
    clock: o.clock,
    algorithm: o.algorithm,
  });

describe('LimitAlgorithm seam: samples', () => {
  it('one sample per permit: rtt on the limiter clock, in-flight at start, the outcome; a second release reports nothing', () => {
    const clock = new FakeClock();
    const algo = new Recorder(5);
    const l = make({ clock, algorithm: algo });
    const p1 = l.tryAcquire();
    clock.advance(5);
    const p2 = l.tryAcquire();
    clock.advance(25);
    p1?.release('success');
    p1?.release('dropped');
    expect(p1?.releaseQuiet('dropped')).toBe(false);
    clock.advance(10);
    expect(p2?.releaseQuiet()).toBe(true);
    p2?.release('success');
    expect(algo.samples).toEqual([
      { rttMs: 30, inflightAtStart: 1, outcome: 'success' },
      { rttMs: 35, inflightAtStart: 2, outcome: 'ignored' },
    ]);
    expect(l.snapshot()).toMatchObject({ inflight: 0, acquired: 2, released: 2 });
  });

  it('a request grant passes its outcome to every permit, once', () => {
    const clock = new FakeClock();
    const [ga, ra] = [new Recorder(5), new Recorder(5)];
    const global = make({ clock, algorithm: ga });
    const route = make({ name: 'route:r', kind: 'route', clock, algorithm: ra });
    const clients = new ClientLimiters('client', 'client', clock);
    clients.configure(1);
    const plan = compilePlan({ global, clients, route: undefined, routeLimiter: route });
    const grant = takeGrant(plan, 'c1', false);
    expect(clients.get('c1')?.inflight).toBe(1);
    clock.advance(7);
    grant.release('dropped');
    grant.release('success');
    grant.release();
    expect(ga.samples).toEqual([{ rttMs: 7, inflightAtStart: 1, outcome: 'dropped' }]);
    expect(ra.samples).toEqual([{ rttMs: 7, inflightAtStart: 1, outcome: 'dropped' }]);
    expect(global.inflight + route.inflight).toBe(0);
    // The client's idle limiter is dropped with the release.
    expect(clients.get('c1')).toBeUndefined();
  });

  it("a one-slot plan's grant is the limiter's permit", () => {
    const clock = new FakeClock();
    const algo = new Recorder(1);
    const global = make({ clock, algorithm: algo });
    const plan = compilePlan({ global, clients: new ClientLimiters('client', 'client', clock), route: undefined, routeLimiter: undefined });
    const grant = takeGrant(plan, 'c1', false);
    expect(typeof (grant as Permit).releaseQuiet).toBe('function');
    grant.release('success');
    grant.release('success');
    expect(algo.samples).toHaveLength(1);
  });

  it('a FixedLimit learns nothing, so its limiter reads no clock per request', () => {
    const clock = new CountingClock();
    const l = make({ clock });
    for (let i = 0; i < 3; i++) l.tryAcquire()?.release('success');
    expect(clock.reads).toBe(0);
  });

  it('a limit changed while a holder gives back several permits wakes no one until the holder wakes the queue', () => {
    const clock = new FakeClock();
    const algo = new Recorder(1);
    const l = make({ clock, algorithm: algo, queueSize: 2 });
    const held = l.tryAcquire();
    const [a, b] = [new Probe(1), new Probe(2)];
    l.enqueue(a, 1000);
    l.enqueue(b, 1000);
    algo.onNextSample = 2;
    held?.releaseQuiet('success');
    expect([a.permit, b.permit]).toEqual([undefined, undefined]);
    l.wake();
    expect([a.permit !== undefined, b.permit !== undefined]).toEqual([true, true]);
  });
});

describe('FixedLimit through the seam', () => {
  it('lowering admits nothing new until the count falls below; raising wakes the queue at once', () => {
    const clock = new FakeClock();
    const fixed = new FixedLimit(2);
    const l = make({ clock, algorithm: fixed, max: 2, queueSize: 3 });
    const held = [l.tryAcquire(), l.tryAcquire()];
    const probes = [1, 2, 3].map((i) => new Probe(i));
    for (const p of probes) expect(l.enqueue(p, 1000)).toBe(true);
    fixed.set(1);
    expect(l.snapshot()).toMatchObject({ max: 1, inflight: 2, queued: 3 });
    held[0]?.release();
    expect(probes[0]?.permit).toBeUndefined();
    held[1]?.release();
    expect(probes.map((p) => p.permit !== undefined)).toEqual([true, false, false]);
    fixed.set(3);
    // Same limiter, counts kept, the two left admitted in the same step.
    expect(probes.map((p) => p.permit !== undefined)).toEqual([true, true, true]);
    expect(l.snapshot()).toMatchObject({ max: 3, inflight: 3, queued: 0, acquired: 5 });
    expect(() => fixed.set(-1)).toThrow(/limit must be a whole number >= 0, got -1/);
    expect(l.max).toBe(3);
  });

  it('a reload sets it in place without waking (setLimits); resize wakes', () => {
    const clock = new FakeClock();
    const l = make({ clock, max: 1, queueSize: 2 });
    const fixed = l.algorithm as FixedLimit;
    l.tryAcquire();
    const p = new Probe(1);
    l.enqueue(p, 1000);
    l.setLimits({ max: 2, queueSize: 2, queueTimeout: 1000 });
    expect(l.algorithm).toBe(fixed);
    expect(fixed.limit).toBe(2);
    expect(p.permit).toBeUndefined();
    l.resize({ max: 2, queueSize: 2, queueTimeout: 1000 });
    expect(p.permit).toBeDefined();
  });
});
