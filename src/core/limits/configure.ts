/**
 * Building an adaptive limit from its config, and what a reload does to a limiter's limit:
 * decide first (`planLimitReload`, pure), then apply (`applyLimitReload`). The same algorithm
 * is retuned in place, keeping what it learnt; a switch (fixed ↔ adaptive, gradient ↔ aimd)
 * builds a new one, and a new adaptive one starts from the limit in force (clamped into its
 * [min, max]) rather than `initial`, so a switch under load does not jump.
 */
import type { Clock } from '../clock.ts';
import { FixedLimit } from '../limit-algorithm.ts';
import type { LimitAlgorithm } from '../limit-algorithm.ts';
import type { AdaptiveConfig, AdaptiveFactory, AdaptiveLimit } from './adaptive.ts';
import { startLimit } from './adaptive-base.ts';
import { AimdLimit } from './aimd.ts';
import { GradientLimit } from './gradient.ts';

/**
 * Suggested defaults for config-schema.ts (which owns them). tolerance 1.5: settles near 1.5 ×
 * the app's concurrency, latency at most 1.5 × no-load (2 would allow a queue as long as the
 * app's slots). backoff 0.9: one drop is one congestion event per RTT interval, so a gentle
 * cut is enough and repeated drops still halve the limit in about 7 intervals. minRttWindow
 * 30 s: long enough that a spike of a few seconds barely moves minRTT, short enough that a
 * lasting slowdown is accepted within about two minutes. timeout 5 s: AIMD's only latency
 * signal, so a slow but healthy route must not trip it; well below the 60 s upstream timeout.
 */
export const GRADIENT_DEFAULTS = { tolerance: 1.5, backoff: 0.9, minRttWindow: 30_000 } as const;
export const AIMD_DEFAULTS = { backoff: 0.9, timeout: 5_000 } as const;

export const createAdaptiveLimit: AdaptiveFactory = (config, clock, options) =>
  config.algorithm === 'gradient' ? new GradientLimit(config, clock, options?.start) : new AimdLimit(config, clock, options?.start);

/** A limiter's limit as configured: a fixed `max`, or `adaptive`. */
export type LimitConfig = { max: number } | AdaptiveConfig;

export function isAdaptiveConfig(config: LimitConfig): config is AdaptiveConfig {
  return 'algorithm' in config;
}

export function isAdaptiveLimit(limit: LimitAlgorithm): limit is AdaptiveLimit {
  const a = limit as Partial<AdaptiveLimit>;
  return (a.algorithm === 'gradient' || a.algorithm === 'aimd') && typeof a.retune === 'function';
}

export type LimitReloadPlan =
  /** Fixed stays fixed: `set` in place. */
  | { kind: 'resize'; limit: FixedLimit; max: number }
  /** The same adaptive algorithm: `retune` in place (minRTT and the limit kept, clamped). */
  | { kind: 'retune'; limit: AdaptiveLimit; config: AdaptiveConfig }
  /** Adaptive (or anything else) to fixed: a new FixedLimit of `max`. */
  | { kind: 'fixed'; max: number }
  /** To adaptive from something else: a new one starting at `start` (already clamped). */
  | { kind: 'adaptive'; config: AdaptiveConfig; start: number };

export function planLimitReload(current: LimitAlgorithm, next: LimitConfig): LimitReloadPlan {
  if (!isAdaptiveConfig(next)) {
    return current instanceof FixedLimit ? { kind: 'resize', limit: current, max: next.max } : { kind: 'fixed', max: next.max };
  }
  if (isAdaptiveLimit(current) && current.algorithm === next.algorithm) return { kind: 'retune', limit: current, config: next };
  return { kind: 'adaptive', config: next, start: startLimit(next, current.limit) };
}

/**
 * Carries a plan out; returns the limit to use (the same object when changed in place). An
 * in-place change tells the limit's listener at once, as any change does: a caller applying
 * several must hold its wakes (the limiter does, see `Limiter.setLimits`).
 */
export function applyLimitReload(plan: LimitReloadPlan, clock: Clock, create: AdaptiveFactory = createAdaptiveLimit): LimitAlgorithm {
  switch (plan.kind) {
    case 'resize':
      plan.limit.set(plan.max);
      return plan.limit;
    case 'retune':
      plan.limit.retune(plan.config);
      return plan.limit;
    case 'fixed':
      return new FixedLimit(plan.max);
    case 'adaptive':
      return create(plan.config, clock, { start: plan.start });
  }
}
