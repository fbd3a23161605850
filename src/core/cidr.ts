/**
 * IP addresses and CIDR ranges without node:net (core runs on both runtimes as is). An address
 * is parsed into a reused scratch buffer of eight 16-bit words, so checking one against a set of
 * ranges allocates nothing. IPv4 and IPv6 stay apart (`::/0` is not every IPv4 peer); an
 * IPv4-mapped address (`::ffff:a.b.c.d`, how a dual-stack listener reports IPv4 peers) is its
 * IPv4 address.
 */

/** 0: not an address. 4: IPv4, or IPv4-mapped IPv6 (in words 6-7, words 0-5 = ::ffff). 6: IPv6. */
export type Family = 0 | 4 | 6;

const COLON = 0x3a;
const DOT = 0x2e;
const PERCENT = 0x25;

/** For parsing an address during a check; core is synchronous, so one buffer serves every call. */
const scratch = new Uint16Array(8);

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Dotted quad s[start, end) into out[at], out[at + 1]. No leading zeros (`010` is octal to some parsers). */
function parseV4(s: string, start: number, end: number, out: Uint16Array, at: number): boolean {
  let parts = 0;
  let value = 0;
  let digits = 0;
  let hi = 0;
  for (let i = start; i <= end; i++) {
    const c = i === end ? DOT : s.charCodeAt(i);
    if (c === DOT) {
      if (digits === 0 || value > 255) return false;
      if (parts % 2 === 0) hi = value;
      else out[at + (parts >> 1)] = (hi << 8) | value;
      parts++;
      if (parts > 4) return false;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false;
      value = value * 10 + (c - 0x30);
      if (++digits > 3) return false;
    } else return false;
  }
  return parts === 4;
}

/** RFC 4291 text form s[0, end) into out; `::` once at most, an IPv4 tail allowed. */
function parseV6(s: string, end: number, out: Uint16Array): boolean {
  let n = 0;
  let gap = -1;
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === COLON) {
    if (s.charCodeAt(1) !== COLON) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (n === 8) return false;
    let v = 0;
    let digits = 0;
    let j = i;
    for (; j < end; j++) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      v = (v << 4) | h;
      if (++digits > 4) return false;
    }
    if (j < end && s.charCodeAt(j) === DOT) {
      // An IPv4 tail takes the last two words and ends the address.
      if (n > 6 || !parseV4(s, i, end, out, n)) return false;
      n += 2;
      break;
    }
    if (digits === 0) return false;
    out[n++] = v;
    if (j === end) break;
    if (s.charCodeAt(j) !== COLON) return false;
    j++;
    if (j < end && s.charCodeAt(j) === COLON) {
      if (gap >= 0) return false;
      gap = n;
      j++;
    } else if (j === end) return false;
    i = j;
  }
  if (gap < 0) return n === 8;
  if (n > 7) return false;
  const shift = 8 - n;
  for (let k = n - 1; k >= gap; k--) out[k + shift] = out[k] as number;
  for (let k = gap; k < gap + shift; k++) out[k] = 0;
  return true;
}

/** Parses an address (a zone, `fe80::1%eth0`, is ignored) into `out`. */
export function parseIp(text: string, out: Uint16Array): Family {
  let end = text.length;
  let colon = false;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === COLON) colon = true;
    else if (c === PERCENT) {
      end = i;
      break;
    }
  }
  if (end === 0) return 0;
  if (!colon) {
    if (!parseV4(text, 0, end, out, 6)) return 0;
    out[0] = out[1] = out[2] = out[3] = out[4] = 0;
    out[5] = 0xffff;
    return 4;
  }
  if (!parseV6(text, end, out)) return 0;
  return out[0] === 0 && out[1] === 0 && out[2] === 0 && out[3] === 0 && out[4] === 0 && out[5] === 0xffff ? 4 : 6;
}

/** Zeroes every bit of `words` after the first `bits`. */
function maskTo(words: Uint16Array, bits: number): void {
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, bits - i * 16));
    words[i] = keep === 16 ? (words[i] as number) : (words[i] as number) & ((0xffff << (16 - keep)) & 0xffff);
  }
}

function samePrefix(a: Uint16Array, net: Uint16Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 16; bits -= 16, i++) if (a[i] !== net[i]) return false;
  if (bits === 0) return true;
  return ((a[i] as number) & ((0xffff << (16 - bits)) & 0xffff)) === net[i];
}

export interface Cidr {
  family: 4 | 6;
  /** The network, masked, in the 128-bit space (IPv4 as ::ffff:a.b.c.d). */
  words: Uint16Array;
  /** Prefix length in that space (an IPv4 /8 is 104). */
  bits: number;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  if (addr.indexOf('%') >= 0) return undefined;
  const words = new Uint16Array(8);
  const family = parseIp(addr, words);
  if (family === 0) return undefined;
  const v4Text = addr.indexOf(':') < 0;
  let bits = v4Text ? 32 : 128;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > bits) return undefined;
    bits = Number(p);
  }
  if (v4Text) bits += 96;
  // An IPv4-mapped range shorter than the mapping prefix reaches beyond IPv4: an IPv6 range.
  const f: 4 | 6 = family === 4 && bits >= 96 ? 4 : 6;
  maskTo(words, bits);
  return { family: f, words, bits };
}

/** A set of CIDR ranges, compiled once per config; `has` allocates nothing. */
export class CidrSet {
  private readonly ranges: readonly Cidr[];

  /** Entries that do not parse are skipped (the schema has refused them already). */
  constructor(cidrs: readonly string[]) {
    const ranges: Cidr[] = [];
    for (const c of cidrs) {
      const r = parseCidr(c);
      if (r !== undefined) ranges.push(r);
    }
    this.ranges = ranges;
  }

  get size(): number {
    return this.ranges.length;
  }

  has(address: string): boolean {
    const n = this.ranges.length;
    if (n === 0) return false;
    const family = parseIp(address, scratch);
    if (family === 0) return false;
    for (let i = 0; i < n; i++) {
      const r = this.ranges[i] as Cidr;
      if (r.family === family && samePrefix(scratch, r.words, r.bits)) return true;
    }
    return false;
  }
}

/** True when `text` is an IPv4 or IPv6 address. */
export function isIp(text: string): boolean {
  return parseIp(text, scratch) !== 0;
}

/** RFC 5952: lower case, no leading zeros, the longest run of two or more zero words (the first of equals) as `::`. */
export function formatIpv6(words: Uint16Array): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += (words[i] as number).toString(16);
  }
  return out;
}

/**
 * The key of an address when IPv6 clients are grouped by `prefix`: the network in canonical form
 * with its length (`2001:db8:1:2::/64`; `/128` keeps the address, canonical). IPv4 (also
 * IPv4-mapped) stays the dotted address; what is no address stays as given.
 */
export function groupAddress(address: string, prefix: number): string {
  if (address.indexOf(':') < 0) return address;
  const family = parseIp(address, scratch);
  if (family === 0) return address;
  if (family === 4) {
    const a = scratch[6] as number;
    const b = scratch[7] as number;
    return `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  if (prefix >= 128) return formatIpv6(scratch);
  maskTo(scratch, prefix);
  return `${formatIpv6(scratch)}/${prefix}`;
}
