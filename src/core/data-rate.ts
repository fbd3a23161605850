/**
 * Judges how fast a client moves one direction of an exchange (its request body in, or its
 * response out), from samples taken on a coarse shared ticker. Only time the client is waited
 * for counts: the caller says, per sample, whether the client is what holds things up (its body
 * is being read and nothing of it is buffered; response bytes wait in the socket for it). Time
 * spent on the app, in admission, or paused by the app's backpressure is not the client's.
 *
 * Two limits, each off at 0: an inactivity timeout (nginx `client_body_timeout` / `send_timeout`:
 * waited for this long with no byte moving) and a minimum rate (Kestrel `MinDataRate`: bytes moved
 * while waited for, divided by the time waited, once that time exceeds the grace). Like Kestrel's,
 * the rate is an average over the exchange, so a client that moved a lot fast keeps that credit;
 * the inactivity timeout is what catches one that then stops.
 */

export interface DataRateLimits {
  /** Milliseconds waited with nothing moving; 0 = off. */
  readonly timeout: number;
  /** Bytes per second at least, averaged over the time waited; 0 = off. */
  readonly bytesPerSecond: number;
  /** Milliseconds waited before the rate is enforced. */
  readonly grace: number;
}

export type DataRateVerdict = 'timeout' | 'min_rate';

export class DataRateMeter {
  /** The running byte count at the last sample; undefined until the first one. */
  private last: number | undefined;
  /** Time the client was waited for, and bytes that moved meanwhile. */
  private waitedMs = 0;
  private movedBytes = 0;
  /** Time waited since a byte last moved. */
  private stalledMs = 0;

  /**
   * One sample. `progress` is a running count of bytes moved (undefined: nothing to measure yet,
   * e.g. a response not yet on its socket); `waiting` whether the client holds things up now;
   * `dt` the milliseconds since the previous sample. Returns the limit broken, if any.
   */
  sample(progress: number | undefined, waiting: boolean, dt: number, limits: DataRateLimits): DataRateVerdict | undefined {
    if (progress === undefined) return undefined;
    const moved = this.last === undefined || progress < this.last ? 0 : progress - this.last;
    this.last = progress;
    if (!waiting) {
      this.stalledMs = 0;
      return undefined;
    }
    this.waitedMs += dt;
    this.movedBytes += moved;
    this.stalledMs = moved > 0 ? 0 : this.stalledMs + dt;
    if (limits.timeout > 0 && this.stalledMs >= limits.timeout) return 'timeout';
    if (limits.bytesPerSecond > 0 && this.waitedMs > limits.grace && this.movedBytes * 1000 < limits.bytesPerSecond * this.waitedMs) {
      return 'min_rate';
    }
    return undefined;
  }

  /** For the log line of a cut. */
  get waited(): { ms: number; bytes: number } {
    return { ms: Math.round(this.waitedMs), bytes: this.movedBytes };
  }
}
