/**
 * `adaptive` in a limiter's config (issue 12): the limit finds itself between `min` and `max`
 * instead of being a fixed `max`. One mapping per algorithm, told apart by `algorithm`; its
 * output is the algorithms' own `AdaptiveConfig` (src/core/limits/adaptive.ts), every default
 * resolved, durations in ms.
 */
import { z } from 'zod';
import { duration, fraction, whole } from './config-fields.ts';
import { show } from './config-messages.ts';
import { isRecord } from './objects.ts';
import type { AdaptiveConfig } from './limits/adaptive.ts';
import { AIMD_DEFAULTS, GRADIENT_DEFAULTS } from './limits/configure.ts';

export const ADAPTIVE_DEFAULTS = { min: 4, max: 1000, initial: 20 } as const;

// `min` and `initial` default relative to `max`, so `max: 10` alone is a valid config: their
// defaults are resolved after parsing and shown in the JSON Schema as what they usually are.
const common = {
  min: whole(1)
    .optional()
    .meta({ default: ADAPTIVE_DEFAULTS.min })
    .describe('the limit never goes below this (>= 1), so a burst of slow answers cannot shut the app off; default 4 (max when max is lower)'),
  max: whole(1)
    .default(ADAPTIVE_DEFAULTS.max)
    .describe('nor above this: the most the app should ever be trusted with; default 1000'),
  initial: whole(1)
    .optional()
    .meta({ default: ADAPTIVE_DEFAULTS.initial })
    .describe('where the limit starts, in [min, max]; a reload that switches a busy limiter starts at its current limit instead; default 20 (clamped into [min, max])'),
};

const gradient = z
  .strictObject({
    algorithm: z.literal('gradient').describe('gradient: follows the ratio of the no-load latency (minRTT) to the latest latency'),
    ...common,
    tolerance: fraction(GRADIENT_DEFAULTS.tolerance, 1).describe(
      'latency may grow to tolerance × the no-load latency before the limit shrinks (> 1); default 1.25: the limit settles near 1.25 × the app\'s own concurrency, enough queue to keep every slot busy, little enough that admitted latency stays well within 2 × the no-load one',
    ),
    backoff: fraction(GRADIENT_DEFAULTS.backoff, 0, 1).describe('the limit is multiplied by this on a drop (5xx, upstream timeout or refusal, once they are a tenth of the answers), 0 < backoff < 1; default 0.9'),
    minRttWindow: duration(1)
      .prefault('30s')
      .describe('how long a minRTT estimate stays good without a fresh light-load sample; default 30s: long enough to span a burst, short enough to follow a deploy'),
  })
  .describe('gradient: latency-driven, for apps whose latency grows before they fail');

const aimd = z
  .strictObject({
    algorithm: z.literal('aimd').describe('aimd: additive increase on success, multiplicative decrease on a drop or a too-slow answer'),
    ...common,
    backoff: fraction(AIMD_DEFAULTS.backoff, 0, 1).describe('the limit is multiplied by this on a drop or a success slower than timeout (once they are a tenth of the answers), 0 < backoff < 1; default 0.9'),
    timeout: duration(1)
      .prefault('5s')
      .describe('a success slower than this counts as a drop; default 5s: set it near the latency your clients give up at'),
  })
  .describe('aimd: loss-driven, for apps that fail fast when overloaded');

// The union's own issue sits at `adaptive.algorithm` when the mapping has no known algorithm.
const adaptiveMessage = (iss: { code?: string; input?: unknown }): string => {
  if (iss.code !== 'invalid_union' || !isRecord(iss.input)) return `must be a mapping with algorithm: gradient or aimd, got ${show(iss.input)}`;
  const algorithm = iss.input['algorithm'];
  return algorithm === undefined ? 'is required: "gradient" or "aimd"' : `must be "gradient" or "aimd", got ${show(algorithm)}`;
};

/** The adaptive limit of one limiter, validated and with every default resolved. */
export const adaptiveSchema = z
  .discriminatedUnion('algorithm', [gradient, aimd], { error: adaptiveMessage })
  .superRefine((a, ctx) => {
    const min = a.min ?? Math.min(ADAPTIVE_DEFAULTS.min, a.max);
    if (a.min !== undefined && a.min > a.max) {
      ctx.addIssue({ code: 'custom', path: ['min'], message: `must be <= adaptive.max (${a.max}), got ${a.min}` });
    } else if (a.initial !== undefined && (a.initial < min || a.initial > a.max)) {
      ctx.addIssue({ code: 'custom', path: ['initial'], message: `must be between adaptive.min (${min}) and adaptive.max (${a.max}), got ${a.initial}` });
    }
  })
  .transform((a): AdaptiveConfig => {
    const min = a.min ?? Math.min(ADAPTIVE_DEFAULTS.min, a.max);
    const initial = a.initial ?? Math.min(a.max, Math.max(min, ADAPTIVE_DEFAULTS.initial));
    return a.algorithm === 'gradient'
      ? { algorithm: 'gradient', min, max: a.max, initial, tolerance: a.tolerance, backoff: a.backoff, minRttWindow: a.minRttWindow }
      : { algorithm: 'aimd', min, max: a.max, initial, backoff: a.backoff, timeout: a.timeout };
  })
  .describe('instead of max: a limit that finds itself between min and max from the latency and errors of released requests');

/**
 * A limiter's limit as the rest of the code reads it: a fixed `max`, or `adaptive` (then `max`
 * is absent). The two optional `undefined`s let a reader test either key without a cast.
 */
export type LimitChoice = { readonly max: number; readonly adaptive?: undefined } | { readonly max?: undefined; readonly adaptive: AdaptiveConfig };
