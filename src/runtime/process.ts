/** Process-level runtime facts: which runtime, signals, output. node:process serves both runtimes. */
import process from 'node:process';

export type RuntimeName = 'node' | 'deno';

export function runtimeName(): RuntimeName {
  return 'Deno' in globalThis ? 'deno' : 'node';
}

export function runtimeVersion(): string {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  return deno ? deno.version.deno : process.versions.node;
}

export function onSignals(signals: readonly NodeJS.Signals[], handler: (signal: NodeJS.Signals) => void): void {
  for (const s of signals) process.on(s, () => handler(s));
}

/**
 * Last resort for a throw nothing caught (an exception or a rejected promise): `handler` is told
 * and the process goes on. Installing the listener is what keeps it alive on Node and Deno.
 */
export function onUncaught(handler: (err: unknown) => void): void {
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
}

export function writeStdout(text: string): void {
  process.stdout.write(text);
}

export function writeStderr(text: string): void {
  process.stderr.write(text);
}

export function environment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

export function argv(): string[] {
  return process.argv.slice(2);
}

export function exit(code: number): never {
  process.exit(code);
}
