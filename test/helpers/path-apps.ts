/**
 * The two kinds of real app the path tests (issue 10) put behind portcullis, each a child process
 * on an ephemeral 127.0.0.1 port: a real aiohttp app (routes on the percent-decoded path) and a
 * WHATWG-URL app (routes on `new URL(req.url, base).pathname`). Both speak the protocol of
 * test/fixtures/aiohttp-app.py; every child is killed by its own PID on cleanup.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, onCleanup } from './sidecar.ts';

export type PathAppKind = 'aiohttp' | 'whatwg';

export interface PathAppState {
  slowCount: number;
  slowCurrent: number;
  slowPeak: number;
  /** Every request the app routed: which handler ran, the target it got, the path it routed on. */
  seen: Array<{ route: string; target: string; path: string }>;
}

export interface PathApp {
  kind: PathAppKind;
  port: number;
  url: string;
  state(): Promise<PathAppState>;
  /** Lets the held /slow request (and every later one) finish. */
  release(): Promise<void>;
}

/** aiohttp is installed by scripts/test; a machine without it skips the aiohttp half. */
export const HAS_AIOHTTP = (() => {
  try {
    execFileSync('python3', ['-c', 'import aiohttp'], { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
})();

export async function startPathApp(kind: PathAppKind): Promise<PathApp> {
  const [file, args] =
    kind === 'aiohttp'
      ? ['python3', [join(ROOT, 'test', 'fixtures', 'aiohttp-app.py')]]
      : [process.execPath, [join(ROOT, 'test', 'fixtures', 'whatwg-app.mjs')]];
  const child = spawn(file, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<void>((r) => child.once('exit', () => r()));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    await exit;
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} app did not start in 20s: ${out}${err}`)), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /\{"port": ?(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${kind} app exited (${code}) before listening: ${out}${err}`));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    kind,
    port,
    url: base,
    async state() {
      const r = await fetch(`${base}/_test/state`, { signal: AbortSignal.timeout(5000) });
      return (await r.json()) as PathAppState;
    },
    async release() {
      const r = await fetch(`${base}/_test/release`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      await r.text();
    },
  };
}
