/**
 * How many permits a limiter may hand out, kept apart from the limiter that counts them and
 * keeps the queue (Netflix concurrency-limits splits `Limit` from `Limiter` the same way), so
 * that an adaptive algorithm (issue "3 of 7") can replace the fixed max without touching
 * admission, the queue or the counts.
 *
 * The limiter reads `limit` on every check (no copy to go stale), reports one sample per
 * released permit when the algorithm wants samples, and listens for changes so that a raised
 * limit wakes its queue at once.
 */
import { PortcullisError } from './errors.ts';
import type { ReleaseOutcome } from './release-outcome.ts';


export interface LimitSample {
  /** How long the permit was held, ms on the limiter's Clock. */
  rttMs: number;
  /** Permits held right after this one was taken, itself included. */
  inflightAtStart: number;
  outcome: ReleaseOutcome;
}

/** Told by an algorithm whenever its limit changed (the limiter wakes its queue if it went up). */
export interface LimitListener {
  limitChanged(): void;
}

export interface LimitAlgorithm {
  /** Permits held at most, now: a whole number >= 0. */
  readonly limit: number;
  /**
   * false: the limiter reads no clock and reports no samples, so a limit that learns nothing
   * costs nothing per request.
   */
  readonly wantsSamples: boolean;
  /** One permit came back. The object is reused for the next sample: copy what you keep. */
  onSample(sample: Readonly<LimitSample>): void;
  /** The one listener to tell after every change of `limit` (the limiter that owns this algorithm). */
  listen(listener: LimitListener | undefined): void;
}

/** Today's limit: a configured max, set in place by a reload. */
export class FixedLimit implements LimitAlgorithm {
  readonly wantsSamples = false;
  private value: number;
  private listener: LimitListener | undefined = undefined;

  constructor(limit: number) {
    this.value = checkLimit(limit);
  }

  get limit(): number {
    return this.value;
  }

  /**
   * Resizes in place, never rebuilt, so permits in flight stay counted: a lower limit admits
   * nothing new until the count falls below it; a higher one tells the limiter, which wakes
   * its queue at once.
   */
  set(limit: number): void {
    checkLimit(limit);
    if (limit === this.value) return;
    this.value = limit;
    this.listener?.limitChanged();
  }

  onSample(): void {}

  listen(listener: LimitListener | undefined): void {
    this.listener = listener;
  }
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 0) {
    throw new PortcullisError('CONFIG_INVALID', `limit must be a whole number >= 0, got ${String(limit)}`);
  }
  return limit;
}
