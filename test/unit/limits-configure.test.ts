/**
 * Issue 12: building adaptive limits (src/core/limits/configure.ts), a raised limit waking the
 * limiter's queue, and retune being all or nothing. Reload switching is test/unit/adaptive-reload.
 */
import { describe, expect, it } from 'vitest';
import { FixedLimit } from '../../src/core/limit-algorithm.ts';
import { Limiter, QueueEntry, isAdaptive } from '../../src/core/limiter.ts';
import type { AimdConfig, GradientConfig } from '../../src/core/limits/adaptive.ts';
import { AimdLimit } from '../../src/core/limits/aimd.ts';
import { createAdaptiveLimit } from '../../src/core/limits/configure.ts';
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
    expect([g.wantsSamples, g.algorithm, isAdaptive(g), isAdaptive(new FixedLimit(3))]).toEqual([true, 'gradient', true, false]);
    expect(g.snapshot()).toEqual({ algorithm: 'gradient', min: 1, max: 100, minRttMs: undefined, sampleRttMs: undefined });
  });
});

describe('an adaptive limit in a limiter', () => {
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
