/**
 * Child processes for the injector and pod-simulation tests: spawned with a known environment,
 * JSON-line logs collected, killed by their own PID on cleanup (test/helpers/sidecar.ts registry).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { jsonLines, onCleanup } from '../helpers/sidecar.ts';

export interface Proc {
  child: ChildProcess;
  pid: number;
  logs: Record<string, unknown>[];
  output(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function startProcess(file: string, argv: string[], env: Record<string, string>, cwd: string): Proc {
  const child = spawn(file, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let out = '';
  const waiters = new Set<() => void>();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  child.stdout!.setEncoding('utf8').on(
    'data',
    jsonLines(
      (chunk) => (out += chunk),
      (line) => logs.push(line),
      () => {
        for (const w of waiters) w();
      },
    ),
  );
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    await exit;
  });
  return {
    child,
    pid: child.pid as number,
    logs,
    output: () => out,
    exit,
    waitForLog(pred, what, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = logs.find(pred);
          if (hit) {
            done();
            resolve(hit);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`process exited before logging ${what}:\n${out.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${what} within ${timeoutMs}ms:\n${out.slice(-3000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** The environment a child gets: ours without PORTCULLIS_* and OTEL_*, telemetry export off, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('PORTCULLIS_') || k.startsWith('OTEL_')) continue;
    env[k] = v;
  }
  return { ...env, OTEL_SDK_DISABLED: 'true', ...extra };
}
