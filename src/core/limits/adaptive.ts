/**
 * Limits that find themselves (issue "3 of 7"): the contract between the algorithms in this
 * folder and the rest of the code. A limiter whose config says `adaptive: {...}` instead of
 * `max` gets an `AdaptiveLimit` (a `LimitAlgorithm` that wants samples); everything else
 * (admission, queues, counts, reload) is unchanged, because the limiter reads `limit` on every
 * check and wakes its queue when the algorithm says the limit went up.
 */
import type { Clock } from '../clock.ts';
import type { LimitAlgorithm } from '../limit-algorithm.ts';

export type AdaptiveAlgorithmName = 'gradient' | 'aimd';

/** Parameters every adaptive algorithm shares (config `adaptive`, defaults in config-schema.ts). */
interface AdaptiveCommon {
  /** The limit never goes below this (>= 1): no probe window pins it lower. */
  min: number;
  /** Nor above this. */
  max: number;
  /** Where it starts, in [min, max]. */
  initial: number;
}

export interface GradientConfig extends AdaptiveCommon {
  algorithm: 'gradient';
  /** Latency may rise to tolerance × minRTT before the limit shrinks (> 1). */
  tolerance: number;
  /** Multiplier on a drop (0 < backoff < 1). */
  backoff: number;
  /** How long a minRTT estimate stays good without fresh light-load samples, ms. */
  minRttWindow: number;
}

export interface AimdConfig extends AdaptiveCommon {
  algorithm: 'aimd';
  /** Multiplier on a drop or a too-slow success (0 < backoff < 1). */
  backoff: number;
  /** A success slower than this counts as a drop, ms. */
  timeout: number;
}

export type AdaptiveConfig = GradientConfig | AimdConfig;

/** Why a limit moved; the `why` of the "limit changed" log line. */
export type LimitChangeReason = 'reload' | 'drop' | 'latency' | 'headroom' | 'timeout';

export interface LimitChange {
  from: number;
  to: number;
  why: LimitChangeReason;
}

/** What /stats and spans show of an adaptive limiter besides its limit. */
export interface AdaptiveSnapshot {
  algorithm: AdaptiveAlgorithmName;
  min: number;
  max: number;
  /** The passive no-load latency estimate, ms; undefined until a light-load sample came. */
  minRttMs: number | undefined;
  /** The latest (smoothed) sample RTT the algorithm acted on, ms; undefined before any. */
  sampleRttMs: number | undefined;
}

export interface AdaptiveLimit extends LimitAlgorithm {
  readonly algorithm: AdaptiveAlgorithmName;
  readonly wantsSamples: true;
  /** Fresh object each call (stats, 1 Hz); the getters below are for the per-request span. */
  snapshot(): AdaptiveSnapshot;
  readonly minRttMs: number | undefined;
  readonly sampleRttMs: number | undefined;
  /**
   * A reload with the same algorithm: takes the new parameters in place, keeps what was learnt
   * (minRTT, the limit, clamped into the new [min, max]); a changed clamp reports 'reload'.
   * `initial` only applies to a new limiter.
   */
  retune(config: AdaptiveConfig): void;
  /** Told after every change of `limit` (after the limiter's listener), with why; for the log. */
  onChange: ((change: LimitChange) => void) | undefined;
}

/** Options of a new adaptive limit besides its config. */
export interface AdaptiveOptions {
  /**
   * Where to start instead of `initial` (rounded, clamped into [min, max]): the limit in force
   * when a reload switches algorithms, so a switch under load does not jump.
   */
  start?: number;
}

export type AdaptiveFactory = (config: AdaptiveConfig, clock: Clock, options?: AdaptiveOptions) => AdaptiveLimit;
