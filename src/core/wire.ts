/**
 * Everything portcullis itself puts on the wire, in one place: status lines, its own JSON error
 * bodies, and the raw HTTP/1.1 messages written straight to a socket that leaves HTTP after them
 * (socket-cap rejects, answers to a bad head, refused or failed upgrades). Runtime-free strings,
 * so every protocol adapter and the reject catalogue build the same bytes.
 */

const STATUS_TEXT: Readonly<Record<number, string>> = {
  101: 'Switching Protocols',
  200: 'OK',
  400: 'Bad Request',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Error';
}

/** A response portcullis writes itself: status, header object (lower-case names), body. */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Header values as undici hands them over (lower-case names, repeated ones as arrays). */
export type HeaderValues = Record<string, string | string[] | undefined>;

const utf8 = new TextEncoder();

/** Bytes of `s` in UTF-8, what content-length counts (ASCII, the usual case, without encoding). */
export function byteLength(s: string): number {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s.length : utf8.encode(s).byteLength;
}

export interface JsonErrorOptions {
  /** A human-readable detail, as `{"error", "detail"}`. */
  detail?: string;
  /** `x-portcullis-error` when it differs from the body's error (a slow-client cut names its cause). */
  header?: string;
  /** `connection: close` first in the headers: the connection ends after this answer. */
  close?: boolean;
}

/** Our own error answer: `{"error": error}` as JSON, named again in `x-portcullis-error`. */
export function jsonError(status: number, error: string, options: JsonErrorOptions = {}): Answer {
  const body = options.detail === undefined ? `{"error":${JSON.stringify(error)}}` : JSON.stringify({ error, detail: options.detail });
  const headers: Record<string, string> = {};
  if (options.close === true) headers['connection'] = 'close';
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(byteLength(body));
  headers['x-portcullis-error'] = options.header ?? error;
  return Object.freeze({ status, headers: Object.freeze(headers), body });
}

/**
 * A complete HTTP/1.1 message for a socket written to directly: `connection: close` (the socket
 * leaves HTTP after it), the answer's headers, and a content-length matching the body.
 */
export function rawMessage(a: Answer): string {
  let out = `HTTP/1.1 ${a.status} ${statusText(a.status)}\r\nconnection: close\r\ncontent-length: ${byteLength(a.body)}\r\n`;
  const h = a.headers;
  for (const k in h) if (k !== 'connection' && k !== 'content-length') out += `${k}: ${h[k]}\r\n`;
  return `${out}\r\n${a.body}`;
}

/** A response head relaying the app's headers (upgrades write the socket themselves). */
export function rawHead(status: number, reason: string, headers: HeaderValues, close: boolean): string {
  let out = `HTTP/1.1 ${status} ${reason}\r\n`;
  if (close) out += 'connection: close\r\n';
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || (close && k === 'connection')) continue;
    if (Array.isArray(v)) for (const one of v) out += `${k}: ${one}\r\n`;
    else out += `${k}: ${v}\r\n`;
  }
  return `${out}\r\n`;
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});
const BARE = new Map<number, string>();

/**
 * A bodiless answer that closes the connection, for a head node could not parse (400, 408, 431):
 * nothing of the request is known, so nothing more is said. Built once per status.
 */
export function bareMessage(status: number): string {
  let s = BARE.get(status);
  if (s === undefined) {
    s = rawMessage({ status, headers: EMPTY, body: '' });
    BARE.set(status, s);
  }
  return s;
}

/** Which parse failure gets which bare answer: an oversized head 431, a head too slow 408, the rest 400. */
export function parseErrorStatus(code: string | undefined): 400 | 408 | 431 {
  return code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
}

/** `OPTIONS *`: asks the server itself, which is portcullis; a bare 200. */
export const SERVER_OPTIONS: Answer = Object.freeze({ status: 200, headers: Object.freeze({ 'content-length': '0' }), body: '' });

/** The answer to a request body too slow (nginx and Kestrel answer 408); the header names the cause. */
export function bodyTimeoutAnswer(cause: string): Answer {
  return jsonError(408, 'request_body_timeout', { close: true, header: cause });
}
