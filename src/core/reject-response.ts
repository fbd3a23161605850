/**
 * What a reject looks like on the wire, computed once per config (not per reject) so the
 * reject path costs no string building.
 */
import type { Config } from './config-schema.ts';
import type { Reason } from './admission.ts';
import { REASONS } from './totals.ts';
import { retryAfterSeconds } from './units.ts';

export interface RejectResponse {
  status: number;
  /** Header object for an HTTP-layer reject (a parsed request gets a full answer). */
  headers: Readonly<Record<string, string>>;
  body: string;
  /** Complete minimal response for a socket-layer reject, written before any request is read. */
  raw: string;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 408: 'Request Timeout', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Error';
}

const CLIENT_REASONS = new Set<Reason>(['client_connection_limit', 'client_inflight_limit']);

export function isClientReason(reason: Reason): boolean {
  return CLIENT_REASONS.has(reason);
}

/** One precomputed response per reason. */
export function buildRejectResponses(reject: Config['reject']): Readonly<Record<Reason, RejectResponse>> {
  const retryAfter = retryAfterSeconds(reject.retryAfter);
  const out = {} as Record<Reason, RejectResponse>;
  const bodyLength = String(new TextEncoder().encode(reject.body).byteLength);
  for (const reason of REASONS) {
    const status = isClientReason(reason) ? reject.clientStatus : reject.status;
    const headers: Record<string, string> = {
      'content-type': reject.contentType,
      'content-length': bodyLength,
      'cache-control': 'no-store',
    };
    if (retryAfter > 0) headers['retry-after'] = String(retryAfter);
    if (reject.reasonHeader) headers['x-portcullis-reason'] = reason;
    let raw = `HTTP/1.1 ${status} ${statusText(status)}\r\nconnection: close\r\ncontent-length: 0\r\n`;
    if (retryAfter > 0) raw += `retry-after: ${retryAfter}\r\n`;
    if (reject.reasonHeader) raw += `x-portcullis-reason: ${reason}\r\n`;
    raw += '\r\n';
    out[reason] = Object.freeze({ status, headers: Object.freeze(headers), body: reject.body, raw });
  }
  return Object.freeze(out);
}
