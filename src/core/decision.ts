/**
 * What admission answers for one request (src/proxy acts on it, src/telemetry reports it),
 * and the one place that builds it.
 */
import type { Limiter } from './limiter.ts';
import type { Outcome } from './limit-algorithm.ts';

export type Reason =
  | 'connection_limit'
  | 'client_connection_limit'
  | 'inflight_limit'
  | 'client_inflight_limit'
  | 'queue_full'
  | 'queue_timeout'
  | 'draining';

export interface Grant {
  /**
   * Releases every permit of the request, exactly once; later calls do nothing. The outcome
   * (default 'ignored') goes to each limiter's limit algorithm.
   */
  release(outcome?: Outcome): void;
}

export interface Decision {
  decision: 'admitted' | 'rejected' | 'bypassed';
  /** Set for rejects, including dry-run would-be rejects. */
  reason: Reason | undefined;
  /** The limiter that decided; for admitted requests the route limiter if any, else `global`. */
  limiter: string | undefined;
  /** That limiter's max, and its in-flight count: found (reject) or including this request (admitted). */
  limit: number;
  inflight: number;
  /** Queue length found on arrival (0 when not queued). */
  queueDepth: number;
  queueWaitMs: number;
  route: string | undefined;
  /** HTTP status of a reject (also of a dry-run would-be reject), 0 otherwise. */
  status: number;
  /** Decided under dry run: reported, not enforced. */
  dryRun: boolean;
  /** Present when the request may go on (admitted, or any non-bypass decision in dry run). */
  grant: Grant | undefined;
}

export interface PendingDecision {
  readonly pending: true;
  /** Resolves with the decision once admitted, timed out or refused; null after `cancel()`. */
  readonly promise: Promise<Decision | null>;
  /**
   * The client went away: leave the queue, resolve null, hold nothing. If the request was
   * admitted already (the promise resolved but was not consumed yet) its grant is released.
   */
  cancel(): void;
}

/** The fields a decision is built from; the limiter's name, max and count are read from `limiter`. */
export interface DecisionFields {
  decision: Decision['decision'];
  reason?: Reason | undefined;
  limiter?: Limiter | undefined;
  queueDepth?: number;
  queueWaitMs?: number;
  route?: string | undefined;
  status?: number;
  dryRun?: boolean;
  grant?: Grant | undefined;
}

export function buildDecision(f: DecisionFields): Decision {
  const l = f.limiter;
  // One literal with a fixed key order keeps every Decision the same hidden class.
  return {
    decision: f.decision,
    reason: f.reason,
    limiter: l === undefined ? undefined : l.name,
    limit: l === undefined ? 0 : l.max,
    inflight: l === undefined ? 0 : l.inflight,
    queueDepth: f.queueDepth ?? 0,
    queueWaitMs: f.queueWaitMs ?? 0,
    route: f.route,
    status: f.status ?? 0,
    dryRun: f.dryRun ?? false,
    grant: f.grant,
  };
}
