/**
 * Issue 12: the passive minRTT estimate (src/core/limits/min-rtt.ts). It never asks the limit
 * for anything (no probe): it only hears samples, and keeps what it learnt under heavy load.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LimitSample } from '../../src/core/limit-algorithm.ts';
import { GradientLimit } from '../../src/core/limits/gradient.ts';
import { isLightLoad, MIN_RTT_SAMPLES, MinRtt } from '../../src/core/limits/min-rtt.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const W = 1000;

describe('minRTT: which samples are light load', () => {
  it.each([
    [1, 10, 1, true],
    [5, 10, 1, true],
    [6, 10, 1, false],
    [1, 1, 1, true],
    [4, 4, 4, true],
    [5, 5, 4, false],
    [0, 0, 1, true],
  ])('%i in flight of a limit of %i (min %i): %s', (inflight, limit, min, light) => {
    expect(isLightLoad(inflight, limit, min)).toBe(light);
  });

  it('through the gradient limit: light samples set it, loaded ones alone do not; failures never do', () => {
    const clock = new FakeClock();
    const g = new GradientLimit({ algorithm: 'gradient', min: 1, max: 100, initial: 10, tolerance: 1.5, backoff: 0.9, minRttWindow: W }, clock);
    // Loaded (6 of 10 in flight) and slower than the light one below: no bound on it.
    const s: LimitSample = { rttMs: 5, inflightAtStart: 6, outcome: 'success' };
    clock.advance(5);
    g.onSample(s);
    s.inflightAtStart = 1;
    s.rttMs = 1;
    s.outcome = 'dropped';
    g.onSample(s);
    s.outcome = 'ignored';
    g.onSample(s);
    expect(g.minRttMs).toBeUndefined();
    s.outcome = 'success';
    s.rttMs = 4;
    g.onSample(s);
    expect(g.minRttMs).toBe(4);
    // At min, even a full limit is light load: we cannot go lower.
    const m = new GradientLimit({ algorithm: 'gradient', min: 4, max: 100, initial: 4, tolerance: 1.5, backoff: 0.9, minRttWindow: W }, clock);
    s.inflightAtStart = 4;
    m.onSample(s);
    expect(m.minRttMs).toBe(4);
  });
});

describe('minRTT estimate', () => {
  it('undefined until a light-load sample; then the 10th percentile (and median) of those in the window', () => {
    const m = new MinRtt(W);
    for (let i = 1; i <= 100; i++) m.observe(i, 0, false);
    expect(m.update(0)).toBeUndefined();
    for (let i = 100; i >= 1; i--) m.observe(i, 0, true);
    expect(m.update(0)).toBe(10);
    expect(m.median).toBe(50);
  });

  it(`keeps the last ${MIN_RTT_SAMPLES} light samples only`, () => {
    const m = new MinRtt(W);
    for (let i = 0; i < 100; i++) m.observe(1, 0, true);
    for (let i = 0; i < MIN_RTT_SAMPLES; i++) m.observe(50, 0, true);
    expect(m.update(0)).toBe(50);
  });

  it('falls at once; rises by at most a quarter of the gap per window, and only on new light samples', () => {
    const m = new MinRtt(W);
    for (let i = 0; i < 50; i++) m.observe(10, 0, true);
    expect(m.update(0)).toBe(10);
    // A spike: slow light samples (the limit at min) fill the window.
    for (let i = 0; i < 50; i++) m.observe(50, 1500, true);
    expect(m.update(1600)).toBeCloseTo(10 + 0.25 * 40);
    // Over: no new light samples, the spike's stay in the window but do not keep pulling.
    expect(m.update(2000)).toBeCloseTo(20);
    expect(m.update(2400)).toBeCloseTo(20);
    // Faster light samples again: taken at once.
    for (let i = 0; i < 50; i++) m.observe(11, 2500, true);
    expect(m.update(2500)).toBe(11);
    // A first sample after a long idle moves it by at most a quarter of the gap too.
    m.observe(51, 100_000, true);
    expect(m.update(100_000)).toBeCloseTo(11 + 0.25 * 40);
  });

  it('without fresh light samples it is kept for ever and does not drift toward loaded latency; lower loaded samples lower it', () => {
    const m = new MinRtt(W);
    for (let i = 0; i < 50; i++) m.observe(10, 0, true);
    m.update(0);
    // 100 windows of heavy load only, at twice the no-load latency.
    for (let t = 100; t <= 100 * W; t += 100) {
      m.observe(20, t, false);
      m.update(t);
    }
    expect([m.estimate, m.median]).toEqual([10, 10]);
    // Loaded answers faster than the estimate: it was too high.
    for (let i = 0; i < 50; i++) m.observe(8, 100 * W + 1, false);
    expect(m.update(100 * W + 1)).toBe(8);
  });

  it('property: defined only after a light sample; always within the values seen; median >= p10; never NaN', () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('observe' as const), rtt: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1e7, noNaN: true })), light: fc.boolean(), n: fc.integer({ min: 1, max: 300 }) }),
      fc.record({ t: fc.constant('update' as const), dt: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 10 * W, noNaN: true })) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const m = new MinRtt(W);
        let now = 0;
        let [lo, hi, anyLight] = [Infinity, -Infinity, false];
        for (const o of ops) {
          if (o.t === 'observe') {
            for (let i = 0; i < o.n; i++) m.observe(o.rtt, now, o.light);
            lo = Math.min(lo, o.rtt);
            if (o.light) hi = Math.max(hi, o.rtt);
            anyLight ||= o.light;
          } else {
            now += o.dt;
            m.update(now);
            const [p10, p50] = [m.estimate, m.median];
            if (!anyLight) expect(p10).toBeUndefined();
            if (p10 === undefined || p50 === undefined) {
              expect(p50).toBe(p10);
              continue;
            }
            expect(p10).toBeGreaterThanOrEqual(lo);
            expect(p50).toBeLessThanOrEqual(hi);
            expect(p50).toBeGreaterThanOrEqual(p10);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
