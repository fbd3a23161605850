/**
 * A latency-gradient limit (Netflix's Gradient2 in spirit): the app is taken to be congested
 * when its sample RTT rises past tolerance × its no-load RTT, because only a queue in front of
 * the app's own slots makes latency grow with concurrency. Both are medians (the interval's
 * fresh successes; the light-load samples of minRTT's window, see min-rtt.ts): like with like,
 * so a wide latency spread is not mistaken for congestion. Once per RTT interval:
 *
 * - latency: sample RTT > tolerance × no-load RTT → limit × max(0.5, tolerance × no-load /
 *   sample), the limit at which latency would be back at the tolerance if it grows linearly
 *   with concurrency (at most halving per interval);
 * - headroom: otherwise, + up to ceil(sqrt(limit)), and at most a quarter of the limit: the
 *   full step far below the tolerance, shrinking to + 1 close to it (little overshoot to undo). There is
 *   no "queue" term that grows on its own: Gradient2's grows the limit without bound when the
 *   gradient sits near 0.8 (concurrency-limits PR #134).
 * - neither while the limit is not used (no fresh sample started with ≥ 80 % of it in flight):
 *   a limit well above its in-flight does not cause the latency and holds nothing back; nor
 *   grow after a drop in the interval.
 * - drop: a failed request multiplies the limit by `backoff`, once per RTT interval (one
 *   congestion event, not one per failed request), once failures are a tenth of the answers
 *   (adaptive-base.ts, DROP_SHARE).
 *
 * Where it settles. Against an app with c slots, latency is the service time up to c in flight
 * and grows in proportion beyond, so the limit settles near tolerance × c: with the default
 * 1.25 the app's queue is a quarter of its slots (a little queue keeps every slot busy, and
 * latency is about 1.25 × the no-load one); with 2 it would be as long as the slots, near 2c.
 * Measured with tolerance 1.5 in the capacity model (test/unit/limits-gradient.property.test.ts)
 * under 3× overload, once settled, over random apps (c = 10..100, service 2..50 ms ± 0..30 %,
 * open and closed loop): within [1.05c, 1.77c]. End to end with the defaults
 * (test/load/adaptive-capacity.load.test.ts, c = 8 then 4, 50 ms holds): the median limit
 * 10-12 for c = 8 and 5-6 for c = 4, admitted p99 1.6-1.9 × the unloaded one.
 */
import type { Clock } from '../clock.ts';
import { PortcullisError } from '../errors.ts';
import type { AdaptiveConfig, GradientConfig } from './adaptive.ts';
import { AdaptiveBase, checkCommon, checkPositive } from './adaptive-base.ts';

/**
 * The no-load RTT is read as at least this, ms: latency below a millisecond is mostly our own
 * work and timer resolution, and a zero one would call every answer congestion.
 */
export const MIN_RTT_FLOOR_MS = 1;
/** A headroom decision grows the limit by at most limit / this (and at least 1). */
const MAX_GROWTH_DIVISOR = 4;
/** A latency decision shrinks the limit to no less than this share of it. */
const MAX_SHRINK = 0.5;

export class GradientLimit extends AdaptiveBase {
  readonly algorithm = 'gradient' as const;
  private tolerance: number;
  private backoffBy: number;

  constructor(config: GradientConfig, clock: Clock, start?: number) {
    checkGradient(config);
    super(config, clock, start, config.minRttWindow);
    this.tolerance = config.tolerance;
    this.backoffBy = config.backoff;
  }

  retune(config: AdaptiveConfig): void {
    if (config.algorithm !== 'gradient') {
      throw new PortcullisError('CONFIG_INVALID', `a gradient limit cannot be retuned to ${config.algorithm}; build a new one`);
    }
    checkGradient(config);
    checkCommon(config);
    this.tolerance = config.tolerance;
    this.backoffBy = config.backoff;
    this.rebound(config.min, config.max, config.minRttWindow);
  }

  protected backoff(limit: number): number {
    return limit * this.backoffBy;
  }

  protected decide(sampleRtt: number, noLoadRtt: number | undefined, used: boolean, dropped: boolean): void {
    // No baseline yet, or a limit well above its in-flight: it neither causes the latency nor
    // holds anything back.
    if (noLoadRtt === undefined || !used) return;
    const limit = this.limit;
    const allowed = this.tolerance * Math.max(noLoadRtt, MIN_RTT_FLOOR_MS);
    if (sampleRtt > allowed) {
      this.change(limit * Math.max(MAX_SHRINK, allowed / sampleRtt), 'latency');
    } else if (!dropped) {
      // Full steps far below the tolerance, single ones close to it: less overshoot to undo.
      // Never more than a quarter of the limit at once: at small limits a sqrt step is a large
      // share of the app, and the first answers under a raised limit come back before the app's
      // queue has caught up with it, so they look better than the new limit really is.
      const headroom = (allowed - sampleRtt) / (allowed - noLoadRtt);
      const step = Math.min(Math.ceil(Math.sqrt(limit) * Math.min(1, headroom)), Math.floor(limit / MAX_GROWTH_DIVISOR));
      this.change(limit + Math.max(1, step), 'headroom');
    }
  }
}

function checkGradient(config: GradientConfig): void {
  if (!(config.tolerance > 1) || config.tolerance === Infinity) {
    throw new PortcullisError('CONFIG_INVALID', `adaptive (gradient): tolerance must be a number > 1, got ${String(config.tolerance)}`);
  }
  checkPositive(config, 'minRttWindow', config.minRttWindow);
}
