/**
 * Issue 12, "Limits that find themselves": the gradient limit. Hostile sample sequences for
 * the invariants; a simulated app (test/helpers/capacity-model.ts: c slots, a service time, a
 * FIFO queue) behind a real Limiter on a FakeClock for the behaviour: where it settles under
 * overload, following a halving and a doubling of capacity, recovering from a latency spike,
 * never pinning itself down to probe.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GradientConfig, LimitChange } from '../../src/core/limits/adaptive.ts';
import { INTERVAL_MIN_MS } from '../../src/core/limits/adaptive-base.ts';
import { GradientLimit } from '../../src/core/limits/gradient.ts';
import { CapacityModel, Simulation } from '../helpers/capacity-model.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { drive, feed, neverGrowsWhileUnused, stepArb, watch } from '../helpers/limit-samples.ts';

const config = (o: Partial<GradientConfig> = {}): GradientConfig => ({
  algorithm: 'gradient',
  min: 1,
  max: 1000,
  initial: 10,
  tolerance: 1.5,
  backoff: 0.9,
  minRttWindow: 30_000,
  ...o,
});


/** `n` successes of `rttMs` at `inflight`, spread over `ms` of clock time. */
function steady(clock: FakeClock, g: GradientLimit, o: { n: number; ms: number; rttMs: number; inflight: (limit: number) => number }): void {
  for (let i = 0; i < o.n; i++) {
    clock.advance(o.ms / o.n);
    feed(g, o.rttMs, o.inflight(g.limit));
  }
}

describe('gradient limit: invariants under hostile samples', () => {
  it('stays a whole number in [min, max]; every change told to the listener, then onChange; a reload only clamps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 300 }),
        fc.double({ min: 1.05, max: 4, noNaN: true }),
        fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        fc.array(stepArb(), { maxLength: 60 }),
        (min, span, tolerance, backoff, steps) => {
          const c = (lo: number, hi: number) => config({ min: lo, max: hi, initial: lo, tolerance, backoff, minRttWindow: 2000 });
          drive((clock) => new GradientLimit({ ...c(min, min + span), initial: min + (span >> 1) }, clock), c, steps, { min, max: min + span });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('all-ignored samples teach nothing: no change, no minRTT, no sample RTT', () => {
    fc.assert(
      fc.property(fc.array(stepArb({ outcome: fc.constant('ignored') }).filter((s) => s.t !== 'retune'), { maxLength: 60 }), (steps) => {
        const g = drive((clock) => new GradientLimit(config({ initial: 40 }), clock), (min, max) => config({ min, max, initial: min }), steps, { min: 1, max: 1000 });
        expect(g.limit).toBe(40);
        expect([g.minRttMs, g.sampleRttMs]).toEqual([undefined, undefined]);
      }),
    );
  });

  it('never grows while in-flight stays well below the limit, whatever the RTTs and outcomes', () => {
    neverGrowsWhileUnused((initial, clock) => new GradientLimit(config({ initial }), clock));
  });
});

describe('gradient limit: reactions', () => {
  it('a drop multiplies the limit by backoff (floored, at least min); a burst of drops is one congestion event per RTT interval', () => {
    fc.assert(
      // Failures count once they are DROP_SHARE of the answers (smoothed): 7 in a row from none.
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0.05, max: 0.95, noNaN: true }), fc.integer({ min: 7, max: 50 }), (initial, backoff, burst) => {
        const clock = new FakeClock();
        const g = new GradientLimit(config({ initial, backoff, max: 1000 }), clock);
        const { changes } = watch(g);
        clock.advance(1000);
        for (let i = 0; i < burst; i++) feed(g, 5, initial, 'dropped');
        const once = Math.max(1, Math.floor(initial * backoff));
        expect(g.limit).toBe(once);
        expect(changes).toEqual(once === initial ? [] : [{ from: initial, to: once, why: 'drop' }]);
        // Drops of requests that started before the decrease were answered by it.
        clock.advance(50);
        feed(g, 60, once, 'dropped');
        expect(g.limit).toBe(once);
        // A drop of one that started after it, an interval later, is a new event.
        feed(g, 40, once, 'dropped');
        expect(g.limit).toBe(Math.max(1, Math.floor(once * backoff)));
      }),
    );
  });

  it('issue 12: failures below DROP_SHARE of the answers (a client making the app fail now and then) never lower the limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 500 }), fc.integer({ min: 12, max: 40 }), fc.integer({ min: 200, max: 2000 }), (initial, every, n) => {
        const clock = new FakeClock();
        const g = new GradientLimit(config({ initial, max: 1000 }), clock);
        clock.advance(1000);
        for (let i = 1; i <= n; i++) {
          clock.advance(1);
          // Not used (in flight well below the limit), so latency moves nothing either.
          feed(g, 5, 1, i % every === 0 ? 'dropped' : 'success');
          expect(g.limit).toBe(initial);
        }
      }),
    );
  });

  it('shrinks on latency (why latency) by at most half per interval, and grows on headroom (why headroom) only when used', () => {
    const clock = new FakeClock();
    const g = new GradientLimit(config({ initial: 100 }), clock);
    const { changes } = watch(g);
    // Light load first: the no-load RTT is 10 ms. The limit is not used, so nothing moves.
    steady(clock, g, { n: 200, ms: 2000, rttMs: 10, inflight: () => 5 });
    expect([g.limit, g.minRttMs]).toEqual([100, 10]);
    // Used, at no extra latency: grows by about sqrt(limit) per decision.
    steady(clock, g, { n: 100, ms: 100, rttMs: 10, inflight: (l) => l });
    expect(changes[0]).toEqual({ from: 100, to: 110, why: 'headroom' });
    // Used, 4x the latency: shrinks to limit × 1.5 / 4, but at most halves per decision.
    const before = g.limit;
    steady(clock, g, { n: 100, ms: 100, rttMs: 40, inflight: (l) => l });
    const shrink = changes.find((c) => c.why === 'latency') as LimitChange;
    expect(shrink).toEqual({ from: before, to: Math.floor(before * 0.5), why: 'latency' });
  });

  it('minRTT is never driven by the limit: under steady load within tolerance for 10 windows the limit never falls, and minRTT is kept', () => {
    const clock = new FakeClock();
    const g = new GradientLimit(config({ initial: 20, max: 60, minRttWindow: 1000 }), clock);
    const { changes } = watch(g);
    // Used at the limit, latency 1.2 × no-load: within tolerance, so it only grows, up to max.
    steady(clock, g, { n: 40, ms: 400, rttMs: 10, inflight: () => 1 });
    steady(clock, g, { n: 5000, ms: 10_000, rttMs: 12, inflight: (l) => l });
    expect(changes.length).toBeGreaterThan(0);
    for (const c of changes) expect(c.why).toBe('headroom');
    expect(g.limit).toBe(60);
    // No light-load sample for 10 windows: the estimate is still the last one, not undefined.
    expect(g.minRttMs).toBe(10);
  });
});

// ---------------------------------------------------------------------------------------------
// Against the capacity model.

interface AppArb {
  slots: number;
  serviceMs: number;
  jitter: number;
  seed: number;
  closed: boolean;
  /** The initial limit as a share of slots: from 1 to 3.5c (3c clients must be able to use it). */
  initialShare: number;
}
const appArb: fc.Arbitrary<AppArb> = fc.record({
  slots: fc.integer({ min: 10, max: 100 }),
  serviceMs: fc.integer({ min: 2, max: 50 }),
  jitter: fc.constantFrom(0, 0.1, 0.2, 0.3),
  seed: fc.integer(),
  closed: fc.boolean(),
  initialShare: fc.double({ min: 0, max: 3.5, noNaN: true }),
});

/**
 * One RTT interval of the model, ms: the service time with some queue, and never below the
 * algorithm's floor (INTERVAL_MIN_MS). Timings in these tests are counted in it.
 */
const tick = (a: AppArb) => Math.max(INTERVAL_MIN_MS, 1.5 * a.serviceMs);

/**
 * The band's top as a share of c: 2, and 2.2 for an app in lockstep (every answer exactly the
 * service time; with a closed loop its RTTs split in two modes and the median flips between
 * them: up to 2.1c measured at c = 10). Real apps are never that regular.
 */
const top = (a: AppArb) => (a.jitter === 0 ? 2.2 : 2);

/** A gradient-limited app under ~3× overload (open loop: arrivals; closed loop: clients). */
function overloaded(a: AppArb, o: Partial<GradientConfig> = {}): { sim: Simulation; app: CapacityModel; g: GradientLimit; changes: LimitChange[] } {
  const app = new CapacityModel({ slots: a.slots, serviceMs: a.serviceMs, jitter: a.jitter, seed: a.seed });
  const initial = Math.max(1, Math.round(a.initialShare * a.slots));
  const sim = new Simulation({ app, seed: a.seed, algorithm: (clock) => new GradientLimit(config({ initial, ...o }), clock) });
  const g = sim.algorithm as GradientLimit;
  const changes: LimitChange[] = [];
  g.onChange = (c) => changes.push(c);
  if (a.closed) sim.closedLoop(3 * a.slots, a.serviceMs / 2);
  else sim.openLoop(() => (3 * app.slots) / app.serviceMs);
  return { sim, app, g, changes };
}

/** The settled band as a share of c, for the record (and the note). */
const bands: { c: number; lo: number; hi: number }[] = [];

describe('gradient limit against the capacity model', () => {
  it('under ~3x overload it settles within [0.8c, 2c] and stays there', () => {
    fc.assert(
      fc.property(appArb, (a) => {
        const { sim } = overloaded(a);
        // 100 intervals to settle from anywhere in [1, 3.5c], then 200 to watch.
        sim.run(300 * tick(a));
        const { lo, hi } = sim.band(100 * tick(a));
        bands.push({ c: a.slots, lo: lo / a.slots, hi: hi / a.slots });
        expect(lo).toBeGreaterThanOrEqual(0.8 * a.slots);
        expect(hi).toBeLessThanOrEqual(top(a) * a.slots);
      }),
      { numRuns: 25 },
    );
    const lo = Math.min(...bands.map((b) => b.lo));
    const hi = Math.max(...bands.map((b) => b.hi));
    // The measured band, for the record.
    console.info(`gradient steady band over ${bands.length} runs: [${lo.toFixed(2)}c, ${hi.toFixed(2)}c]`);
  });

  it('follows a halving and then a doubling of the app capacity', () => {
    fc.assert(
      fc.property(appArb.map((a) => ({ ...a, slots: 20 + (a.slots % 31) })), (a) => {
        const { sim, app } = overloaded(a);
        const s = tick(a);
        const c = a.slots;
        sim.at(300 * s, (now) => app.setSlots(c / 2, now));
        sim.at(600 * s, (now) => app.setSlots(c, now));
        sim.at(900 * s, (now) => app.setSlots(2 * c, now));
        sim.run(1200 * s);
        // Within 100 intervals of each change, and from then on, within the band of the new c.
        for (const [from, to, slots] of [[200, 300, c], [400, 600, c / 2], [700, 900, c], [1000, 1200, 2 * c]] as const) {
          const { lo, hi } = sim.band(from * s, to * s);
          expect(lo).toBeGreaterThanOrEqual(0.8 * slots);
          expect(hi).toBeLessThanOrEqual(top(a) * slots);
        }
      }),
      { numRuns: 10 },
    );
  });

  // A spike of up to 1/15 of the minRTT window (2 s of 30 s): a longer one raises minRTT by up
  // to a quarter of its factor per window (see min-rtt.ts), and the limit with it.
  it('recovers from a latency spike: back in the band within 150 RTT intervals of its end', () => {
    fc.assert(
      fc.property(appArb, fc.integer({ min: 2, max: 10 }), fc.integer({ min: 10, max: 2000 }), (a, factor, spikeMs) => {
        const { sim, app, g } = overloaded(a);
        const s = tick(a);
        const c = a.slots;
        const end = 300 * s + spikeMs;
        sim.at(300 * s, () => {
          app.serviceMs = factor * a.serviceMs;
        });
        sim.at(end, () => {
          app.serviceMs = a.serviceMs;
        });
        sim.run(end + 450 * s);
        const before = sim.band(150 * s, 300 * s);
        const after = sim.band(end + 150 * s);
        expect(after.lo).toBeGreaterThanOrEqual(0.8 * c);
        expect(after.hi).toBeLessThanOrEqual(top(a) * c);
        // "Near the previous level": the spike left at most a third more.
        expect(after.hi).toBeLessThanOrEqual(Math.ceil(before.hi * 1.34));
        expect(g.minRttMs).toBeLessThan(1.5 * a.serviceMs);
      }),
      { numRuns: 15 },
    );
  });

  it('no probe outages: over 10 minRTT windows of steady overload the limit never dips below 0.8c', () => {
    const a: AppArb = { slots: 30, serviceMs: 10, jitter: 0.2, seed: 7, closed: false, initialShare: 0.3 };
    const { sim, changes } = overloaded(a, { minRttWindow: 2000 });
    sim.run(22_000);
    expect(sim.band(1000).lo).toBeGreaterThanOrEqual(0.8 * a.slots);
    expect(changes.filter((c) => c.why === 'drop')).toEqual([]);
  });

  it('a lasting slowdown is accepted in the end: the limit leaves min and climbs back toward c', () => {
    const a: AppArb = { slots: 30, serviceMs: 10, jitter: 0.2, seed: 3, closed: false, initialShare: 0.3 };
    const { sim, app, g } = overloaded(a, { minRttWindow: 2000 });
    sim.at(3000, () => {
      app.serviceMs = 30;
    });
    sim.run(30_000);
    // It went to min (the gradient cannot tell a slower app from its own queue at first) ...
    expect(sim.band(3000, 6000).lo).toBe(1);
    // ... and 10 windows later it is back near the app's concurrency.
    const { lo, hi } = sim.band(25_000);
    expect(lo).toBeGreaterThanOrEqual(0.5 * a.slots);
    expect(hi).toBeLessThanOrEqual(2 * a.slots);
    expect(g.minRttMs).toBeGreaterThan(15);
  });
});

describe('gradient limit: retune', () => {
  it('keeps the limit (clamped into the new bounds) and minRTT; refuses another algorithm', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 200 }), (initial, min, span) => {
        const clock = new FakeClock();
        const g = new GradientLimit(config({ initial, max: 1000 }), clock);
        feed(g, 10, 1);
        const { changes } = watch(g);
        g.retune(config({ min, max: min + span, initial: min, tolerance: 2 }));
        const want = Math.min(min + span, Math.max(min, initial));
        expect(g.limit).toBe(want);
        expect(changes).toEqual(want === initial ? [] : [{ from: initial, to: want, why: 'reload' }]);
        expect(g.minRttMs).toBe(10);
        expect(g.snapshot()).toMatchObject({ min, max: min + span });
      }),
    );
    const g = new GradientLimit(config(), new FakeClock());
    expect(() => g.retune({ algorithm: 'aimd', min: 1, max: 10, initial: 1, backoff: 0.9, timeout: 100 })).toThrow(/cannot be retuned to aimd/);
  });

  it('validates its config', () => {
    const clock = new FakeClock();
    expect(() => new GradientLimit(config({ tolerance: 1 }), clock)).toThrow(/tolerance must be a number > 1, got 1/);
    expect(() => new GradientLimit(config({ min: 0 }), clock)).toThrow(/min must be a whole number >= 1, got 0/);
    expect(() => new GradientLimit(config({ min: 5, max: 4, initial: 4 }), clock)).toThrow(/max must be a whole number >= min/);
    expect(() => new GradientLimit(config({ initial: 2000 }), clock)).toThrow(/initial must be a whole number in \[1, 1000\], got 2000/);
    expect(() => new GradientLimit(config({ backoff: 1 }), clock)).toThrow(/backoff must be in \(0, 1\), got 1/);
    expect(() => new GradientLimit(config({ minRttWindow: 0 }), clock)).toThrow(/minRttWindow must be a number > 0, got 0/);
  });
});
