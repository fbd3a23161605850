/**
 * The app with a real capacity (test/fixtures/capacity-app.mjs) in its own process, as the
 * benchmark runs it: its timers then do not share an event loop with the test's load generator.
 * Stopped (SIGKILL) on cleanup, or earlier with `kill()`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CapacityStats } from '../fixtures/capacity-app.mjs';
import { ROOT, onCleanup } from './sidecar.ts';

export interface CapacityAppProcess {
  port: number;
  url: string;
  /** POST /__capacity?slots=N; resolves the app's stats right after the change. */
  setSlots(n: number): Promise<CapacityStats>;
  stats(): Promise<CapacityStats>;
  kill(): void;
}

export async function startCapacityAppProcess(options: { slots: number; holdMs: number; shedAfterMs?: number }): Promise<CapacityAppProcess> {
  const args = ['--port', '0', '--slots', String(options.slots), '--hold-ms', String(options.holdMs)];
  if (options.shedAfterMs !== undefined) args.push('--shed-after-ms', String(options.shedAfterMs));
  const child = spawn(process.execPath, [join(ROOT, 'test', 'fixtures', 'capacity-app.mjs'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  onCleanup(async () => {
    kill();
    await exited;
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`capacity app exited ${code} before it printed its port`)));
  });
  const started = JSON.parse(line) as { msg: string; port: number; slots: number };
  if (started.msg !== 'capacity app started' || started.slots !== options.slots) throw new Error(`unexpected first line of the capacity app: ${line}`);
  const url = `http://127.0.0.1:${started.port}`;
  return {
    port: started.port,
    url,
    async setSlots(n) {
      const res = await fetch(`${url}/__capacity?slots=${n}`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      if (res.status !== 200) throw new Error(`POST /__capacity?slots=${n}: ${res.status} ${await res.text()}`);
      return (await res.json()) as CapacityStats;
    },
    async stats() {
      return (await (await fetch(`${url}/__stats`, { signal: AbortSignal.timeout(5000) })).json()) as CapacityStats;
    },
    kill,
  };
}
