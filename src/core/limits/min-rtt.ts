/**
 * The passive no-load latency estimate (minRTT) of an adaptive limit. It never asks for the
 * limit to be lowered so that it can measure: a limit pinned down to probe rejects real
 * traffic in bursts (Envoy's adaptive_concurrency does that; its users see 503 waves every
 * minRTT interval, envoy issues #8337, #9007, #38338). It only listens to samples that are
 * light load anyway:
 *
 * - A success is light load when it started with at most half the limit in flight, or with
 *   the limit at its `min` (we cannot go lower, so latency then is not of our making). The last
 *   256 are kept with their clock time. The estimate is the 10th percentile of those within
 *   the window (`minRttWindow`; robust to the odd lucky-fast answer, unlike a plain minimum);
 *   their median, kept by the same rules, is what the gradient compares loaded medians with.
 * - It falls at once: to a lower percentile of the light samples, or of the last 256 successes
 *   of any load (nothing comes back faster than the app's no-load latency, so any low
 *   percentile bounds it from above).
 * - It rises slowly: by at most a quarter of the gap per window, and only on new light
 *   samples. A latency spike that drives the limit to `min` fills the window with slow light
 *   samples; taking them at once would teach the limit that the spike is normal, and once it
 *   is over the limit would overshoot by the spike's factor for as long as the load stays
 *   heavy. A lasting slowdown (a new dependency) is still accepted: in the capacity model, a
 *   3× slower app under constant 3× overload holds the limit at `min` for about 70 s with the
 *   default 30 s window, then the limit regrows to about c (a shorter window accepts faster).
 * - Without fresh light samples (a limiter under constant heavy load sees none) the estimate
 *   is kept, not forgotten, and does not drift toward the latency of loaded samples: the
 *   controller itself holds loaded latency near tolerance × minRTT, so following it would
 *   ratchet minRTT, and with it the limit, up to max. A slowdown the controller cannot cure
 *   drives the limit to `min`, where samples count as light again (above).
 *
 * Allocation-free per sample (typed rings); the percentiles are computed in `update`, which the
 * algorithm calls at most once per RTT interval.
 */

/** How many light-load (and, separately, all) samples are kept. */
export const MIN_RTT_SAMPLES = 256;
/** The percentile taken, 0..1. */
export const MIN_RTT_PERCENTILE = 0.1;
/** At most this share of the gap to a higher p10 is closed per window. */
export const MIN_RTT_RISE_PER_WINDOW = 0.25;

/** Light load: few enough in flight that we cannot be what makes the app slow. */
export function isLightLoad(inflightAtStart: number, limitAtStart: number, min: number): boolean {
  return inflightAtStart <= limitAtStart / 2 || limitAtStart <= min;
}

/** The last `MIN_RTT_SAMPLES` values with their times, oldest overwritten first. */
class TimedRing {
  readonly values = new Float64Array(MIN_RTT_SAMPLES);
  readonly times = new Float64Array(MIN_RTT_SAMPLES);
  size = 0;
  /** Values pushed ever. */
  pushed = 0;
  private next = 0;

  push(value: number, at: number): void {
    this.pushed++;
    this.values[this.next] = value;
    this.times[this.next] = at;
    this.next = (this.next + 1) % MIN_RTT_SAMPLES;
    if (this.size < MIN_RTT_SAMPLES) this.size++;
  }
}

export class MinRtt {
  private windowMs: number;
  private readonly light = new TimedRing();
  private readonly all = new TimedRing();
  /** Where percentiles are selected, so that computing one allocates nothing. */
  private readonly scratch = new Float64Array(MIN_RTT_SAMPLES);
  private low: number | undefined = undefined;
  private mid: number | undefined = undefined;
  private updatedAt: number | undefined = undefined;
  /** `light.pushed` at the last update: a rise needs light samples newer than that. */
  private lightSeen = 0;
  // What `percentiles` found (fields, not an object: nothing allocated per update).
  private foundLow = 0;
  private foundMid = 0;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** The estimate (p10) as of the last `update`, ms; undefined until a light-load sample came. */
  get estimate(): number | undefined {
    return this.low;
  }

  /**
   * The median no-load latency, by the same rules: what a controller compares a loaded median
   * with (like with like; a mean or median against a p10 would call a wide spread congestion).
   */
  get median(): number | undefined {
    return this.mid;
  }

  /** A reload: what was learnt stays, only its shelf life changes. */
  setWindow(windowMs: number): void {
    this.windowMs = windowMs;
  }

  /** One successful sample (failures say nothing about how fast the app can be). */
  observe(rttMs: number, now: number, light: boolean): void {
    this.all.push(rttMs, now);
    if (light) this.light.push(rttMs, now);
  }

  /** Recomputes the estimates from the samples within the window; returns the p10. */
  update(now: number): number | undefined {
    const w = this.windowMs;
    const since = now - w;
    // Capped at one window, so a first sample after a long idle cannot jump.
    const elapsed = this.updatedAt === undefined ? 0 : Math.min(w, Math.max(0, now - this.updatedAt));
    // Only new light samples may raise it: the slow ones of a spike that is over stay in the
    // window for a while and must not keep pulling after it.
    const rise = this.light.pushed > this.lightSeen ? 1 - Math.pow(1 - MIN_RTT_RISE_PER_WINDOW, elapsed / w) : 0;
    this.lightSeen = this.light.pushed;
    this.updatedAt = now;
    if (this.percentiles(this.light, since)) {
      this.low = follow(this.low, this.foundLow, rise);
      this.mid = follow(this.mid, this.foundMid, rise);
    }
    if (this.low !== undefined && this.percentiles(this.all, since)) {
      this.low = Math.min(this.low, this.foundLow);
      this.mid = Math.min(this.mid as number, this.foundMid);
    }
    return this.low;
  }

  /** The p10 and median of the ring's values taken at or after `since`; false when none are. */
  private percentiles(ring: TimedRing, since: number): boolean {
    const s = this.scratch;
    let n = 0;
    for (let i = 0; i < ring.size; i++) {
      if ((ring.times[i] as number) >= since) s[n++] = ring.values[i] as number;
    }
    if (n === 0) return false;
    this.foundLow = lowPercentile(s, n);
    this.foundMid = median(s, n);
    return true;
  }
}

/** Falls to `found` at once, rises toward it by the share `rise` of the gap. */
function follow(current: number | undefined, found: number, rise: number): number {
  return current === undefined || found <= current ? found : current + (found - current) * rise;
}

/** The median of a[0..n), n > 0 (reorders a). */
export function median(a: Float64Array, n: number): number {
  return select(a, n, (n - 1) >>> 1);
}

/** The `MIN_RTT_PERCENTILE` of a[0..n), n > 0 (reorders a). */
export function lowPercentile(a: Float64Array, n: number): number {
  return select(a, n, Math.floor(MIN_RTT_PERCENTILE * (n - 1)));
}

/** The k-th smallest of a[0..n) (Hoare's quickselect, in place, no allocation). */
function select(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) < pivot) i++;
      while ((a[j] as number) > pivot) j--;
      if (i <= j) {
        const t = a[i] as number;
        a[i] = a[j] as number;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k] as number;
}
