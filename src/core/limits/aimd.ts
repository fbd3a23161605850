/**
 * Additive increase, multiplicative decrease (TCP Reno's rule for a window): + 1 for every
 * limit's worth of successes that found the limit used (started with ≥ 80 % of it in flight),
 * × backoff on a drop or on a success slower than `timeout`, at most once per RTT interval
 * (one congestion event, not one per failed request).
 *
 * AIMD learns only from failures: latency below the timeout teaches it nothing, so against an
 * app that never sheds and never times out it climbs to `max` while the app is busy. Use it
 * in front of an app that answers 503 (or is cut by the upstream timeout) when it is full, or
 * give it a `timeout` near the latency you will accept. Its minRTT is reported, not used.
 */
import type { Clock } from '../clock.ts';
import { PortcullisError } from '../errors.ts';
import type { AdaptiveConfig, AimdConfig, LimitChangeReason } from './adaptive.ts';
import { AdaptiveBase, checkCommon, checkPositive, DEFAULT_MIN_RTT_WINDOW_MS } from './adaptive-base.ts';

export class AimdLimit extends AdaptiveBase {
  readonly algorithm = 'aimd' as const;
  private backoffBy: number;
  private timeout: number;
  /** Used successes since the limit last moved. */
  private successes = 0;

  constructor(config: AimdConfig, clock: Clock, start?: number) {
    checkPositive(config, 'timeout', config.timeout);
    super(config, clock, start, DEFAULT_MIN_RTT_WINDOW_MS);
    this.backoffBy = config.backoff;
    this.timeout = config.timeout;
  }

  retune(config: AdaptiveConfig): void {
    if (config.algorithm !== 'aimd') {
      throw new PortcullisError('CONFIG_INVALID', `an aimd limit cannot be retuned to ${config.algorithm}; build a new one`);
    }
    checkPositive(config, 'timeout', config.timeout);
    checkCommon(config);
    this.backoffBy = config.backoff;
    this.timeout = config.timeout;
    this.rebound(config.min, config.max, DEFAULT_MIN_RTT_WINDOW_MS);
  }

  protected override slowSuccess(rttMs: number): boolean {
    return rttMs > this.timeout;
  }

  protected override usedSuccess(): void {
    if (++this.successes < this.limit) return;
    this.successes = 0;
    this.change(this.limit + 1, 'headroom');
  }

  protected backoff(limit: number): number {
    return limit * this.backoffBy;
  }

  // Everything happens per sample; the interval only paces the decreases.
  protected decide(): void {}

  protected override change(to: number, why: LimitChangeReason, now?: number): boolean {
    const moved = super.change(to, why, now);
    // A new limit needs its own worth of successes.
    if (moved) this.successes = 0;
    return moved;
  }
}
