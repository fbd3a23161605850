/**
 * The one definition of the config file. It validates (`parseConfigObject`), it documents
 * (`configJsonSchema`, committed as schema/portcullis.schema.json), and its output type is the
 * frozen `Config` the rest of the code reads. Durations come out in milliseconds, sizes in bytes.
 */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h)$';
const SIZE_PATTERN = '^\\d+(B|KiB|MiB|GiB|KB|MB|GB)?$';

function duration(min = 0) {
  return z
    .union([z.int().min(0), z.string().regex(new RegExp(DURATION_PATTERN))], {
      error: (iss) => `must be a duration such as 500ms, 2s or 1m, or whole milliseconds, got ${show(iss.input)}`,
    })
    .transform((v, ctx) => {
      const ms = typeof v === 'number' ? v : (parseDuration(v) as number);
      if (ms < min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${min}ms, got ${show(v)}` });
        return z.NEVER;
      }
      return ms;
    });
}

function size(min: number, max: number) {
  return z
    .union([z.int().min(0), z.string().regex(new RegExp(SIZE_PATTERN))], {
      error: (iss) => `must be a size such as 16KiB, or whole bytes, got ${show(iss.input)}`,
    })
    .transform((v, ctx) => {
      const bytes = typeof v === 'number' ? v : (parseSize(v) as number);
      if (bytes < min || bytes > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max} bytes, got ${show(v)}` });
        return z.NEVER;
      }
      return bytes;
    });
}

function count(min: number, dflt: number) {
  return z
    .int({ error: (iss) => `must be a whole number, got ${show(iss.input)}` })
    .min(min, { error: (iss) => `must be >= ${min}, got ${show(iss.input)}` })
    .max(1_000_000_000)
    .default(dflt);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

const port = (dflt: number) =>
  z
    .int({ error: (iss) => `must be a port number, got ${show(iss.input)}` })
    .min(0)
    .max(65535, { error: (iss) => `must be <= 65535, got ${show(iss.input)}` })
    .default(dflt);

const endpoint = (dflt: number) =>
  z.strictObject({
    host: z.string().min(1).default('0.0.0.0'),
    port: port(dflt),
  });

const queue = z.strictObject({
  size: count(0, 0).describe('queued requests at most; 0 = reject at once'),
  timeout: duration(1).default(1000).describe('longest wait in the queue'),
});

const inflight = z.strictObject({
  max: count(0, 256).describe('in-flight requests at most; 0 rejects everything'),
  perClient: count(0, 0).describe('in-flight requests per client address; 0 = off'),
  queue: queue.default({ size: 0, timeout: 1000 }),
});

const routeName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,63}$/, { error: (iss) => `must be 1-63 letters, digits, '_', '.' or '-', got ${show(iss.input)}` });

const httpMethod = z.string().regex(/^[A-Z]+$/, { error: (iss) => `must be an upper-case HTTP method, got ${show(iss.input)}` });

const match = z
  .strictObject({
    prefix: z.string().startsWith('/').optional(),
    exact: z.string().startsWith('/').optional(),
    regex: z
      .string()
      .refine(isRegex, { error: (iss) => `must be a valid regular expression, got ${show(iss.input)}` })
      .optional(),
    methods: z.array(httpMethod).min(1).optional(),
    host: z.string().min(1).optional(),
    headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/), z.string()).optional(),
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
    name: routeName,
    match: match.default({}),
    inflight: z
      .strictObject({
        max: count(0, 256),
        perClient: count(0, 0),
        queue: queue.default({ size: 0, timeout: 1000 }),
      })
      .optional(),
    bypass: z.boolean().default(false).describe('never limited, never queued'),
  })
  .refine((r) => !(r.bypass && r.inflight), {
    error: 'a bypass route cannot have inflight limits',
    path: ['bypass'],
  });

const upstreamUrl = z.string().refine(
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

const status = (dflt: number) =>
  z
    .int()
    .min(400, { error: (iss) => `must be an HTTP error status (400-599), got ${show(iss.input)}` })
    .max(599, { error: (iss) => `must be an HTTP error status (400-599), got ${show(iss.input)}` })
    .default(dflt);

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe('for editors; ignored'),
    listen: endpoint(8080).default({ host: '0.0.0.0', port: 8080 }).describe('restart-only'),
    admin: endpoint(9901).default({ host: '0.0.0.0', port: 9901 }).describe('restart-only'),
    upstream: z
      .strictObject({
        url: upstreamUrl.default('http://127.0.0.1:3000'),
        connectTimeout: duration(1).default(1000),
        timeout: duration(1).default(60_000).describe('wait for the response head, then 504'),
        maxSockets: count(1, 512).describe('keep-alive pool size'),
      })
      .default({ url: 'http://127.0.0.1:3000', connectTimeout: 1000, timeout: 60_000, maxSockets: 512 })
      .describe('restart-only'),
    connections: z
      .strictObject({
        max: count(1, 4096).describe('open client sockets, idle keep-alive included'),
        perClient: count(0, 0).describe('open sockets per client address; 0 = off'),
        onLimit: z.enum(['reject', 'close']).default('reject'),
        headerTimeout: duration(1).default(10_000).describe('the whole request head must arrive in time'),
        idleTimeout: duration(1).default(60_000).describe('keep-alive idle'),
        maxHeaderSize: size(1024, 1024 * 1024).default(16 * 1024).describe('larger -> 431'),
      })
      .default({ max: 4096, perClient: 0, onLimit: 'reject', headerTimeout: 10_000, idleTimeout: 60_000, maxHeaderSize: 16 * 1024 }),
    inflight: inflight.default({ max: 256, perClient: 0, queue: { size: 0, timeout: 1000 } }),
    routes: z.array(route).default([]).describe('first match wins'),
    reject: z
      .strictObject({
        status: status(503),
        clientStatus: status(429).describe('for per-client limits'),
        retryAfter: duration(0).default(1000).describe('Retry-After in whole seconds, rounded up; 0 = omit'),
        body: z.string().max(65_536).default('{"error":"overloaded"}'),
        contentType: z.string().min(1).default('application/json'),
        reasonHeader: z.boolean().default(true).describe('x-portcullis-reason'),
      })
      .default({
        status: 503,
        clientStatus: 429,
        retryAfter: 1000,
        body: '{"error":"overloaded"}',
        contentType: 'application/json',
        reasonHeader: true,
      }),
    dryRun: z.boolean().default(false).describe('decide and report, never enforce'),
    telemetry: z
      .strictObject({
        alwaysSampleRejects: z.boolean().default(true),
        rejectSpansPerSecond: count(0, 100),
      })
      .default({ alwaysSampleRejects: true, rejectSpansPerSecond: 100 }),
    drain: z
      .strictObject({
        delay: duration(0).default(5000).describe('after SIGTERM keep serving this long'),
        timeout: duration(0).default(25_000).describe('then wait this long for in-flight requests'),
      })
      .default({ delay: 5000, timeout: 25_000 }),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.routes.forEach((r, i) => {
      const first = seen.get(r.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `duplicate route name ${show(r.name)} (also routes[${first}])` });
      } else seen.set(r.name, i);
    });
  });

type Parsed = z.output<typeof configSchema>;
type DeepReadonly<T> = T extends (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** The effective config: every default resolved, durations in ms, sizes in bytes, frozen. */
export type Config = DeepReadonly<Omit<Parsed, '$schema'>>;
export type RouteConfig = Config['routes'][number];
export type InflightConfig = Config['inflight'];
export type QueueConfig = InflightConfig['queue'];

/** Fields that only take effect on restart; a reload that changes them is reported, not applied. */
export const RESTART_ONLY = ['listen', 'admin', 'upstream'] as const;

/** The JSON Schema (draft 2020-12) of the file as written by people: the input side of the schema. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
  return {
    ...schema,
    $id: 'https://portcullis.dev/schema/portcullis.schema.json',
    title: 'portcullis config',
  };
}
