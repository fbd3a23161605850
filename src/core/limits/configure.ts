/**
 * STUB (dropped at merge): the factory's signature with a trivial AdaptiveLimit, so the wiring
 * (config, reload, /stats, spans, log) can be built and tested before the algorithms land. It
 * keeps its start limit, records samples (minRTT = the lowest RTT seen, sampleRTT = the latest)
 * and clamps on retune.
 */
import type { Clock } from '../clock.ts';
import type { LimitListener, LimitSample } from '../limit-algorithm.ts';
import type { AdaptiveAlgorithmName, AdaptiveConfig, AdaptiveLimit, AdaptiveSnapshot, LimitChange } from './adaptive.ts';

export function createAdaptiveLimit(config: AdaptiveConfig, _clock: Clock, opts: { start?: number } = {}): AdaptiveLimit {
  return new StubLimit(config, opts.start);
}

class StubLimit implements AdaptiveLimit {
  readonly wantsSamples = true;
  onChange: ((change: LimitChange) => void) | undefined = undefined;
  minRttMs: number | undefined = undefined;
  sampleRttMs: number | undefined = undefined;
  samples = 0;
  private config: AdaptiveConfig;
  private value: number;
  private listener: LimitListener | undefined = undefined;

  constructor(config: AdaptiveConfig, start: number | undefined) {
    this.config = config;
    this.value = clamp(start ?? config.initial, config.min, config.max);
  }

  get algorithm(): AdaptiveAlgorithmName {
    return this.config.algorithm;
  }

  get limit(): number {
    return this.value;
  }

  onSample(s: Readonly<LimitSample>): void {
    this.samples++;
    this.sampleRttMs = s.rttMs;
    if (this.minRttMs === undefined || s.rttMs < this.minRttMs) this.minRttMs = s.rttMs;
  }

  listen(listener: LimitListener | undefined): void {
    this.listener = listener;
  }

  snapshot(): AdaptiveSnapshot {
    const { algorithm, min, max } = this.config;
    return { algorithm, min, max, minRttMs: this.minRttMs, sampleRttMs: this.sampleRttMs };
  }

  retune(config: AdaptiveConfig): void {
    this.config = config;
    const to = clamp(this.value, config.min, config.max);
    if (to === this.value) return;
    const from = this.value;
    this.value = to;
    this.listener?.limitChanged();
    this.onChange?.({ from, to, why: 'reload' });
  }
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.round(n)));
}
