/**
 * Starts the real portcullis process (Node: built dist/main.js; Deno: src/main.ts as is) on
 * ephemeral ports, reads its JSON-line log, and talks to its admin API. Every process started
 * here is killed by its own PID in `cleanup()` (wire it to afterEach), never by name.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DENO, denoRunArgs } from '../../scripts/deno-command.mjs';

export type Runtime = 'node' | 'deno';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const DIST_MAIN = join(ROOT, 'dist', 'main.js');
const SRC_MAIN = join(ROOT, 'src', 'main.ts');

/** Runtimes every e2e test runs against; PORTCULLIS_TEST_RUNTIMES=node (or deno) narrows it. */
export const RUNTIMES: Runtime[] = (() => {
  const all: Runtime[] = ['node', 'deno'];
  const want = process.env.PORTCULLIS_TEST_RUNTIMES?.split(/[\s,]+/).filter(Boolean);
  if (!want || want.length === 0) return all;
  const picked = all.filter((r) => want.includes(r));
  if (picked.length === 0) throw new Error(`PORTCULLIS_TEST_RUNTIMES=${process.env.PORTCULLIS_TEST_RUNTIMES} names no runtime (node, deno)`);
  return picked;
})();

/** The reasons a reject may carry (DESIGN.md, admission invariant 4). */
export const REASONS = [
  'connection_limit',
  'client_connection_limit',
  'inflight_limit',
  'client_inflight_limit',
  'queue_full',
  'queue_timeout',
  'draining',
] as const;

// ---------------------------------------------------------------------------------------------
// cleanup registry: sidecars, upstreams and sockets register how to get rid of themselves

type Cleanup = () => unknown;
const cleanups: Cleanup[] = [];
const children = new Set<ChildProcess>();

export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
}

/** Runs every registered cleanup, newest first; errors are collected, not lost. */
export async function cleanup(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    const fn = cleanups.pop() as Cleanup;
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
}

// If the worker dies (timeout, crash), do not leave our own children behind.
process.once('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

// ---------------------------------------------------------------------------------------------
// small utilities shared by the tests

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a truthy value (which is returned) or `timeoutMs` passes; then
 * throws with `what` and the last value seen. This is how tests wait for an invariant instead
 * of sleeping a guessed amount.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await check();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}; last: ${describe(last)}`);
    }
    await sleep(intervalMs);
  }
}

function describe(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  try {
    return JSON.stringify(v)?.slice(0, 2000) ?? String(v);
  } catch {
    return String(v);
  }
}

type Plain = Record<string, unknown>;
function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of plain objects (arrays and scalars from `patch` replace). */
export function merge<T extends Plain>(base: T, patch: Plain): T {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    out[k] = isPlain(cur) && isPlain(v) ? merge(cur, v) : v;
  }
  return out as T;
}

/** A config on ephemeral loopback ports pointing at `upstreamUrl`, with `patch` merged in. */
export function configFor(upstreamUrl: string, patch: Plain = {}): Plain {
  return merge(
    {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      upstream: { url: upstreamUrl },
      drain: { delay: 0, timeout: '2s' },
    },
    patch,
  );
}

// ---------------------------------------------------------------------------------------------
// building the Node entry point once, shared by parallel test workers

let built = false;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function isStale(): boolean {
  if (!existsSync(DIST_MAIN)) return true;
  return statSync(DIST_MAIN).mtimeMs < newestMtime(join(ROOT, 'src'));
}

/**
 * Builds dist/ with tsc when it is missing or older than src/ (PORTCULLIS_TEST_BUILD=0 skips).
 * Test files run in parallel workers, so the build is guarded by a lock directory.
 */
export async function ensureBuilt(): Promise<void> {
  if (built || process.env.PORTCULLIS_TEST_BUILD === '0') return;
  if (!existsSync(SRC_MAIN)) throw new Error(`${SRC_MAIN} does not exist yet: nothing to test`);
  const lock = join(tmpdir(), 'portcullis-e2e-build.lock');
  const deadline = Date.now() + 180_000;
  while (isStale()) {
    try {
      mkdirSync(lock);
    } catch {
      // Someone else builds; a lock older than 3 minutes is left over from a killed run.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for another worker to build dist/');
      await sleep(200);
      continue;
    }
    try {
      if (!isStale()) break;
      try {
        execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe', timeout: 170_000 });
      } catch (err) {
        const e = err as { stdout?: Buffer; stderr?: Buffer };
        throw new Error(`tsc -p tsconfig.json failed:\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`);
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  built = true;
}

// ---------------------------------------------------------------------------------------------
// processes

/** argv for running the CLI under `runtime` (arguments after the program). */
export async function command(runtime: Runtime, args: string[]): Promise<{ file: string; argv: string[] }> {
  if (runtime === 'node') {
    await ensureBuilt();
    return { file: process.execPath, argv: [DIST_MAIN, ...args] };
  }
  if (!existsSync(SRC_MAIN)) throw new Error(`${SRC_MAIN} does not exist yet: nothing to test`);
  return { file: DENO, argv: denoRunArgs(args) };
}

function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' };
  // The sidecar must see only what the test gives it.
  for (const k of Object.keys(env)) if (k.startsWith('PORTCULLIS_') && !k.startsWith('PORTCULLIS_TEST_')) delete env[k];
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  env.OTEL_SDK_DISABLED = 'true';
  env.OTEL_TRACES_EXPORTER = 'none';
  env.OTEL_METRICS_EXPORTER = 'none';
  return { ...env, ...extra };
}

let tmpRoot: string | undefined;
/** A fresh temp directory, removed on cleanup. */
export function tempDir(): string {
  tmpRoot ??= mkdtempSync(join(tmpdir(), 'portcullis-e2e-'));
  const dir = mkdtempSync(join(tmpRoot, 'c-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a config (object -> JSON file, string -> YAML file unless `name` says otherwise). */
export function writeConfig(config: object | string, name?: string): string {
  const file = join(tempDir(), name ?? (typeof config === 'string' ? 'portcullis.yaml' : 'portcullis.json'));
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return file;
}

export interface LogLine {
  msg?: string;
  level?: string;
  [k: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  runtime: Runtime;
  /** Config object (written as JSON) or YAML text; omit to pass no --config at all. */
  config?: object | string;
  /** Extra CLI arguments after `run --config FILE`. */
  args?: string[];
  env?: Record<string, string>;
  /** How long to wait for the "portcullis started" line. */
  startTimeoutMs?: number;
}

export interface Stats {
  connections: { open: number; max: number; evicted: number };
  limiters: Array<{
    name: string;
    kind: string;
    inflight: number;
    max: number;
    queued: number;
    queueSize: number;
    queueTimeout: number;
    peak: number;
    acquired: number;
    released: number;
    /** Only on adaptive limiters (issue 12). */
    adaptive?: { algorithm: string; min: number; max: number; minRttMs?: number; sampleRttMs?: number };
  }>;
  totals: {
    admitted: number;
    bypassed: number;
    rejected: number;
    /** dryRun: decisions that would have rejected. */
    wouldReject?: number;
    byReason: Record<string, number>;
  };
  draining: boolean;
}

export interface Sidecar {
  runtime: Runtime;
  port: number;
  adminPort: number;
  pid: number;
  url: string;
  configFile: string | undefined;
  started: LogLine;
  /** GET an admin path; body parsed as JSON when it is JSON. */
  admin(path: string): Promise<{ status: number; body: unknown; text: string }>;
  stats(): Promise<Stats>;
  config(): Promise<{ version: string; source: unknown; config: Record<string, any>; lastReload: unknown }>;
  /** Sends `signal` (SIGTERM by default) to this process and waits for it to exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Sends a signal without waiting. */
  kill(signal?: NodeJS.Signals): void;
  waitExit(timeoutMs?: number): Promise<Exit>;
  logs(): LogLine[];
  stdout(): string;
  stderr(): string;
  waitForLog(what: string, pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** /stats once every limiter is idle: nothing in flight or queued, every permit released. */
  settled(timeoutMs?: number): Promise<Stats>;
}

/**
 * A 'data' listener for a child's stdout (utf8) that splits it into JSON log lines: each whole
 * line parsed (a line that is not a JSON object is kept as `{ msg, unparsed: true }`), then
 * `after` once per chunk.
 */
export function jsonLines(onChunk: (chunk: string) => void, onLine: (line: LogLine) => void, after: () => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    onChunk(chunk);
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (!line) continue;
      try {
        const parsed: unknown = JSON.parse(line);
        onLine(isPlain(parsed) ? (parsed as LogLine) : { msg: line, raw: parsed });
      } catch {
        onLine({ msg: line, unparsed: true });
      }
    }
    after();
  };
}

/** Limiter by name from a /stats snapshot (throws when absent, so a typo cannot pass). */
export function limiter(stats: Stats, name: string): Stats['limiters'][number] {
  const l = stats.limiters.find((x) => x.name === name);
  if (!l) throw new Error(`no limiter ${name} in /stats: ${stats.limiters.map((x) => x.name).join(', ')}`);
  return l;
}

interface Proc {
  child: ChildProcess;
  out: string[];
  err: string[];
  lines: LogLine[];
  exit: Promise<Exit>;
  listeners: Set<() => void>;
}

function spawnTracked(file: string, argv: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(file, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const p: Proc = { child, out: [], err: [], lines: [], exit: undefined as never, listeners: new Set() };
  p.exit = new Promise<Exit>((res) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      res({ code, signal });
      for (const l of p.listeners) l();
    });
    child.once('error', (err) => {
      p.err.push(String(err));
      children.delete(child);
      res({ code: null, signal: null });
      for (const l of p.listeners) l();
    });
  });
  child.stdout!.setEncoding('utf8');
  child.stdout!.on(
    'data',
    jsonLines(
      (chunk) => p.out.push(chunk),
      (line) => p.lines.push(line),
      () => {
        for (const l of p.listeners) l();
      },
    ),
  );
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => p.err.push(chunk));
  return p;
}

function killHard(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`timed out after ${ms}ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startSidecar(options: StartOptions): Promise<Sidecar> {
  const configFile = options.config === undefined ? undefined : writeConfig(options.config);
  const args = ['run', ...(configFile ? ['--config', configFile] : []), ...(options.args ?? [])];
  const { file, argv } = await command(options.runtime, args);
  const proc = spawnTracked(file, argv, childEnv(options.env));
  const { child } = proc;
  onCleanup(async () => {
    killHard(child);
    await within(proc.exit, 5000, `pid ${child.pid} to exit after SIGKILL`);
  });

  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const dump = () =>
    `\n--- stdout ---\n${proc.out.join('').slice(-4000)}\n--- stderr ---\n${proc.err.join('').slice(-4000)}`;
  const started = await new Promise<LogLine>((res, rej) => {
    const timer = setTimeout(() => {
      proc.listeners.delete(check);
      killHard(child);
      rej(new Error(`${options.runtime} sidecar did not log "portcullis started" within ${startTimeoutMs}ms${dump()}`));
    }, startTimeoutMs);
    const check = () => {
      const line = proc.lines.find((l) => l.msg === 'portcullis started');
      if (line) {
        clearTimeout(timer);
        proc.listeners.delete(check);
        res(line);
      } else if (child.exitCode !== null || child.signalCode !== null) {
        clearTimeout(timer);
        proc.listeners.delete(check);
        rej(new Error(`${options.runtime} sidecar exited (code ${child.exitCode}, signal ${child.signalCode}) before starting${dump()}`));
      }
    };
    proc.listeners.add(check);
    proc.exit.then(check);
    check();
  });
  const port = Number(started.port);
  const adminPort = Number(started.adminPort);
  if (!(port > 0) || !(adminPort > 0)) throw new Error(`bad "portcullis started" line: ${JSON.stringify(started)}`);

  const admin = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body, text };
  };
  const stats = async () => {
    const r = await admin('/stats');
    if (r.status !== 200) throw new Error(`/stats answered ${r.status}: ${r.text}`);
    return r.body as Stats;
  };
  const waitExit = (timeoutMs = 30_000) => within(proc.exit, timeoutMs, `${options.runtime} sidecar pid ${child.pid} to exit`);

  const sidecar: Sidecar = {
    runtime: options.runtime,
    port,
    adminPort,
    pid: child.pid as number,
    url: `http://127.0.0.1:${port}`,
    configFile,
    started,
    admin,
    stats,
    async config() {
      const r = await admin('/config');
      if (r.status !== 200) throw new Error(`/config answered ${r.status}: ${r.text}`);
      return r.body as Awaited<ReturnType<Sidecar['config']>>;
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, signal);
    },
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      sidecar.kill(signal);
      return waitExit(timeoutMs);
    },
    waitExit,
    logs: () => proc.lines.slice(),
    stdout: () => proc.out.join(''),
    stderr: () => proc.err.join(''),
    waitForLog: (what, pred, timeoutMs = 5000) => waitFor(`log line: ${what}`, () => proc.lines.find(pred), { timeoutMs }),
    settled: (timeoutMs = 5000) =>
      waitFor(
        'every limiter idle with acquired == released',
        async () => {
          const s = await stats();
          const idle = s.limiters.every((l) => l.inflight === 0 && l.queued === 0 && l.acquired === l.released);
          return idle ? s : undefined;
        },
        { timeoutMs },
      ),
  };
  return sidecar;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together. */
  output: string;
}

/** Runs a CLI command to completion (killed after `timeoutMs`). */
export async function runCli(
  runtime: Runtime,
  args: string[],
  { env, timeoutMs = 20_000 }: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const { file, argv } = await command(runtime, args);
  const proc = spawnTracked(file, argv, childEnv(env));
  onCleanup(() => killHard(proc.child));
  const timer = setTimeout(() => killHard(proc.child), timeoutMs);
  const exit = await proc.exit;
  clearTimeout(timer);
  // Let the pipes drain after exit.
  await Promise.all([
    new Promise((r) => (proc.child.stdout!.readableEnded ? r(null) : proc.child.stdout!.once('end', r))),
    new Promise((r) => (proc.child.stderr!.readableEnded ? r(null) : proc.child.stderr!.once('end', r))),
  ]);
  const stdout = proc.out.join('');
  const stderr = proc.err.join('');
  return { ...exit, stdout, stderr, output: stdout + stderr };
}
