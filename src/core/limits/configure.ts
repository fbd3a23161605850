/**
 * Building an adaptive limit from its config. What a reload does to a limiter's limit (retune
 * in place, or switch algorithms) is src/core/limit-config.ts's `LimitKeeper`; a switch passes
 * `start` (the limit in force, clamped into the new [min, max]) so it does not jump under load.
 */
import type { AdaptiveFactory } from './adaptive.ts';
import { AimdLimit } from './aimd.ts';
import { GradientLimit } from './gradient.ts';

/**
 * Suggested defaults for config-schema.ts (which owns them). tolerance 1.25: settles near 1.25 ×
 * the app's concurrency, latency about 1.25 × no-load (2 would allow a queue as long as the
 * app's slots). backoff 0.9: one drop is one congestion event per RTT interval, so a gentle
 * cut is enough and repeated drops still halve the limit in about 7 intervals. minRttWindow
 * 30 s: long enough that a spike of a few seconds barely moves minRTT, short enough that a
 * lasting slowdown is accepted within about two minutes. timeout 5 s: AIMD's only latency
 * signal, so a slow but healthy route must not trip it; well below the 60 s upstream timeout.
 */
export const GRADIENT_DEFAULTS = { tolerance: 1.25, backoff: 0.9, minRttWindow: 30_000 } as const;
export const AIMD_DEFAULTS = { backoff: 0.9, timeout: 5_000 } as const;

export const createAdaptiveLimit: AdaptiveFactory = (config, clock, options) =>
  config.algorithm === 'gradient' ? new GradientLimit(config, clock, options?.start) : new AimdLimit(config, clock, options?.start);
