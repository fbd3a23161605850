/**
 * Request-target normalization (DESIGN invariant 8): routes match on the normalized path and the
 * app receives exactly that, so the spelling a client picks cannot move a request past its route's
 * cap. Apps route on what they decode (aiohttp on the percent-decoded path, WHATWG-URL servers
 * with dot segments resolved and `\` read as `/`), so we decode and resolve first:
 *   - absolute-form (`http://host/x`) becomes origin-form (`/x`); a fragment is dropped;
 *   - escapes of unreserved characters are decoded (RFC 3986 §2.3, §6.2.2.2), other escapes keep
 *     their meaning with upper-case hex; characters a URL may not hold raw are escaped;
 *   - dot segments are removed (RFC 3986 §5.2.4), also `%2e` ones;
 *   - a leading run of slashes is always one slash (a WHATWG parser reads `//x/y` as host `x`),
 *     other runs only with `mergeSlashes`;
 *   - `%2F`, `%5C` and a raw `\` follow `escapedSlashes`;
 *   - NUL and malformed escapes are refused.
 * The query string is kept as sent. Case is kept (matching stays case-sensitive).
 * Compiled once per config; a target that is already normal is returned as is, unallocated.
 */

export type EscapedSlashAction = 'keep' | 'reject' | 'decode';

export interface PathSettings {
  readonly mergeSlashes: boolean;
  /**
   * `%2F`, `%5C` and a raw `\`. keep: `%2F`/`%5C` stay escaped, a raw `\` is sent on as `%5C`
   * (so no app reads it as a separator); reject: 400; decode: all three become `/`.
   */
  readonly escapedSlashes: EscapedSlashAction;
}

/** Why a target was refused; answered with 400 `bad_path`. Constants: a refusal allocates nothing. */
export interface PathProblem {
  readonly problem: 'bad_path';
  readonly detail: string;
}

/** The origin-form target (normalized path, then the query as sent), or why it was refused. */
export type PathNormalizer = (target: string) => string | PathProblem;

const problem = (detail: string): PathProblem => Object.freeze({ problem: 'bad_path', detail });
export const PATH_PROBLEMS = Object.freeze({
  malformedEscape: problem('malformed percent-escape'),
  nul: problem('NUL in the path'),
  escapedSlash: problem('escaped slash or backslash in the path (paths.escapedSlashes: reject)'),
  asterisk: problem('asterisk-form target (only OPTIONS * is served)'),
  form: problem('request target is neither origin-form (/path) nor absolute-form (http://host/path)'),
  character: problem('character outside Latin-1 in the path'),
});

export function isPathProblem(v: string | PathProblem): v is PathProblem {
  return typeof v !== 'string';
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;
const QUESTION = 0x3f;
const HASH = 0x23;

/** RFC 3986 unreserved: ALPHA DIGIT - . _ ~ */
const UNRESERVED = new Uint8Array(128);
/** What a normalized path holds raw: unreserved, sub-delims, ':', '@' and '/'. Everything else is escaped. */
const RAW_OK = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  UNRESERVED[c] = alnum || c === 0x2d || c === DOT || c === 0x5f || c === 0x7e ? 1 : 0;
  RAW_OK[c] = UNRESERVED[c] === 1 || "!$&'()*+,;=:@/".includes(String.fromCharCode(c)) ? 1 : 0;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function escape(c: number): string {
  return `%${HEX[c >> 4]}${HEX[c & 15]}`;
}

export function createPathNormalizer(settings: PathSettings): PathNormalizer {
  const { mergeSlashes, escapedSlashes } = settings;
  return (target) => {
    if (isNormal(target)) return target;
    const parts = originForm(target);
    if (typeof parts !== 'string') return parts;
    const q = parts.indexOf('?');
    const decoded = decode(q === -1 ? parts : parts.slice(0, q), escapedSlashes);
    if (typeof decoded !== 'string') return decoded;
    return resolve(decoded, mergeSlashes) + (q === -1 ? '' : parts.slice(q));
  };
}

/** True when `t` needs no work: origin-form, nothing to decode, resolve, merge or escape. */
function isNormal(t: string): boolean {
  if (t.charCodeAt(0) !== SLASH) return false;
  let prev = 0;
  const n = t.length;
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c === QUESTION) return t.indexOf('#', i) === -1;
    if (c >= 128 || RAW_OK[c] === 0) return false;
    // A segment that starts with '.' may be a dot segment; '//' is an empty segment.
    if (prev === SLASH && (c === SLASH || c === DOT)) return false;
    prev = c;
  }
  return true;
}

/** Absolute-form to origin-form, fragment dropped: path and query, the path starting with '/'. */
function originForm(target: string): string | PathProblem {
  let rest = target;
  if (rest.charCodeAt(0) !== SLASH) {
    if (rest === '*') return PATH_PROBLEMS.asterisk;
    const m = /^(https?):\/\/[^/?#]*/i.exec(rest);
    if (m === null) return PATH_PROBLEMS.form;
    rest = rest.slice(m[0].length);
    if (rest.charCodeAt(0) !== SLASH) rest = `/${rest}`;
  }
  const hash = rest.indexOf('#');
  return hash === -1 ? rest : rest.slice(0, hash);
}

/** Decodes and escapes one path (starts with '/'); the result's '/' are the only separators. */
function decode(p: string, escapedSlashes: PathSettings['escapedSlashes']): string | PathProblem {
  let out = '';
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c === PERCENT) {
      const hi = i + 2 < n ? hexValue(p.charCodeAt(i + 1)) : -1;
      const lo = hi < 0 ? -1 : hexValue(p.charCodeAt(i + 2));
      if (lo < 0) return PATH_PROBLEMS.malformedEscape;
      const v = hi * 16 + lo;
      i += 2;
      if (v === 0) return PATH_PROBLEMS.nul;
      if (v === SLASH || v === BACKSLASH) {
        if (escapedSlashes === 'reject') return PATH_PROBLEMS.escapedSlash;
        out += escapedSlashes === 'decode' ? '/' : escape(v);
      } else out += v < 128 && UNRESERVED[v] === 1 ? String.fromCharCode(v) : escape(v);
    } else if (c === BACKSLASH) {
      if (escapedSlashes === 'reject') return PATH_PROBLEMS.escapedSlash;
      out += escapedSlashes === 'decode' ? '/' : '%5C';
    } else if (c < 128 && RAW_OK[c] === 1) {
      out += p[i];
    } else if (c === 0) {
      return PATH_PROBLEMS.nul;
    } else if (c < 0x100) {
      out += escape(c);
    } else {
      // node hands the target over byte by byte (latin1): a wider character is not from the wire.
      return PATH_PROBLEMS.character;
    }
  }
  return out;
}

/** RFC 3986 §5.2.4 on a decoded path, with the slash rules; `p` starts with '/'. */
function resolve(p: string, mergeSlashes: boolean): string {
  const segments = p.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segments[i] as string;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      // `/a/.` is `/a/`, `/a/b/..` is `/a/`: a trailing dot segment leaves the slash.
      if (i === last) out.push('');
    } else if (s === '' && mergeSlashes && i !== last) {
      continue;
    } else out.push(s);
  }
  // A leading empty segment would make `//x/y`, which a WHATWG parser reads as host `x`.
  while (out.length > 1 && out[0] === '') out.shift();
  return `/${out.join('/')}`;
}

const routeNormalizer = createPathNormalizer({ mergeSlashes: false, escapedSlashes: 'keep' });

/**
 * A route's `exact` or `prefix` as requests will be compared with it: a pattern that is not in
 * this form (`/%73low`, `/x/../slow`) could never match, so the config check refuses it.
 */
export function normalizedRoutePath(path: string): string | PathProblem {
  return routeNormalizer(path);
}
