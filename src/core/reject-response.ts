/**
 * What a reject looks like on the wire, computed once per config (not per reject) so the
 * reject path costs no string building. Which status a reject gets is decided here only.
 */
import type { Config } from './config-schema.ts';
import type { Reason } from './decision.ts';
import { REASONS } from './totals.ts';
import { retryAfterSeconds } from './units.ts';
import { byteLength, rawMessage } from './wire.ts';
import type { Configurable } from './running-config.ts';

export interface RejectResponse {
  status: number;
  /** Header object for an HTTP-layer reject (a parsed request gets a full answer). */
  headers: Readonly<Record<string, string>>;
  body: string;
  /** Complete minimal response for a socket-layer reject, written before any request is read. */
  raw: string;
}

const CLIENT_REASONS = new Set<Reason>(['client_connection_limit', 'client_inflight_limit']);

export function isClientReason(reason: Reason): boolean {
  return CLIENT_REASONS.has(reason);
}

/** The status a reject for `reason` is answered with: `reject.clientStatus` for per-client limits, else `reject.status`. */
export function rejectStatus(reject: Config['reject'], reason: Reason): number {
  return isClientReason(reason) ? reject.clientStatus : reject.status;
}

/** One precomputed response per reason. */
export function buildRejectResponses(reject: Config['reject']): Readonly<Record<Reason, RejectResponse>> {
  const retryAfter = retryAfterSeconds(reject.retryAfter);
  const out = {} as Record<Reason, RejectResponse>;
  const bodyLength = String(byteLength(reject.body));
  for (const reason of REASONS) {
    const status = rejectStatus(reject, reason);
    const headers: Record<string, string> = {
      'content-type': reject.contentType,
      'content-length': bodyLength,
      'cache-control': 'no-store',
    };
    // The socket-layer answer is bodiless: the request was never read, so it says only why.
    const rawHeaders: Record<string, string> = {};
    if (retryAfter > 0) headers['retry-after'] = rawHeaders['retry-after'] = String(retryAfter);
    if (reject.reasonHeader) headers['x-portcullis-reason'] = rawHeaders['x-portcullis-reason'] = reason;
    const raw = rawMessage({ status, headers: rawHeaders, body: '' });
    out[reason] = Object.freeze({ status, headers: Object.freeze(headers), body: reject.body, raw });
  }
  return Object.freeze(out);
}

/** The rejects in force: rebuilt once per applied config, read by every adapter and the socket gate. */
export class RejectCatalogue implements Configurable {
  private responses: Readonly<Record<Reason, RejectResponse>>;

  constructor(reject: Config['reject']) {
    this.responses = buildRejectResponses(reject);
  }

  apply(config: Config): void {
    this.responses = buildRejectResponses(config.reject);
  }

  of(reason: Reason): RejectResponse {
    return this.responses[reason];
  }
}
