#!/usr/bin/env node
// How Deno runs portcullis, in one place: the `start` task of deno.json. Tests, the benchmark and
// the example script take the flags from here, so they run exactly what `deno task start` runs.
// As a script it prints the deno argv for `run ...ARGS`, one per line.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DENO = join(ROOT, 'node_modules', 'deno', 'deno');

/** ['run', ...flags, '<root>/src/main.ts', ...args] */
export function denoRunArgs(args = []) {
  const task = JSON.parse(readFileSync(join(ROOT, 'deno.json'), 'utf8')).tasks.start;
  const words = task.split(/\s+/).filter(Boolean);
  if (words[0] !== 'deno' || words[1] !== 'run' || words.at(-1) !== 'src/main.ts') {
    throw new Error(`deno.json tasks.start must read "deno run FLAGS src/main.ts", got ${JSON.stringify(task)}`);
  }
  return ['run', ...words.slice(2, -1), join(ROOT, 'src', 'main.ts'), ...args];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const a of denoRunArgs(process.argv.slice(2))) console.log(a);
}
