/** Running totals of decisions, for /stats (and the metrics of issue 4 read the same events). */
import type { Reason } from './admission.ts';

export const REASONS: readonly Reason[] = [
  'connection_limit',
  'client_connection_limit',
  'inflight_limit',
  'client_inflight_limit',
  'queue_full',
  'queue_timeout',
  'draining',
];

export class DecisionTotals {
  admitted = 0;
  bypassed = 0;
  rejected = 0;
  /** Dry-run decisions that would have rejected (the request went through). */
  wouldReject = 0;
  /** Clients that went away while queued: neither admitted nor rejected. */
  abandoned = 0;
  /** Requests whose serving threw (answered 500 or cut), and last-resort uncaught errors. */
  internalError = 0;
  readonly byReason: Record<Reason, number> = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<Reason, number>;

  reject(reason: Reason): void {
    this.rejected++;
    this.byReason[reason]++;
  }

  snapshot() {
    return {
      admitted: this.admitted,
      bypassed: this.bypassed,
      rejected: this.rejected,
      wouldReject: this.wouldReject,
      abandoned: this.abandoned,
      internalError: this.internalError,
      byReason: { ...this.byReason },
    };
  }
}

/** Upgrade handshakes and the tunnels they became, for /stats and metrics. */
export class TunnelTotals {
  /** Tunnels open now. */
  open = 0;
  /** Handshakes the app accepted (101), since start. */
  opened = 0;
  /** Tunnels closed after `upgrade.idleTimeout` without a byte. */
  idleClosed = 0;
  /** Handshakes refused by portcullis: a limit, draining, or a token not in `upgrade.allow`. */
  refused = 0;
  /** Of `refused`: the token was not in `upgrade.allow`. */
  notAllowed = 0;
  /** Handshakes the app did not accept: a normal response, a refused connection, an error. */
  failed = 0;

  snapshot() {
    return {
      open: this.open,
      opened: this.opened,
      idleClosed: this.idleClosed,
      refused: this.refused,
      notAllowed: this.notAllowed,
      failed: this.failed,
    };
  }
}
