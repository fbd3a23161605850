/**
 * The one stats snapshot: `/stats` serves it as JSON (its shape is the admin API's contract),
 * metrics observe it at collection, and a live page can poll it. Built from the collaborators'
 * own counters on demand; nothing is kept per request for it.
 */
import type { LimiterSnapshot } from './limiter.ts';
import { summarizeLimiters, type LimiterSummary } from './limiter-summary.ts';
import type { DecisionTotals, TunnelTotals } from './totals.ts';
import type { RunningConfig } from './running-config.ts';

export interface ConnectionStats {
  open: number;
  /** Requests in progress on open sockets (a pipelining socket counts each). */
  busy: number;
  max: number;
  perClient: number;
  peak: number;
  rejected: number;
  evicted: number;
}

export interface StatsSnapshot {
  config: { version: string; generation: number };
  connections: ConnectionStats;
  /**
   * Every limiter: `max` is the limit in force (a fixed max, or where an adaptive limit stands
   * now); `adaptive` ({algorithm, min, max, minRttMs, sampleRttMs}) only on adaptive ones.
   */
  limiters: LimiterSummary[];
  totals: ReturnType<DecisionTotals['snapshot']>;
  /** Exchanges between arrival and their end: queued, forwarding, streaming. */
  active: number;
  tunnels: ReturnType<TunnelTotals['snapshot']>;
  /** Slow clients cut since start, by cause. */
  cuts: Record<string, number>;
  draining: boolean;
}

/** Where each part of the snapshot is read (structural: the runtime's socket gate fits `sockets`). */
export interface StatsSources {
  running: RunningConfig;
  sockets: { readonly open: number; readonly busy: number; readonly peak: number; readonly rejected: number; readonly evicted: number };
  limiters(): Iterable<LimiterSnapshot>;
  totals: DecisionTotals;
  tunnels: TunnelTotals;
  cuts: { snapshot(): Record<string, number> };
  path: { readonly active: number };
  draining(): boolean;
}

export class Stats {
  constructor(private readonly s: StatsSources) {}

  snapshot(): StatsSnapshot {
    const { s } = this;
    const c = s.running.config.connections;
    const g = s.sockets;
    return {
      config: { version: s.running.version, generation: s.running.generation },
      connections: { open: g.open, busy: g.busy, max: c.max, perClient: c.perClient, peak: g.peak, rejected: g.rejected, evicted: g.evicted },
      limiters: summarizeLimiters(s.limiters()),
      totals: s.totals.snapshot(),
      active: s.path.active,
      tunnels: s.tunnels.snapshot(),
      cuts: s.cuts.snapshot(),
      draining: s.draining(),
    };
  }
}
