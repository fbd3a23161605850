/**
 * The one definition of the config file. It validates (`parseConfigObject`), it documents
 * (`configJsonSchema`, committed as schema/portcullis.schema.json), and its output type is the
 * frozen `Config` the rest of the code reads. Durations come out in milliseconds, sizes in bytes.
 */
import { z } from 'zod';
import { atLeast, atMost, count, duration, endpoint, size, status, whole } from './config-fields.ts';
import { adaptiveSchema, type LimitChoice } from './config-adaptive.ts';
import { normalizedRoutePath } from './path-normalize.ts';
import { isFieldValue, isHostName, isMediaType } from './wire-values.ts';
import { parseCidr } from './cidr.ts';
import { show } from './config-messages.ts';
import { isRecord } from './objects.ts';

const queue = z
  .strictObject({
    size: count(0, 0).describe('queued requests at most; 0 = reject at once'),
    timeout: duration(1).prefault('1s').describe('longest wait in the queue'),
  })
  .describe('where requests wait for a free slot, FIFO');

/**
 * A minimum data rate, Kestrel's MinDataRate: measured only over the time the client is the one
 * holding things up, and only enforced once that time exceeds `grace`.
 */
const minRate = z.strictObject({
  bytesPerSecond: count(0, 240).describe('bytes per second at least, averaged over the time the client is waited for; 0 = off'),
  grace: duration(0).prefault('5s').describe('the rate is not enforced until the client was waited for this long'),
});

const DEFAULT_MAX = 256;

/**
 * A limiter's in-flight cap: a fixed `max` (default 256) or an `adaptive` limit, never both, and
 * per-client caps (always fixed) and its queue. Comes out as `LimitChoice` plus the rest, so
 * `max` is absent exactly when `adaptive` is there.
 */
const inflight = z
  .strictObject({
    max: whole(0)
      .optional()
      .meta({ default: DEFAULT_MAX })
      .describe('in-flight requests at most; 0 rejects everything; default 256 unless adaptive is given (not both)'),
    adaptive: adaptiveSchema.optional(),
    perClient: count(0, 0).describe('in-flight requests per client address, a fixed cap (never adaptive); 0 = off'),
    queue: queue.prefault({}),
  })
  // So that editors (and the chart's values schema) flag both too.
  .meta({ not: { required: ['max', 'adaptive'] } })
  .superRefine(
    (c, ctx) => {
      if (c.max !== undefined && c.adaptive !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['max'], message: bothLimitsMessage(c.max) });
      }
    },
    // Also when another key is invalid, so this is reported with the rest.
    { when: (payload) => isRecord(payload.value) },
  )
  .transform(({ max, adaptive, perClient, queue }): LimitChoice & { perClient: number; queue: typeof queue } =>
    adaptive === undefined ? { max: max ?? DEFAULT_MAX, perClient, queue } : { adaptive, perClient, queue },
  );

const routeName = z
  .string({ error: (iss) => (iss.input === undefined ? 'is required' : `must be a string, got ${show(iss.input)}`) })
  .regex(/^[A-Za-z0-9_.-]{1,63}$/, { error: (iss) => `must be 1-63 letters, digits, '_', '.' or '-', got ${show(iss.input)}` });

const httpMethod = z.string().regex(/^[A-Z]+$/, { error: (iss) => `must be an upper-case HTTP method, got ${show(iss.input)}` });

// A regex rather than startsWith: startsWith becomes `format: starts_with` in the JSON Schema,
// which is no JSON Schema format.
const urlPath = z.string().regex(/^\//, { error: (iss) => `must be a path starting with "/", got ${show(iss.input)}` });

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: (iss) => `must be an HTTP header name, got ${show(iss.input)}` });

/** A string the data path sends or compares as a header value (issue 10). */
const headerValue = z.string().refine(isFieldValue, {
  error: (iss) =>
    `must be a header value: visible ASCII with spaces or tabs inside, no CR, LF, NUL or other control characters, no leading or trailing whitespace, got ${show(iss.input)}`,
});

const match = z
  .strictObject({
    prefix: urlPath.optional().describe('path starts with this'),
    exact: urlPath.optional().describe('path is exactly this'),
    regex: z
      .string()
      .refine(isRegex, { error: (iss) => `must be a valid regular expression, got ${show(iss.input)}` })
      .optional()
      .describe('path matches this JavaScript regular expression'),
    methods: z.array(httpMethod).min(1).optional().describe('request method is one of these'),
    host: z
      .string()
      .refine(isHostName, {
        error: (iss) => `must be a host name (letters, digits, '-', '_' and '.'; '*.' in front for any subdomain; or an [IPv6] literal), got ${show(iss.input)}`,
      })
      .optional()
      .describe('Host header (without port) is this'),
    headers: z
      .record(headerName, headerValue)
      .optional()
      .describe('each named request header has exactly this value'),
  })
  .describe('every key given must match; none given matches everything');

function isRegex(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

const route = z
  .strictObject({
    name: routeName.describe('unique; shows up as limiter route:<name> and in telemetry'),
    match: match.default({}),
    inflight: inflight.optional().describe("this route's own in-flight cap, on top of the global one"),
    bypass: z.boolean().default(false).describe('never limited, never queued (a bypass route takes no inflight)'),
  })
  .describe('requests matching this route also pass its own limiter');

/**
 * Rules across fields of `routes`: unique names, no inflight on a bypass route. Written for
 * values that may be only partly valid, because zod skips refinements once a value has failed
 * (any non-integer number does that), and the loader calls this again on the raw file then so
 * that these problems are reported together with the others.
 */
export function routeRuleProblems(routes: unknown): { path: (string | number)[]; message: string }[] {
  if (!Array.isArray(routes)) return [];
  const problems: { path: (string | number)[]; message: string }[] = [];
  const seen = new Map<string, number>();
  routes.forEach((r: unknown, i) => {
    if (!isRecord(r)) return;
    const name = r['name'];
    if (typeof name === 'string') {
      const first = seen.get(name);
      if (first !== undefined) {
        problems.push({ path: [i, 'name'], message: `duplicate route name ${show(name)} (also routes[${first}])` });
      } else seen.set(name, i);
    }
    if (r['bypass'] === true && r['inflight'] !== undefined) {
      problems.push({ path: [i, 'bypass'], message: 'a bypass route cannot have inflight limits' });
    }
    const m = r['match'];
    if (isRecord(m)) for (const key of ['exact', 'prefix']) problems.push(...routePathProblems(m[key], [i, 'match', key]));
  });
  return problems;
}

function bothLimitsMessage(max: unknown): string {
  return `cannot be given together with adaptive (a limiter has a fixed max or an adaptive limit between adaptive.min and adaptive.max): remove one, got ${show(max)}`;
}

/**
 * `max` and `adaptive` in one limiter (global `inflight`, `routes[].inflight`), checked on the
 * raw file for the same reason as `routeRuleProblems`: reported even when other values fail.
 */
export function limitRuleProblems(raw: unknown): { path: (string | number)[]; message: string }[] {
  if (!isRecord(raw)) return [];
  const problems: { path: (string | number)[]; message: string }[] = [];
  const check = (inflight: unknown, path: (string | number)[]) => {
    if (isRecord(inflight) && inflight['max'] !== undefined && inflight['adaptive'] !== undefined) {
      problems.push({ path: [...path, 'max'], message: bothLimitsMessage(inflight['max']) });
    }
  };
  check(raw['inflight'], ['inflight']);
  const routes = raw['routes'];
  if (Array.isArray(routes)) routes.forEach((r: unknown, i) => isRecord(r) && check(r['inflight'], ['routes', i, 'inflight']));
  return problems;
}

/** Requests are matched after normalization (src/core/path-normalize.ts): a pattern must be in that form. */
function routePathProblems(v: unknown, path: (string | number)[]): { path: (string | number)[]; message: string }[] {
  if (typeof v !== 'string' || !v.startsWith('/')) return [];
  const n = normalizedRoutePath(v);
  if (typeof n !== 'string') return [{ path, message: `must be a valid path (${n.detail}), got ${show(v)}` }];
  if (n === v) return [];
  return [{ path, message: `must be a normalized path, as requests are matched after normalization: write ${show(n)}, got ${show(v)}` }];
}

// An RFC 9110 protocol: token ["/" token].
const upgradeToken = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\/[A-Za-z0-9!#$%&'*+.^_`|~-]+)?$/, {
  error: (iss) => `must be an Upgrade protocol such as websocket (token or token/version), got ${show(iss.input)}`,
});

const upstreamUrl = z.string({ error: (iss) => `must be a URL string, got ${show(iss.input)}` }).refine(
  (u) => {
    if (u.startsWith('unix:')) return u.length > 'unix:'.length;
    try {
      const p = new URL(u);
      return p.protocol === 'http:' && p.pathname === '/' && !p.search && !p.hash;
    } catch {
      return false;
    }
  },
  { error: (iss) => `must be http://HOST:PORT or unix:/path/to.sock, got ${show(iss.input)}` },
);

const cidr = z
  .string({ error: (iss) => `must be a CIDR string, got ${show(iss.input)}` })
  .refine((c) => parseCidr(c) !== undefined, {
    error: (iss) => `must be an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8, or one address, got ${show(iss.input)}`,
  });

const clientKey = z
  .strictObject({
    from: z
      .enum(['socket', 'forwarded-for', 'header'])
      .default('socket')
      .describe(
        'socket: the peer address; forwarded-for: the rightmost X-Forwarded-For address not in trustedProxies, when the peer is in trustedProxies (else the peer); header: the value of `header`',
      ),
    header: headerName.optional().describe('with from: header, the request header whose value is the key (e.g. x-tenant-id); a request without it is keyed by its address'),
    trustedProxies: z
      .array(cidr)
      .default([])
      .describe("peers (CIDRs or addresses, IPv4 and IPv6) whose X-Forwarded-* are kept and appended to; from any other peer they are overwritten"),
    ipv6Prefix: z
      .int({ error: (iss) => `must be a prefix length (0-128), got ${show(iss.input)}` })
      .min(0, atLeast(0))
      .max(128, atMost(128))
      .default(64)
      .describe('IPv6 clients in one /N share a key, the socket cap included (one host usually owns a /64); 128 = one key per address'),
  })
  .superRefine((c, ctx) => {
    if (c.from === 'header' && c.header === undefined) ctx.addIssue({ code: 'custom', path: ['header'], message: 'is required with from: header' });
  });

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe('for editors; ignored'),
    listen: endpoint(8080).prefault({}).describe('where clients connect (restart-only)'),
    admin: endpoint(9901).prefault({}).describe('admin API: /healthz /readyz /stats /config /metrics (restart-only)'),
    upstream: z
      .strictObject({
        url: upstreamUrl.default('http://127.0.0.1:3000').describe('the app: http://127.0.0.1:PORT (loopback) or unix:/path/to.sock'),
        connectTimeout: duration(1).prefault('1s').describe('give up connecting to the app after this (502)'),
        timeout: duration(1).prefault('60s').describe('wait for the response head, then 504'),
        maxSockets: count(1, 512).describe('keep-alive pool size'),
      })
      .prefault({})
      .describe('the app behind portcullis (restart-only)'),
    connections: z
      .strictObject({
        max: count(1, 4096).describe('open client sockets, idle keep-alive included'),
        perClient: count(0, 0).describe('open sockets per client address; 0 = off'),
        onLimit: z
          .enum(['reject', 'close'])
          .default('reject')
          .describe('reject: minimal 503 (429 for perClient) and close; close: close at once'),
        evictIdle: z
          .boolean()
          .default(true)
          .describe('at the cap, close the longest-idle socket (never spoke, or keep-alive idle) to make room; onLimit applies only when every socket is busy'),
        headerTimeout: duration(1).prefault('10s').describe('the whole request head must arrive in time (slowloris)'),
        idleTimeout: duration(1).prefault('60s').describe('keep-alive idle'),
        maxHeaderSize: size(1024, 1024 * 1024).prefault('16KiB').describe('larger -> 431'),
        bodyTimeout: duration(0)
          .prefault('60s')
          .describe('cut a client whose request body sends nothing for this long while the sidecar waits for it; 0 = off'),
        bodyMinRate: minRate.prefault({}).describe('cut a client that sends its request body slower than this, after a grace'),
        sendTimeout: duration(0)
          .prefault('60s')
          .describe('cut a client that takes nothing of its response for this long while bytes wait for it; 0 = off'),
        sendMinRate: minRate.prefault({}).describe('cut a client that reads its response slower than this, after a grace'),
      })
      .prefault({})
      .describe('the socket cap'),
    upgrade: z
      .strictObject({
        allow: z
          .array(upgradeToken)
          .default(['websocket'])
          .describe('Upgrade protocols tunnelled to the app (case-insensitive; a name without /version allows every version); any other gets 400 upgrade_not_allowed and the app sees nothing; [] = no upgrades'),
        idleTimeout: duration(0)
          .prefault('5m')
          .describe('close a tunnel after this long without a byte either way; 0 = never'),
      })
      .prefault({})
      .describe('Upgrade (WebSocket) tunnels'),
    inflight: inflight.prefault({}).describe('the global in-flight cap'),
    clientKey: clientKey.prefault({}).describe('who a client is, for perClient limits (behind an ingress, too); and whose X-Forwarded-* to believe'),
    routes: z.array(route).prefault([]).describe('first match wins; every match key given must match'),
    paths: z
      .strictObject({
        mergeSlashes: z
          .boolean()
          .default(false)
          .describe('merge runs of slashes (/a//b is /a/b) before matching and forwarding; a leading run is always merged'),
        escapedSlashes: z
          .enum(['reject', 'keep', 'decode'])
          .default('reject')
          .describe('%2F, %5C and a raw backslash in the path. reject: 400 bad_path; keep: forward %2F/%5C as they are (a raw backslash as %5C); decode: all three are /'),
      })
      .prefault({})
      .describe('request paths are normalized before route matching (absolute-form to origin-form, dot segments removed, unreserved escapes decoded; NUL and malformed escapes are 400) and the app receives the normalized path'),
    reject: z
      .strictObject({
        status: status(503).describe('status for global and route limits'),
        clientStatus: status(429).describe('status for per-client limits'),
        retryAfter: duration(0).prefault('1s').describe('Retry-After in whole seconds, rounded up; 0 = omit'),
        body: z.string().max(65_536).default('{"error":"overloaded"}').describe('response body of a reject'),
        contentType: z
          .string()
          .refine(isMediaType, {
            error: (iss) =>
              `must be a media type such as application/json or text/plain; charset=utf-8 (it is sent as the Content-Type header), got ${show(iss.input)}`,
          })
          .default('application/json')
          .describe('content-type of a reject (a media type, sent as the Content-Type header)'),
        reasonHeader: z.boolean().default(true).describe('send x-portcullis-reason (e.g. queue_timeout)'),
      })
      .prefault({})
      .describe('the response a rejected request gets'),
    dryRun: z.boolean().default(false).describe('decide and report, never enforce'),
    telemetry: z
      .strictObject({
        alwaysSampleRejects: z.boolean().default(true).describe('record a span for every reject, whatever the sampler says'),
        rejectSpansPerSecond: count(0, 100).describe('cap on reject spans, so a flood cannot make tracing the bottleneck'),
      })
      .prefault({})
      .describe('spans and metrics (exporter settings come from the standard OTEL_* variables)'),
    drain: z
      .strictObject({
        delay: duration(0).prefault('5s').describe('after SIGTERM keep serving this long'),
        timeout: duration(0).prefault('25s').describe('then wait this long for in-flight requests'),
      })
      .prefault({})
      .describe('shutdown after SIGTERM'),
    reload: z
      .strictObject({
        watch: z.boolean().default(true).describe("watch the config file's directory (ConfigMap ..data swaps included)"),
        pollInterval: duration(0).prefault('5s').describe('also re-read the file and compare its hash this often; 0 = off'),
        debounce: duration(0).prefault('100ms').describe('wait this long after a change before reading, to coalesce a burst of events'),
      })
      .prefault({})
      .describe('live reload of this file (restart-only)'),
  })
  .superRefine(
    (c, ctx) => {
      for (const p of routeRuleProblems(c.routes)) ctx.addIssue({ code: 'custom', path: ['routes', ...p.path], message: p.message });
    },
    // Also when other fields are invalid, as long as the top level is an object.
    { when: (payload) => isRecord(payload.value) },
  )
  .describe('portcullis config: limits sockets and in-flight requests in front of an app');

type Parsed = z.output<typeof configSchema>;
type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** The effective config: every default resolved, durations in ms, sizes in bytes, frozen. */
export type Config = DeepReadonly<Omit<Parsed, '$schema'>>;
export type RouteConfig = Config['routes'][number];
export type InflightConfig = Config['inflight'];
export type QueueConfig = InflightConfig['queue'];

/** Fields that only take effect on restart; a reload that changes them is reported, not applied. */
export const RESTART_ONLY = ['listen', 'admin', 'upstream', 'reload'] as const;

/** The JSON Schema (draft 2020-12) of the file as written by people: the input side of the schema. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
  return {
    ...schema,
    $id: 'https://portcullis.dev/schema/portcullis.schema.json',
    title: 'portcullis config',
  };
}
