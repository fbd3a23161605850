// Order statistics for the harness: medians across rounds, percentiles of latency samples.

/** Median of the finite numbers in `xs` (undefined when none). */
export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an ascending array; undefined when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** p50/p99/p99.9/max of unsorted samples (any unit). */
export function summarize(samples) {
  const s = Float64Array.from(samples).sort();
  return { p50: percentile(s, 50), p99: percentile(s, 99), p999: percentile(s, 99.9), max: s.length ? s[s.length - 1] : undefined };
}
