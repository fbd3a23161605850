/**
 * The command line, on Node and on Deno: `check` accepts the config documented in DESIGN.md
 * (YAML and JSON) with exit 0 and rejects a bad file with exit 1, listing every problem with
 * its path and its line:column; `schema` prints a JSON Schema of closed objects; `run` with a
 * bad config exits 1 listing the problems and never starts; every command has --help; and the
 * settings precedence is flags > environment > config file (port, admin port, upstream,
 * PORTCULLIS_CONFIG).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RUNTIMES, cleanup, runCli, startSidecar, writeConfig } from '../helpers/sidecar.ts';
import { freePort } from '../helpers/upstream.ts';

/** The example from DESIGN.md, verbatim: the documented config must validate. */
const DESIGN_EXAMPLE = `listen:   { host: 0.0.0.0, port: 8080 }          # restart-only
admin:    { host: 0.0.0.0, port: 9901 }          # restart-only
upstream:                                         # restart-only
  url: http://127.0.0.1:3000                      # http to loopback, or unix:/path/to.sock
  connectTimeout: 1s
  timeout: 60s                                    # wait for response head, then 504
  maxSockets: 512                                 # keep-alive pool size
connections:                                      # the socket cap
  max: 4096                                       # open client sockets, idle keep-alive included
  perClient: 0                                    # per remote address; 0 = off
  onLimit: reject                                 # reject: minimal 503 (429 for perClient) + close; close: close at once
  headerTimeout: 10s                              # whole request head must arrive in time (slowloris)
  idleTimeout: 60s                                # keep-alive idle
  maxHeaderSize: 16KiB                            # larger -> 431
inflight:                                         # the global in-flight cap
  max: 256
  perClient: 0
  queue: { size: 0, timeout: 1s }                 # size 0 = reject at once
routes:                                           # first match wins; every key given must match
  - name: uploads
    match: { prefix: /upload, methods: [POST, PUT] }   # also: exact, regex, host, headers
    inflight: { max: 8, perClient: 2, queue: { size: 32, timeout: 10s } }
  - name: probes
    match: { exact: /healthz }
    bypass: true                                  # never limited, never queued
reject:
  status: 503                                     # clientStatus: 429 for per-client limits
  clientStatus: 429
  retryAfter: 1s                                  # Retry-After header, whole seconds rounded up; 0 = omit
  body: '{"error":"overloaded"}'
  contentType: application/json
  reasonHeader: true                              # x-portcullis-reason: queue_timeout
dryRun: false                                     # decide and report, never enforce
telemetry:
  alwaysSampleRejects: true
  rejectSpansPerSecond: 100                       # cap, so a flood cannot make tracing the bottleneck
drain: { delay: 5s, timeout: 25s }                # after SIGTERM: keep serving \`delay\`, then drain up to \`timeout\`
`;

/** Five problems, one per line noted. */
const BAD_YAML = `listen:
  host: 127.0.0.1
  port: 99999
inflight:
  max: -1
  queue:
    timeout: soon
routes:
  - name: "bad name!"
    match: { prefix: /a }
conections:
  max: 10
`;
const BAD_PROBLEMS: Array<{ path: string; line: number }> = [
  { path: 'listen.port', line: 3 },
  { path: 'inflight.max', line: 5 },
  { path: 'inflight.queue.timeout', line: 7 },
  { path: 'routes[0].name', line: 9 },
  { path: 'conections', line: 11 },
];

const BAD_JSON = `{
  "inflight": { "max": "lots" },
  "reject": { "status": 200 }
}
`;

/** issue 10: valid-looking values the data path could not send, or timers could not keep. */
const UNSENDABLE_YAML = `inflight:
  queue:
    timeout: 1000h
reload:
  pollInterval: 1000h
drain:
  delay: 3000000000
reject:
  contentType: "text/plain\\r\\nx-injected: 1"
routes:
  - name: a
    match:
      headers:
        x-a: "one\\ntwo"
`;
const UNSENDABLE_PROBLEMS: Array<{ path: string; line: number; message: RegExp }> = [
  { path: 'inflight.queue.timeout', line: 3, message: /must be at most 596h/ },
  { path: 'reload.pollInterval', line: 5, message: /must be at most 596h/ },
  { path: 'drain.delay', line: 7, message: /must be at most 596h/ },
  { path: 'reject.contentType', line: 9, message: /must be a media type/ },
  { path: 'routes[0].match.headers["x-a"]', line: 14, message: /must be a header value/ },
];

/** Each expected problem is on its own output line, with its path and `:line:col`. */
function expectProblems(output: string, problems: Array<{ path: string; line: number }>): void {
  const lines = output.split('\n');
  for (const p of problems) {
    const hit = lines.find((l) => l.includes(p.path) && new RegExp(`:${p.line}:\\d+\\b`).test(l));
    expect(hit, `no line naming ${p.path} at line ${p.line} in:\n${output}`).toBeDefined();
  }
}

describe.each(RUNTIMES)('cli on %s', (runtime) => {
  afterEach(cleanup);

  it('check accepts the DESIGN.md example (YAML) and a JSON config with exit 0', async () => {
    const yaml = await runCli(runtime, ['check', writeConfig(DESIGN_EXAMPLE, 'design.yaml')]);
    expect(yaml.code, yaml.output).toBe(0);
    const json = await runCli(runtime, [
      'check',
      writeConfig({ listen: { port: 8080 }, inflight: { max: 10, queue: { size: 5, timeout: 500 } } }, 'ok.json'),
    ]);
    expect(json.code, json.output).toBe(0);
  });

  it('check on a bad file exits 1 and lists every problem with its path and line:col', async () => {
    const file = writeConfig(BAD_YAML, 'bad.yaml');
    const r = await runCli(runtime, ['check', file]);
    expect(r.code, r.output).toBe(1);
    expectProblems(r.output, BAD_PROBLEMS);
    // Exactly these five, each on a line of its own that names the file.
    expect(r.output.split('\n').filter((l) => l.startsWith(`${file}:`) && /:\d+:\d+: /.test(l))).toHaveLength(5);

    const j = await runCli(runtime, ['check', writeConfig(BAD_JSON, 'bad.json')]);
    expect(j.code, j.output).toBe(1);
    expectProblems(j.output, [
      { path: 'inflight.max', line: 2 },
      { path: 'reject.status', line: 3 },
    ]);
  });

  it('issue 10: check refuses header values the data path cannot send and durations no timer can keep', async () => {
    const file = writeConfig(UNSENDABLE_YAML, 'unsendable.yaml');
    const r = await runCli(runtime, ['check', file]);
    expect(r.code, r.output).toBe(1);
    expectProblems(r.output, UNSENDABLE_PROBLEMS);
    const lines = r.output.split('\n');
    for (const p of UNSENDABLE_PROBLEMS) {
      expect(lines.find((l) => l.includes(`${p.path}:`)), p.path).toMatch(p.message);
    }
  });

  it('check on a missing file exits 1', async () => {
    const r = await runCli(runtime, ['check', '/nonexistent/portcullis.yaml']);
    expect(r.code).toBe(1);
    expect(r.output).toContain('/nonexistent/portcullis.yaml');
  });

  it('schema prints a JSON Schema of closed objects', async () => {
    const r = await runCli(runtime, ['schema']);
    expect(r.code, r.stderr).toBe(0);
    const schema = JSON.parse(r.stdout) as {
      $schema: string;
      type: string;
      additionalProperties: unknown;
      properties: Record<string, { additionalProperties?: unknown }>;
    };
    expect(schema.$schema).toMatch(/2020-12/);
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    for (const key of ['listen', 'admin', 'upstream', 'connections', 'inflight', 'routes', 'reject', 'dryRun', 'telemetry', 'drain']) {
      expect(schema.properties, key).toHaveProperty(key);
    }
    expect(schema.properties.connections?.additionalProperties).toBe(false);
  });

  it('run with a bad config exits 1, lists the problems and never starts', async () => {
    const file = writeConfig(BAD_YAML, 'bad.yaml');
    const r = await runCli(runtime, ['run', '--config', file]);
    expect(r.code, r.output).toBe(1);
    expectProblems(r.output, BAD_PROBLEMS);
    expect(r.stdout).not.toContain('portcullis started');
  });

  it('--help for the program and for each command', async () => {
    const main = await runCli(runtime, ['--help']);
    expect(main.code).toBe(0);
    for (const cmd of ['run', 'check', 'schema']) expect(main.stdout).toContain(cmd);

    const run = await runCli(runtime, ['run', '--help']);
    expect(run.code).toBe(0);
    for (const flag of ['--config', '--upstream', '--port', '--admin-port']) expect(run.stdout).toContain(flag);
    expect(run.stdout).not.toContain('portcullis started');

    const check = await runCli(runtime, ['check', '--help']);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/check/);
    expect(check.stdout).toMatch(/FILE/);

    const schema = await runCli(runtime, ['schema', '--help']);
    expect(schema.code).toBe(0);
    expect(schema.stdout).toMatch(/schema/i);
    expect(() => JSON.parse(schema.stdout)).toThrow();
  });

  it('precedence: flags > environment > config file', async () => {
    const [pFile, pEnv, pFlag, aFile, aEnv, aFlag] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const uFile = 'http://127.0.0.1:3001';
    const uEnv = 'http://127.0.0.1:3002';
    const uFlag = 'http://127.0.0.1:3003';
    const file = {
      listen: { host: '127.0.0.1', port: pFile },
      admin: { host: '127.0.0.1', port: aFile },
      upstream: { url: uFile },
      drain: { delay: 0, timeout: 0 },
    };
    const env = { PORTCULLIS_PORT: String(pEnv), PORTCULLIS_ADMIN_PORT: String(aEnv), PORTCULLIS_UPSTREAM: uEnv };
    const flags = ['--port', String(pFlag), '--admin-port', String(aFlag), '--upstream', uFlag];

    const seen = async (sc: Awaited<ReturnType<typeof startSidecar>>) => {
      const c = await sc.config();
      const out = { port: sc.port, adminPort: sc.adminPort, upstream: c.config.upstream.url as string };
      expect((await sc.stop('SIGTERM', 10_000)).code).toBe(0);
      return out;
    };

    expect(await seen(await startSidecar({ runtime, config: file, env, args: flags }))).toEqual({
      port: pFlag,
      adminPort: aFlag,
      upstream: uFlag,
    });
    expect(await seen(await startSidecar({ runtime, config: file, env }))).toEqual({ port: pEnv, adminPort: aEnv, upstream: uEnv });
    expect(await seen(await startSidecar({ runtime, config: file }))).toEqual({ port: pFile, adminPort: aFile, upstream: uFile });
    // PORTCULLIS_CONFIG names the file when --config is absent.
    const viaEnv = await startSidecar({ runtime, env: { PORTCULLIS_CONFIG: writeConfig(file) } });
    expect(await seen(viaEnv)).toEqual({ port: pFile, adminPort: aFile, upstream: uFile });
  });
});
