/**
 * Issue 12, "Limits that find themselves": the AIMD limit. Hostile sample sequences for the
 * invariants; the capacity model (an app that sheds, or a timeout) for the behaviour. AIMD
 * learns only from failures, so against an app that never fails it climbs to max.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AimdConfig } from '../../src/core/limits/adaptive.ts';
import { AimdLimit } from '../../src/core/limits/aimd.ts';
import { CapacityModel, Simulation } from '../helpers/capacity-model.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { drive, feed, neverGrowsWhileUnused, stepArb, watch } from '../helpers/limit-samples.ts';

const config = (o: Partial<AimdConfig> = {}): AimdConfig => ({ algorithm: 'aimd', min: 1, max: 1000, initial: 10, backoff: 0.9, timeout: 5000, ...o });


describe('AIMD limit: invariants under hostile samples', () => {
  it('stays a whole number in [min, max]; every change told to the listener, then onChange; a reload only clamps', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 300 }),
        fc.double({ min: 0.05, max: 0.95, noNaN: true }),
        fc.double({ min: 1, max: 1e6, noNaN: true }),
        fc.array(stepArb(), { maxLength: 60 }),
        (min, span, backoff, timeout, steps) => {
          const c = (lo: number, hi: number) => config({ min: lo, max: hi, initial: lo, backoff, timeout });
          drive((clock) => new AimdLimit({ ...c(min, min + span), initial: min + (span >> 1) }, clock), c, steps, { min, max: min + span });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('all-ignored samples teach nothing', () => {
    fc.assert(
      fc.property(fc.array(stepArb({ outcome: fc.constant('ignored') }).filter((s) => s.t !== 'retune'), { maxLength: 60 }), (steps) => {
        const a = drive((clock) => new AimdLimit(config({ initial: 40 }), clock), (min, max) => config({ min, max, initial: min }), steps, { min: 1, max: 1000 });
        expect([a.limit, a.minRttMs, a.sampleRttMs]).toEqual([40, undefined, undefined]);
      }),
    );
  });

  it('never grows while in-flight stays well below the limit', () => {
    neverGrowsWhileUnused((initial, clock) => new AimdLimit(config({ initial }), clock));
  });
});

describe('AIMD limit: reactions', () => {
  it('+1 per limit’s worth of successes that found it used (why headroom)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 5 }), (initial, rounds) => {
        const clock = new FakeClock();
        const a = new AimdLimit(config({ initial }), clock);
        const { changes } = watch(a);
        for (let r = 0; r < rounds; r++) {
          const l = a.limit;
          // Each started after the last change (1 ms RTT, the clock moving 2 ms per sample).
          for (let i = 0; i < l - 1; i++) {
            clock.advance(2);
            feed(a, 1, l);
          }
          expect(a.limit).toBe(l);
          clock.advance(2);
          feed(a, 1, Math.ceil(0.8 * l));
          expect(a.limit).toBe(l + 1);
        }
        expect(changes.map((c) => c.why)).toEqual(new Array(rounds).fill('headroom'));
      }),
    );
  });

  it('× backoff on a drop (why drop) or a success slower than timeout (why timeout), once per RTT interval, once failures are DROP_SHARE of the answers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 1000 }), fc.double({ min: 0.05, max: 0.95, noNaN: true }), fc.integer({ min: 7, max: 30 }), fc.boolean(), (initial, backoff, burst, slow) => {
        const clock = new FakeClock();
        const a = new AimdLimit(config({ initial, backoff, timeout: 100 }), clock);
        const { changes } = watch(a);
        clock.advance(10_000);
        const fail = () => (slow ? feed(a, 150, initial, 'success') : feed(a, 5, initial, 'dropped'));
        for (let i = 0; i < burst; i++) fail();
        const once = Math.max(1, Math.floor(initial * backoff));
        expect(a.limit).toBe(once);
        expect(changes).toEqual([{ from: initial, to: once, why: slow ? 'timeout' : 'drop' }]);
        // A success within the timeout is no failure.
        feed(a, 99, once, 'success');
        expect(a.limit).toBe(once);
      }),
    );
  });

  it('retune keeps the limit clamped into the new bounds; refuses another algorithm; validates', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 200 }), (initial, min, span) => {
        const a = new AimdLimit(config({ initial }), new FakeClock());
        const { changes } = watch(a);
        a.retune(config({ min, max: min + span, initial: min, timeout: 10 }));
        const want = Math.min(min + span, Math.max(min, initial));
        expect(a.limit).toBe(want);
        expect(changes).toEqual(want === initial ? [] : [{ from: initial, to: want, why: 'reload' }]);
      }),
    );
    const a = new AimdLimit(config(), new FakeClock());
    expect(() => a.retune({ algorithm: 'gradient', min: 1, max: 10, initial: 1, tolerance: 1.5, backoff: 0.9, minRttWindow: 1000 })).toThrow(/cannot be retuned to gradient/);
    expect(() => new AimdLimit(config({ timeout: 0 }), new FakeClock())).toThrow(/timeout must be a number > 0, got 0/);
  });
});

describe('AIMD limit against the capacity model', () => {
  const appArb = fc.record({
    slots: fc.integer({ min: 10, max: 60 }),
    serviceMs: fc.integer({ min: 5, max: 30 }),
    jitter: fc.constantFrom(0, 0.1, 0.2),
    seed: fc.integer(),
    initial: fc.integer({ min: 1, max: 200 }),
  });

  it('in front of an app that sheds (503) beyond a queue of q, it settles near c + q', () => {
    fc.assert(
      fc.property(appArb, fc.integer({ min: 2, max: 30 }), (a, q) => {
        const app = new CapacityModel({ ...a, shedAbove: q });
        const sim = new Simulation({ app, seed: a.seed, algorithm: (clock) => new AimdLimit(config({ initial: a.initial, timeout: 60_000 }), clock) });
        sim.openLoop(() => (3 * app.slots) / app.serviceMs).run(1500 * a.serviceMs);
        const full = a.slots + q;
        const { lo, hi } = sim.band(1000 * a.serviceMs);
        expect(lo).toBeGreaterThanOrEqual(0.8 * full);
        expect(hi).toBeLessThanOrEqual(1.15 * full + 2);
        expect(sim.dropped).toBeGreaterThan(0);
      }),
      { numRuns: 12 },
    );
  });

  it('with a timeout T against an app that never sheds, it settles below c × T / s (where answers start to time out)', () => {
    fc.assert(
      fc.property(appArb, fc.double({ min: 1.5, max: 4, noNaN: true }), (a, ratio) => {
        const app = new CapacityModel(a);
        const timeout = ratio * a.serviceMs;
        const sim = new Simulation({ app, seed: a.seed, algorithm: (clock) => new AimdLimit(config({ initial: a.initial, timeout }), clock) });
        sim.openLoop(() => (3 * app.slots) / app.serviceMs).run(1500 * a.serviceMs);
        const edge = (a.slots * timeout) / a.serviceMs;
        const { lo, hi } = sim.band(1000 * a.serviceMs);
        expect(hi).toBeLessThanOrEqual(1.05 * edge + 2);
        expect(lo).toBeGreaterThanOrEqual((0.5 * edge) / (1 + a.jitter));
      }),
      { numRuns: 12 },
    );
  });

  it('learns only from failures: against an app that never fails or times out, it climbs to max', () => {
    const app = new CapacityModel({ slots: 10, serviceMs: 10, jitter: 0.2, seed: 1 });
    const sim = new Simulation({ app, seed: 1, algorithm: (clock) => new AimdLimit(config({ max: 60, timeout: 60_000 }), clock) });
    sim.openLoop(() => 3).run(20_000);
    expect(sim.limiter.max).toBe(60);
  });
});
