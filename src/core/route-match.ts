/**
 * Route matching, compiled once per config so that matching a request allocates nothing:
 * regular expressions are built once, names and hosts lower-cased once, and the host is
 * compared in place (no split on ':' and no toLowerCase per request).
 */
import type { RouteConfig } from './config-schema.ts';

/** What admission knows about a request. */
export interface RequestInfo {
  method: string;
  /** Path without the query string, normalized (src/core/path-normalize.ts): what the app receives. */
  path: string;
  /** Host header, possibly with a port. */
  host: string | undefined;
  /** Lower-case names, like node's `req.headers`. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Remote address. */
  client: string;
}

/** Index of the first route that matches, -1 for none. */
export type RouteMatcher = (req: RequestInfo) => number;

interface CompiledRoute {
  prefix: string | undefined;
  exact: string | undefined;
  regex: RegExp | undefined;
  methods: ReadonlySet<string> | undefined;
  /** Lower-case host; for `*.example.com` this is `.example.com` and `wildcard` is set. */
  host: string | undefined;
  wildcard: boolean;
  headerNames: readonly string[];
  headerValues: readonly string[];
}

export function compileRoutes(routes: readonly RouteConfig[]): RouteMatcher {
  const compiled = routes.map(compileRoute);
  const n = compiled.length;
  return (req) => {
    for (let i = 0; i < n; i++) if (matches(compiled[i] as CompiledRoute, req)) return i;
    return -1;
  };
}

function compileRoute(route: RouteConfig): CompiledRoute {
  const m = route.match;
  const host = m.host?.toLowerCase();
  const wildcard = host !== undefined && host.startsWith('*.');
  const names: string[] = [];
  const values: string[] = [];
  for (const [name, value] of Object.entries(m.headers ?? {})) {
    names.push(name.toLowerCase());
    values.push(value);
  }
  return {
    prefix: m.prefix,
    exact: m.exact,
    // No flags: a `g` or `y` RegExp keeps state between test() calls.
    regex: m.regex === undefined ? undefined : new RegExp(m.regex),
    methods: m.methods === undefined ? undefined : new Set(m.methods),
    host: wildcard ? host.slice(1) : host,
    wildcard,
    headerNames: names,
    headerValues: values,
  };
}

function matches(r: CompiledRoute, req: RequestInfo): boolean {
  if (r.exact !== undefined && req.path !== r.exact) return false;
  if (r.prefix !== undefined && !req.path.startsWith(r.prefix)) return false;
  if (r.methods !== undefined && !r.methods.has(req.method)) return false;
  if (r.host !== undefined && (req.host === undefined || !hostMatches(req.host, r.host, r.wildcard))) return false;
  for (let i = 0; i < r.headerNames.length; i++) {
    if (!headerMatches(req.headers[r.headerNames[i] as string], r.headerValues[i] as string)) return false;
  }
  // Last: the dearest test.
  if (r.regex !== undefined && !r.regex.test(req.path)) return false;
  return true;
}

function headerMatches(got: string | string[] | undefined, want: string): boolean {
  if (got === undefined) return false;
  if (typeof got === 'string') return got === want;
  // A repeated header matches when one of its values does.
  for (let i = 0; i < got.length; i++) if (got[i] === want) return true;
  return false;
}

/** Length of the host name in a Host header: without `:port`, and `[v6]` kept whole. */
function hostNameLength(host: string): number {
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const end = host.indexOf(']');
    return end < 0 ? host.length : end + 1;
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host.length : colon;
}

/**
 * `pattern` is lower case. Exact: the whole name equals it. Wildcard (`pattern` is
 * `.example.com`): the name ends with it and has at least one label before, so
 * `*.example.com` matches `a.example.com` but not `example.com`.
 */
export function hostMatches(host: string, pattern: string, wildcard: boolean): boolean {
  let len = hostNameLength(host);
  // A fully qualified name (`example.com.`) is the same host.
  if (len > 0 && host.charCodeAt(len - 1) === 0x2e) len--;
  const plen = pattern.length;
  if (wildcard ? len <= plen : len !== plen) return false;
  const offset = len - plen;
  for (let i = 0; i < plen; i++) {
    let c = host.charCodeAt(offset + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20; // ASCII upper to lower; host names are ASCII (punycode)
    if (c !== pattern.charCodeAt(i)) return false;
  }
  return true;
}
