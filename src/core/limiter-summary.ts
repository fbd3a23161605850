/**
 * Per-client limiters exist once per client address; /stats and metrics show them folded into
 * one entry per name (`client`, `route:<name>:client`), so their size and cardinality do not
 * grow with the number of clients.
 */
import type { LimiterSnapshot } from './limiter.ts';

export interface LimiterSummary extends LimiterSnapshot {
  /** How many live limiters were folded into this entry (clients with requests in flight). */
  instances: number;
}

export function summarizeLimiters(snapshots: Iterable<LimiterSnapshot>): LimiterSummary[] {
  const byName = new Map<string, LimiterSummary>();
  for (const s of snapshots) {
    const cur = byName.get(s.name);
    if (cur === undefined) {
      byName.set(s.name, { ...s, instances: 1 });
      continue;
    }
    cur.instances++;
    cur.inflight += s.inflight;
    cur.queued += s.queued;
    cur.acquired += s.acquired;
    cur.released += s.released;
    cur.peak = Math.max(cur.peak, s.peak);
  }
  return [...byName.values()];
}
