/**
 * What admission answers for one request (src/proxy acts on it, src/telemetry reports it),
 * and the one place that builds it.
 */
import type { Limiter } from './limiter.ts';
import type { ReleaseOutcome, ReleaseTiming } from './release-outcome.ts';

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
   * (default 'ignored') goes to each limiter's limit algorithm, and so does `timing`: the app's
   * part of the exchange (ReleaseTiming), so that time a client sets the pace of (its request
   * body, its reading of the answer) does not count as the app's latency.
   */
  release(outcome?: ReleaseOutcome, timing?: ReleaseTiming): void;
}

export interface Decision {
  decision: 'admitted' | 'rejected' | 'bypassed';
  /** Set for rejects, including dry-run would-be rejects. */
  reason: Reason | undefined;
  /** The limiter that decided; for admitted requests the route limiter if any, else `global`. */
  limiter: string | undefined;
  /** That limiter's limit in force when deciding, and its in-flight count: found (reject) or including this request (admitted). */
  limit: number;
  inflight: number;
  /** When that limiter is adaptive: its minRTT estimate and latest sample RTT then, ms (undefined until known). */
  minRttMs: number | undefined;
  sampleRttMs: number | undefined;
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

/**
 * A decision by `limiter` (its name, limit and in-flight count as they are now; what an
 * adaptive one has learnt), every other field at its zero value: the caller sets the fields
 * that apply by name. Built in place rather than from a fields object so that deciding
 * allocates nothing but the decision.
 */
export function newDecision(decision: Decision['decision'], limiter: Limiter | undefined): Decision {
  const adaptive = limiter?.adaptive;
  // One literal with a fixed key order keeps every Decision the same hidden class.
  return {
    decision,
    reason: undefined,
    limiter: limiter === undefined ? undefined : limiter.name,
    limit: limiter === undefined ? 0 : limiter.max,
    inflight: limiter === undefined ? 0 : limiter.inflight,
    minRttMs: adaptive === undefined ? undefined : adaptive.minRttMs,
    sampleRttMs: adaptive === undefined ? undefined : adaptive.sampleRttMs,
    queueDepth: 0,
    queueWaitMs: 0,
    route: undefined,
    status: 0,
    dryRun: false,
    grant: undefined,
  };
}
