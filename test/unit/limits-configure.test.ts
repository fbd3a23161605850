/**
 * Issue 12: building adaptive limits and what a reload does to a limiter's limit
 * (src/core/limits/configure.ts): retune in place for the same algorithm, build anew on a
 * switch, starting from the limit in force so a switch under load does not jump.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FixedLimit } from '../../src/core/limit-algorithm.ts';
import { Limiter, QueueEntry } from '../../src/core/limiter.ts';
import type { AdaptiveConfig, AimdConfig, GradientConfig } from '../../src/core/limits/adaptive.ts';
import { AimdLimit } from '../../src/core/limits/aimd.ts';
import { applyLimitReload, createAdaptiveLimit, isAdaptiveLimit, planLimitReload } from '../../src/core/limits/configure.ts';
import { GradientLimit } from '../../src/core/limits/gradient.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const gradient = (o: Partial<GradientConfig> = {}): GradientConfig => ({ algorithm: 'gradient', min: 1, max: 100, initial: 10, tolerance: 1.5, backoff: 0.9, minRttWindow: 30_000, ...o });
const aimd = (o: Partial<AimdConfig> = {}): AimdConfig => ({ algorithm: 'aimd', min: 1, max: 100, initial: 10, backoff: 0.9, timeout: 5000, ...o });

describe('createAdaptiveLimit', () => {
  it('builds the configured algorithm, from initial or from a start clamped into [min, max]', () => {
    const clock = new FakeClock();
    expect(createAdaptiveLimit(gradient(), clock)).toBeInstanceOf(GradientLimit);
    expect(createAdaptiveLimit(aimd(), clock)).toBeInstanceOf(AimdLimit);
    expect(createAdaptiveLimit(gradient(), clock).limit).toBe(10);
    expect(createAdaptiveLimit(gradient({ min: 5, max: 50 }), clock, { start: 80 }).limit).toBe(50);
    expect(createAdaptiveLimit(aimd({ min: 5, max: 50 }), clock, { start: 0 }).limit).toBe(5);
    expect(createAdaptiveLimit(aimd(), clock, { start: 7.6 }).limit).toBe(8);
    expect(createAdaptiveLimit(aimd(), clock, { start: Number.NaN }).limit).toBe(10);
    const g = createAdaptiveLimit(gradient(), clock);
    expect([g.wantsSamples, g.algorithm, isAdaptiveLimit(g), isAdaptiveLimit(new FixedLimit(3))]).toEqual([true, 'gradient', true, false]);
    expect(g.snapshot()).toEqual({ algorithm: 'gradient', min: 1, max: 100, minRttMs: undefined, sampleRttMs: undefined });
  });
});

describe('planLimitReload', () => {
  const clock = new FakeClock();

  it('fixed to fixed: set in place', () => {
    const f = new FixedLimit(7);
    const plan = planLimitReload(f, { max: 9 });
    expect(plan).toEqual({ kind: 'resize', limit: f, max: 9 });
    expect(applyLimitReload(plan, clock)).toBe(f);
    expect(f.limit).toBe(9);
  });

  it('the same adaptive algorithm: retuned in place, keeping minRTT and the limit (clamped)', () => {
    const g = new GradientLimit(gradient({ initial: 40 }), clock);
    g.onSample({ rttMs: 5, inflightAtStart: 1, outcome: 'success' });
    const plan = planLimitReload(g, gradient({ min: 1, max: 30, tolerance: 2 }));
    expect(plan.kind).toBe('retune');
    expect(applyLimitReload(plan, clock)).toBe(g);
    expect([g.limit, g.minRttMs]).toEqual([30, 5]);
  });

  it('any switch builds anew from the limit in force, clamped into the new [min, max]', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: 500 }).map((n) => ({ kind: 'fixed' as const, n })),
          fc.integer({ min: 1, max: 500 }).map((n) => ({ kind: 'gradient' as const, n })),
          fc.integer({ min: 1, max: 500 }).map((n) => ({ kind: 'aimd' as const, n })),
        ),
        fc.constantFrom('fixed' as const, 'gradient' as const, 'aimd' as const),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 300 }),
        (from, to, min, span) => {
          const current = from.kind === 'fixed' ? new FixedLimit(from.n) : createAdaptiveLimit(from.kind === 'gradient' ? gradient({ max: 500, initial: from.n }) : aimd({ max: 500, initial: from.n }), clock);
          const next: AdaptiveConfig | { max: number } = to === 'fixed' ? { max: min + span } : to === 'gradient' ? gradient({ min, max: min + span, initial: min }) : aimd({ min, max: min + span, initial: min });
          const plan = planLimitReload(current, next);
          const built = applyLimitReload(plan, clock);
          if (from.kind === to) {
            expect(built).toBe(current);
            expect(plan.kind).toBe(to === 'fixed' ? 'resize' : 'retune');
          } else expect(built).not.toBe(current);
          // Fixed takes its max; adaptive keeps (or starts from) the limit in force, clamped.
          expect(built.limit).toBe(to === 'fixed' ? min + span : Math.min(min + span, Math.max(min, from.n)));
        },
      ),
    );
  });

  it('a limiter on an adaptive limit wakes its queue when a reload raises the limit (the listener)', () => {
    const clk = new FakeClock();
    const g = new GradientLimit(gradient({ initial: 2 }), clk);
    const l = new Limiter({ name: 'route:r', kind: 'route', limits: { max: 0, queueSize: 5, queueTimeout: 60_000 }, clock: clk, algorithm: g });
    const woken: number[] = [];
    class Entry extends QueueEntry {
      onRoom(from: Limiter): void {
        if (from.tryAcquire()) woken.push(this.order);
      }
      onDeadline(): void {}
    }
    l.tryAcquire();
    l.tryAcquire();
    for (const i of [1, 2, 3]) l.enqueue(new Entry(i), 60_000);
    expect(l.hasRoom()).toBe(false);
    g.retune(gradient({ min: 4 }));
    expect(woken).toEqual([1, 2]);
    expect(l.snapshot()).toMatchObject({ max: 4, inflight: 4, queued: 1 });
  });
});

describe('retune is all or nothing', () => {
  it('an invalid config changes nothing', () => {
    const g = new GradientLimit(gradient({ initial: 40 }), new FakeClock());
    expect(() => g.retune(gradient({ min: 50, max: 10, initial: 50, tolerance: 3 }))).toThrow(/max must be a whole number >= min \(50\), got 10/);
    expect([g.limit, g.snapshot().max]).toEqual([40, 100]);
    const a = new AimdLimit(aimd({ initial: 40 }), new FakeClock());
    expect(() => a.retune(aimd({ backoff: 2 }))).toThrow(/backoff must be in \(0, 1\), got 2/);
  });
});
