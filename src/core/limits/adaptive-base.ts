/**
 * What the adaptive algorithms share: the clamped integer limit and who is told when it moves,
 * the RTT interval that paces them (one decision, and one decrease, per interval), the smoothed
 * sample RTT and the passive minRTT. The algorithms (gradient.ts, aimd.ts) only say what a
 * congestion event does and what to decide once per interval.
 *
 * A decision rests only on samples that started under the limit in force ("fresh": a sample's
 * start is its release time minus its RTT), waits two intervals after a change (the first
 * fresh answers back are the fast ones) and at least DECISION_SAMPLES fresh successes. The
 * sample RTT is the median of the interval's fresh successes: a mean would be pulled by a few
 * slow answers, and a low percentile by the few requests that got into new room before the
 * app's queue had caught up with a raised limit.
 */
import type { Clock } from '../clock.ts';
import { PortcullisError } from '../errors.ts';
import type { LimitListener, LimitSample } from '../limit-algorithm.ts';
import type { AdaptiveAlgorithmName, AdaptiveConfig, AdaptiveLimit, AdaptiveSnapshot, LimitChange, LimitChangeReason } from './adaptive.ts';
import { isLightLoad, median, MIN_RTT_SAMPLES, MinRtt } from './min-rtt.ts';

/**
 * Decisions come at most this often, ms, however fast the app answers: below it a "round
 * trip" is mostly timer resolution and our own work, and each decision would rest on a
 * handful of samples.
 */
export const INTERVAL_MIN_MS = 10;
/** And at least this often while samples come, ms, so a slow app does not slow the reaction too. */
export const INTERVAL_MAX_MS = 1000;
/** A limit counts as used when a sample started with at least this share of it in flight. */
export const USED_SHARE = 0.8;
/**
 * Under one limit, the smoothed RTT moves to an interval's median by count / (count + this): a
 * busy interval replaces it nearly outright, a sparse one only nudges it. A changed limit
 * starts it afresh (what the old limit caused is no guide to the new one's).
 */
const SMOOTHING_PRIOR = 4;
/**
 * A decision waits for this many fresh successes (or INTERVAL_MAX_MS): the median of fewer is
 * mostly the luck of the draw.
 */
export const DECISION_SAMPLES = 10;
/** No decision sooner than this many intervals after a change. */
const SETTLE_INTERVALS = 3;
/** minRTT's window when the config has none (AIMD's: it only reports minRTT). */
export const DEFAULT_MIN_RTT_WINDOW_MS = 30_000;
/**
 * Failures (drops, and AIMD's too-slow successes) are congestion only while they are at least
 * this share of the answers, smoothed over about DROP_SMOOTHING of them: a client that can make
 * the app fail (a path that answers 500) must not shed everybody else with a trickle of such
 * requests, while an app in trouble fails far more than one answer in ten. An app failing every
 * answer crosses it within 7 failures.
 */
export const DROP_SHARE = 0.1;
export const DROP_SMOOTHING = 64;
/** A sample that started within this of a change counts as started after it (float noise). */
const SAME_INSTANT_MS = 1e-6;

/** Throws on a config the schema should have refused (before anything is applied: a retune is all or nothing). */
export function checkCommon(config: AdaptiveConfig): void {
  const { min, max, initial, backoff } = config;
  const bad = (what: string, v: unknown) => new PortcullisError('CONFIG_INVALID', `adaptive (${config.algorithm}): ${what}, got ${String(v)}`);
  if (!Number.isInteger(min) || min < 1) throw bad('min must be a whole number >= 1', min);
  if (!Number.isInteger(max) || max < min) throw bad(`max must be a whole number >= min (${min})`, max);
  if (!Number.isInteger(initial) || initial < min || initial > max) throw bad(`initial must be a whole number in [${min}, ${max}]`, initial);
  if (!(backoff > 0 && backoff < 1)) throw bad('backoff must be in (0, 1)', backoff);
}

export function checkPositive(config: AdaptiveConfig, field: string, v: number): void {
  if (!(v > 0) || v === Infinity) {
    throw new PortcullisError('CONFIG_INVALID', `adaptive (${config.algorithm}): ${field} must be a number > 0, got ${String(v)}`);
  }
}

/** `start` rounded and clamped into [min, max]; `initial` when not given. */
export function startLimit(config: AdaptiveConfig, start: number | undefined): number {
  if (start === undefined || !Number.isFinite(start)) return config.initial;
  return Math.min(config.max, Math.max(config.min, Math.round(start)));
}

export abstract class AdaptiveBase implements AdaptiveLimit {
  abstract readonly algorithm: AdaptiveAlgorithmName;
  readonly wantsSamples = true as const;
  onChange: ((change: LimitChange) => void) | undefined = undefined;
  protected readonly clock: Clock;
  protected readonly rtt: MinRtt;
  protected min: number;
  protected max: number;
  private value: number;
  /** The limit before the last change: the one in force for most samples that started before it. */
  private previous: number;
  private listener: LimitListener | undefined = undefined;
  private smoothed: number | undefined = undefined;
  /** When the limit last changed: samples that started before it tell of the old limit. */
  private changedAt: number;
  private decreasedAt = -Infinity;
  /** When the smoothed RTT last took in an interval. */
  private decidedAt = -Infinity;
  private nextDecisionAt: number;
  // This interval's fresh successes: the newest MIN_RTT_SAMPLES of their RTTs.
  private readonly rtts = new Float64Array(MIN_RTT_SAMPLES);
  private count = 0;
  private intervalFrom: number;
  private used = false;
  private dropped = false;
  /** The smoothed share of failures among answers (see DROP_SHARE). */
  private failureShare = 0;

  constructor(config: AdaptiveConfig, clock: Clock, start: number | undefined, minRttWindowMs: number) {
    checkCommon(config);
    this.clock = clock;
    this.min = config.min;
    this.max = config.max;
    this.value = startLimit(config, start);
    this.previous = this.value;
    this.rtt = new MinRtt(minRttWindowMs);
    const now = clock.now();
    this.changedAt = now;
    this.intervalFrom = now;
    this.nextDecisionAt = now + INTERVAL_MIN_MS;
  }

  get limit(): number {
    return this.value;
  }
  get minRttMs(): number | undefined {
    return this.rtt.estimate;
  }
  get sampleRttMs(): number | undefined {
    return this.smoothed;
  }

  /** The RTT interval, ms: the smoothed RTT within [INTERVAL_MIN_MS, INTERVAL_MAX_MS]. */
  protected get interval(): number {
    const s = this.smoothed ?? 0;
    return s < INTERVAL_MIN_MS ? INTERVAL_MIN_MS : s > INTERVAL_MAX_MS ? INTERVAL_MAX_MS : s;
  }

  listen(listener: LimitListener | undefined): void {
    this.listener = listener;
  }

  snapshot(): AdaptiveSnapshot {
    return { algorithm: this.algorithm, min: this.min, max: this.max, minRttMs: this.rtt.estimate, sampleRttMs: this.smoothed };
  }

  abstract retune(config: AdaptiveConfig): void;

  onSample(sample: Readonly<LimitSample>): void {
    const { rttMs, outcome } = sample;
    // 'ignored' says nothing about the app; a broken clock says nothing at all.
    if (outcome === 'ignored' || !(rttMs >= 0) || rttMs === Infinity) return;
    const now = this.clock.now();
    const startedAt = now - rttMs;
    const fresh = startedAt + SAME_INSTANT_MS >= this.changedAt;
    const limitAtStart = fresh ? this.value : this.previous;
    const failed = outcome === 'dropped' || this.slowSuccess(rttMs);
    this.failureShare += ((failed ? 1 : 0) - this.failureShare) / DROP_SMOOTHING;
    if (outcome === 'success') {
      const light = isLightLoad(sample.inflightAtStart, limitAtStart, this.min);
      this.rtt.observe(rttMs, now, light);
      // The first estimate at once, not at the first decision (spans and stats show it).
      if (light && this.rtt.estimate === undefined) this.rtt.update(now);
      if (!failed && fresh) {
        this.rtts[this.count++ % MIN_RTT_SAMPLES] = rttMs;
        if (sample.inflightAtStart >= USED_SHARE * limitAtStart) {
          this.used = true;
          this.usedSuccess();
        }
      }
    }
    // A failure below the share is the odd one out (or a client's doing): it teaches nothing.
    if (failed && this.failureShare >= DROP_SHARE) {
      this.dropped = true;
      this.congestion(startedAt, now, outcome === 'dropped' ? 'drop' : 'timeout');
    }
    if (now >= this.nextDecisionAt && (this.count >= DECISION_SAMPLES || now - this.intervalFrom >= INTERVAL_MAX_MS)) this.decideNow(now);
  }

  /** A success that still counts as congestion (AIMD's timeout). */
  protected slowSuccess(_rttMs: number): boolean {
    return false;
  }
  /** A fresh success that found the limit used. */
  protected usedSuccess(): void {}
  /**
   * Once per RTT interval with fresh successes: their smoothed median RTT, the no-load median
   * (undefined before any light-load sample), whether one found the limit used, whether
   * anything dropped.
   */
  protected abstract decide(sampleRtt: number, noLoadRtt: number | undefined, used: boolean, dropped: boolean): void;

  /** The new limit for a congestion event (drop, timeout). */
  protected abstract backoff(limit: number): number;

  /**
   * One congestion event per RTT interval: a drop or timeout of a request that started before
   * the last decrease was already answered by it, and a burst of fast failures right after it
   * waits for the interval to pass.
   */
  private congestion(startedAt: number, now: number, why: LimitChangeReason): void {
    if (startedAt + SAME_INSTANT_MS < this.decreasedAt || now - this.decreasedAt < this.interval) return;
    this.change(this.backoff(this.value), why, now);
  }

  private decideNow(now: number): void {
    // Right after a change, the fresh samples back already are the fast ones (a slow one that
    // started after the change is still out): wait until those of a whole interval are in.
    if (now - this.changedAt < SETTLE_INTERVALS * this.interval) {
      this.nextDecisionAt = this.changedAt + SETTLE_INTERVALS * this.interval;
      return;
    }
    this.rtt.update(now);
    const { count, used, dropped } = this;
    if (count > 0) {
      const m = median(this.rtts, Math.min(count, MIN_RTT_SAMPLES));
      const s = this.smoothed;
      // What was smoothed under another limit says nothing about this one.
      const sameLimit = s !== undefined && this.decidedAt > this.changedAt;
      this.smoothed = sameLimit ? s + ((m - s) * count) / (count + SMOOTHING_PRIOR) : m;
      this.decidedAt = now;
    }
    this.nextDecisionAt = now + this.interval;
    this.resetInterval(now);
    if (count > 0) this.decide(this.smoothed as number, this.rtt.median, used, dropped);
  }

  private resetInterval(now = this.clock.now()): void {
    this.intervalFrom = now;
    this.count = 0;
    this.used = false;
    this.dropped = false;
  }

  /** Sets the limit (clamped, whole); tells the listener, then `onChange`. False when unchanged. */
  protected change(to: number, why: LimitChangeReason, now = this.clock.now()): boolean {
    const next = Math.min(this.max, Math.max(this.min, Math.floor(to)));
    const from = this.value;
    if (next === from) return false;
    this.previous = from;
    this.value = next;
    this.changedAt = now;
    if (next < from) this.decreasedAt = now;
    // What this interval saw was under the old limit.
    this.resetInterval(now);
    this.listener?.limitChanged();
    this.onChange?.({ from, to: next, why });
    return true;
  }

  /** A reload's new bounds: the limit clamped into them ('reload' when that moved it). */
  protected rebound(min: number, max: number, minRttWindowMs: number): void {
    this.min = min;
    this.max = max;
    this.rtt.setWindow(minRttWindowMs);
    this.change(this.value, 'reload');
  }
}
