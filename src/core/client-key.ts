/**
 * Who a request is, for the per-client limiters, the reject log and the span's client.address:
 * the client-key seam, compiled once per config (`clientKey`) and updated in place on reload.
 *
 * - `trusts(peer)`: the socket peer is one of `trustedProxies`, so its X-Forwarded-* are believed.
 * - `address(peer, trusted, raw)`: the client's address. With `from: forwarded-for` and a trusted
 *   peer, the rightmost X-Forwarded-For entry that is not a trusted proxy (nginx
 *   `real_ip_recursive on`; all trusted: the leftmost; an entry that is no address: the peer, as
 *   nginx keeps it). Otherwise the peer.
 * - `key(address, raw)`: the per-client key. With `from: header`, the header's value (a request
 *   without it, or with it empty, is keyed by its address); else the address, IPv6 grouped by
 *   `ipv6Prefix`.
 * - `socketKey(remote)`: the socket cap's key: the socket address, grouped the same way (one host
 *   usually owns a whole /64, so per-address socket caps would not hold it).
 *
 * The common case (from socket, IPv4, no trusted proxies) returns the peer string as is: no
 * parse, no allocation. IPv6 keys are cached per address.
 */
import { CidrSet, groupAddress, isIp } from './cidr.ts';
import type { Config } from './config-schema.ts';

export type ClientKeyConfig = Config['clientKey'];

/** Grouped IPv6 keys kept before the cache starts over (bounds memory under address churn). */
const GROUP_CACHE_MAX = 4096;
const XFF = 'x-forwarded-for';

export class ClientIdentity {
  private from: ClientKeyConfig['from'] = 'socket';
  /** Lower-case header name, with from: header. */
  private header = '';
  private trusted = new CidrSet([]);
  private prefix = 64;
  private readonly groups = new Map<string, string>();

  constructor(config: ClientKeyConfig) {
    this.update(config);
  }

  /** Live reload: the next request uses the new settings. */
  update(config: ClientKeyConfig): void {
    this.from = config.from;
    this.header = (config.header ?? '').toLowerCase();
    this.trusted = new CidrSet(config.trustedProxies);
    this.prefix = config.ipv6Prefix;
    this.groups.clear();
  }

  trusts(peer: string): boolean {
    return this.trusted.size > 0 && this.trusted.has(peer);
  }

  address(peer: string, trusted: boolean, raw: readonly string[]): string {
    return trusted && this.from === 'forwarded-for' ? this.realIp(peer, raw) : peer;
  }

  key(address: string, raw: readonly string[]): string {
    if (this.from === 'header') {
      const v = headerValue(raw, this.header);
      if (v !== undefined && v !== '') return v;
    }
    return this.group(address);
  }

  socketKey(remote: string | undefined): string {
    if (!remote) return 'unknown';
    return this.group(remote);
  }

  /** IPv4 (the common case) as is; IPv6 by prefix, IPv4-mapped as its IPv4 address; cached. */
  private group(address: string): string {
    if (address.indexOf(':') < 0) return address;
    let key = this.groups.get(address);
    if (key === undefined) {
      key = groupAddress(address, this.prefix);
      if (this.groups.size >= GROUP_CACHE_MAX) this.groups.clear();
      this.groups.set(address, key);
    }
    return key;
  }

  private realIp(peer: string, raw: readonly string[]): string {
    let leftmost: string | undefined;
    // Header lines right to left, each line's entries right to left: one list in arrival order.
    for (let i = raw.length - 2; i >= 0; i -= 2) {
      const name = raw[i] as string;
      if (name.length !== XFF.length || name.toLowerCase() !== XFF) continue;
      const value = raw[i + 1] as string;
      let end = value.length;
      for (;;) {
        const comma = end > 0 ? value.lastIndexOf(',', end - 1) : -1;
        const entry = forwardedAddress(value, comma + 1, end);
        if (entry === undefined) return peer;
        if (!this.trusted.has(entry)) return entry;
        leftmost = entry;
        if (comma < 0) break;
        end = comma;
      }
    }
    return leftmost ?? peer;
  }
}

/** One X-Forwarded-For entry, value[start, end): the address without spaces, brackets or port; undefined if none. */
function forwardedAddress(value: string, start: number, end: number): string | undefined {
  while (start < end && isSpace(value.charCodeAt(start))) start++;
  while (end > start && isSpace(value.charCodeAt(end - 1))) end--;
  if (start === end) return undefined;
  let s = value.slice(start, end);
  if (s.charCodeAt(0) === 0x5b /* [ */) {
    const close = s.indexOf(']');
    if (close < 0 || !isPort(s, close + 1)) return undefined;
    s = s.slice(1, close);
  } else {
    const colon = s.indexOf(':');
    // One colon: IPv4 with a port. More: IPv6 without brackets (no port possible).
    if (colon >= 0 && s.indexOf(':', colon + 1) < 0) {
      if (!isPort(s, colon)) return undefined;
      s = s.slice(0, colon);
    }
  }
  return isIp(s) ? s : undefined;
}

/** Nothing at `at`, or `:digits` to the end. */
function isPort(s: string, at: number): boolean {
  if (at === s.length) return true;
  if (s.charCodeAt(at) !== 0x3a || at + 1 === s.length) return false;
  for (let i = at + 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** First value of a header in a flat [name, value, ...] array; `lower` is lower case. */
function headerValue(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lower.length && name.toLowerCase() === lower) return raw[i + 1];
  }
  return undefined;
}
