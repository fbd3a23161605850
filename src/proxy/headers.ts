/**
 * Header rewriting at the proxy hop: hop-by-hop headers (RFC 9110 7.6.1) never cross, and the
 * app learns who called through X-Forwarded-*. Works on node's flat rawHeaders arrays so the
 * original spelling and order reach the app and no header object is built per request.
 */

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // handled by the server hop itself: node answers 100-continue, undici refuses to forward it
  'expect',
]);

/** Extra header names listed in a Connection header are hop-by-hop too (added to `out`). */
function connectionTokens(value: string | undefined, out?: Set<string>): Set<string> | undefined {
  if (!value) return out;
  for (const t of value.split(',')) {
    const name = t.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive') (out ??= new Set()).add(name);
  }
  return out;
}

export interface ForwardedFor {
  /** The socket peer's address: what this hop appends to X-Forwarded-For. */
  client: string;
  proto: string;
  /** The peer is one of clientKey.trustedProxies: its X-Forwarded-* are kept. Absent: not trusted. */
  trusted?: boolean;
}

export interface ForwardHeaders {
  /** Flat [name, value, ...] for undici, original spelling and order. */
  headers: string[];
  /** Content-Length other than 0, or Transfer-Encoding: the request has a body to stream. */
  hasBody: boolean;
}

/**
 * Request headers for the app, in one pass over rawHeaders (node's lower-cased `req.headers`
 * object is never built on this path): minus hop-by-hop. From a trusted peer (a proxy in
 * clientKey.trustedProxies), X-Forwarded-For is appended to (the chain grows by one hop) and
 * X-Forwarded-Proto / -Host are kept when it set them (it saw the original scheme and host; we
 * only see plain HTTP from it). From any other peer every X-Forwarded-* it sent is dropped and
 * For / Proto / Host say what this hop saw: a client cannot tell the app it came over https or
 * from another address (issue 10).
 */
export function forwardRequestHeaders(raw: readonly string[], fwd: ForwardedFor): ForwardHeaders {
  const out: string[] = [];
  let extra: Set<string> | undefined;
  let hasBody = false;
  let xff: string | undefined;
  let proto: string | undefined;
  let fhost: string | undefined;
  let host: string | undefined;
  const trusted = fwd.trusted === true;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        host = value;
        break;
      case 'content-length':
        if (value !== '0') hasBody = true;
        break;
      case 'transfer-encoding':
        hasBody = true;
        continue;
      case 'connection':
        extra = connectionTokens(value, extra);
        continue;
      case 'x-forwarded-for':
        if (trusted) xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        if (trusted) proto ??= value;
        continue;
      case 'x-forwarded-host':
        if (trusted) fhost ??= value;
        continue;
      default:
        if (HOP_BY_HOP.has(lower)) continue;
        // X-Forwarded-Port, -Prefix, -Server...: only a trusted proxy may say.
        if (!trusted && lower.length > 12 && lower.startsWith('x-forwarded-')) continue;
    }
    out.push(name, value);
  }
  // Names listed in Connection are hop-by-hop too, wherever they appeared (rare: a second pass).
  const headers = extra === undefined ? out : dropNamed(out, extra);
  headers.push('x-forwarded-for', xff === undefined ? fwd.client : `${xff}, ${fwd.client}`);
  headers.push('x-forwarded-proto', proto ?? fwd.proto);
  if (fhost !== undefined || host !== undefined) headers.push('x-forwarded-host', (fhost ?? host) as string);
  return { headers, hasBody };
}

function dropNamed(flat: readonly string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!names.has((flat[i] as string).toLowerCase())) out.push(flat[i] as string, flat[i + 1] as string);
  }
  return out;
}

/** The value of one header in a flat rawHeaders array (first occurrence); `lower` is lower-case. */
export function rawHeader(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lower.length && name.toLowerCase() === lower) return raw[i + 1];
  }
  return undefined;
}

/** Response headers for the client: the app's headers minus hop-by-hop ones. */
export function forwardResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const conn = headers['connection'];
  const extra = connectionTokens(Array.isArray(conn) ? conn.join(',') : conn);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || (extra !== undefined && extra.has(name))) continue;
    out[name] = value;
  }
  return out;
}

/** Strips the IPv4-mapped prefix so 127.0.0.1 is one client however the listener is bound. */
export function normalizeAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
