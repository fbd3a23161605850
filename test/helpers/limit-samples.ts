/**
 * Hostile sample sequences for the adaptive limits: RTTs of 0, of hours, NaN and negative
 * ones; in-flight counts from 0 to far above the limit; random outcomes; time standing still
 * or jumping; reloads with new bounds. `drive` feeds one to a limit and checks, after every
 * step, what must always hold.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { LimitSample } from '../../src/core/limit-algorithm.ts';
import type { AdaptiveConfig, AdaptiveLimit, LimitChange } from '../../src/core/limits/adaptive.ts';
import type { ReleaseOutcome } from '../../src/core/release-outcome.ts';
import { FakeClock } from './fake-clock.ts';

export type Step =
  | { t: 'sample'; rttMs: number; inflight: number; outcome: ReleaseOutcome; repeat: number }
  | { t: 'advance'; ms: number }
  | { t: 'retune'; min: number; span: number };

export const outcomeArb: fc.Arbitrary<ReleaseOutcome> = fc.constantFrom('success', 'dropped', 'ignored');

export const rttArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: 1, max: 200, noNaN: true }) },
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.double({ min: 1e5, max: 1e10, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, -5, Infinity, Number.MIN_VALUE) },
);

export const stepArb = (o: { outcome?: fc.Arbitrary<ReleaseOutcome>; inflightMax?: number } = {}): fc.Arbitrary<Step> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        t: fc.constant('sample' as const),
        rttMs: rttArb,
        inflight: fc.integer({ min: 0, max: o.inflightMax ?? 400 }),
        outcome: o.outcome ?? outcomeArb,
        repeat: fc.integer({ min: 1, max: 40 }),
      }),
    },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 5000, noNaN: true })) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('retune' as const), min: fc.integer({ min: 1, max: 50 }), span: fc.integer({ min: 0, max: 300 }) }) },
  );

/** Feeds one sample (the object is reused, as the limiter does). */
const one: LimitSample = { rttMs: 0, inflightAtStart: 0, outcome: 'ignored' };
export function feed(limit: AdaptiveLimit, rttMs: number, inflightAtStart: number, outcome: ReleaseOutcome = 'success'): void {
  one.rttMs = rttMs;
  one.inflightAtStart = inflightAtStart;
  one.outcome = outcome;
  limit.onSample(one);
}

/**
 * The property both algorithms share: while every sample started with well under the limit in
 * flight (< 80 %, so the limit is not used), whatever the RTTs, outcomes and gaps, the limit
 * may fall but never grows.
 */
export function neverGrowsWhileUnused(make: (initial: number, clock: FakeClock) => AdaptiveLimit): void {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 500 }),
      fc.array(fc.record({ rtt: fc.double({ min: 0, max: 1e6, noNaN: true }), share: fc.double({ min: 0, max: 0.79, noNaN: true }), outcome: fc.constantFrom('success' as const, 'success' as const, 'dropped' as const, 'ignored' as const), gap: fc.double({ min: 0, max: 200, noNaN: true }) }), { maxLength: 400 }),
      (initial, samples) => {
        const clock = new FakeClock();
        const limit = make(initial, clock);
        const { changes } = watch(limit);
        for (const s of samples) {
          clock.advance(s.gap);
          feed(limit, s.rtt, Math.floor(s.share * limit.limit), s.outcome);
        }
        for (const c of changes) expect(c.to).toBeLessThan(c.from);
      },
    ),
    { numRuns: 200 },
  );
}

/** Records the order of listener calls and changes. */
export function watch(limit: AdaptiveLimit): { events: string[]; changes: LimitChange[] } {
  const events: string[] = [];
  const changes: LimitChange[] = [];
  limit.listen({ limitChanged: () => events.push(`listener:${limit.limit}`) });
  limit.onChange = (c) => {
    events.push(`change:${c.to}`);
    changes.push(c);
  };
  return { events, changes };
}

/**
 * Feeds `steps` to a limit built by `make` (one sample object reused, as the limiter does) and
 * checks after every step: the limit is a whole number in [min, max]; every change was told
 * to the listener first and then to onChange, from the old limit to the new, never to itself;
 * a reload moves it only to clamp it ('reload'), a sample never says 'reload'.
 */
export function drive(make: (clock: FakeClock) => AdaptiveLimit, retuned: (min: number, max: number) => AdaptiveConfig, steps: Step[], first: { min: number; max: number }): AdaptiveLimit {
  const clock = new FakeClock();
  const limit = make(clock);
  const { events, changes } = watch(limit);
  const sample: LimitSample = { rttMs: 0, inflightAtStart: 0, outcome: 'ignored' };
  let [min, max] = [first.min, first.max];
  for (const step of steps) {
    const before = limit.limit;
    const seen = changes.length;
    if (step.t === 'advance') clock.advance(step.ms);
    else if (step.t === 'retune') {
      [min, max] = [step.min, step.min + step.span];
      limit.retune(retuned(min, max));
      const expected = Math.min(max, Math.max(min, before));
      expect(limit.limit).toBe(expected);
      expect(changes.slice(seen)).toEqual(expected === before ? [] : [{ from: before, to: expected, why: 'reload' }]);
    } else {
      for (let i = 0; i < step.repeat; i++) {
        sample.rttMs = step.rttMs;
        sample.inflightAtStart = step.inflight;
        sample.outcome = step.outcome;
        limit.onSample(sample);
      }
      for (const c of changes.slice(seen)) expect(c.why).not.toBe('reload');
    }
    const l = limit.limit;
    expect(Number.isInteger(l)).toBe(true);
    expect(l).toBeGreaterThanOrEqual(min);
    expect(l).toBeLessThanOrEqual(max);
    let prev = before;
    for (const c of changes.slice(seen)) {
      expect(c.from).toBe(prev);
      expect(c.to).not.toBe(c.from);
      prev = c.to;
    }
    expect(prev).toBe(l);
    const snap = limit.snapshot();
    expect(snap).toEqual({ algorithm: limit.algorithm, min, max, minRttMs: limit.minRttMs, sampleRttMs: limit.sampleRttMs });
    for (const v of [snap.minRttMs, snap.sampleRttMs]) if (v !== undefined) expect(Number.isFinite(v) && v >= 0).toBe(true);
  }
  // Listener first, then onChange, once each per change.
  const expected = changes.flatMap((c) => [`listener:${c.to}`, `change:${c.to}`]);
  expect(events).toEqual(expected);
  return limit;
}
