/**
 * Command-line and environment overrides of config values (DESIGN "Command line"): which ones
 * apply, and the raw file content with them put in, remembering which value came from where.
 */
import type { ConfigPath } from './config-path.ts';
import { isRecord } from './objects.ts';

/** A value that replaces one from the file, and where it came from (`--port`, `PORTCULLIS_PORT`). */
export interface ConfigOverride {
  value: string | number;
  from: string;
}

export interface ConfigOverrides {
  upstream?: ConfigOverride;
  port?: ConfigOverride;
  adminPort?: ConfigOverride;
}

/** The command-line flags that touch config; values as typed (strings), or numbers. */
export interface ConfigFlags {
  config?: string;
  upstream?: string;
  port?: string | number;
  adminPort?: string | number;
}

/** The raw content with overrides put in, and which flag or variable set a path (or a parent of it). */
export interface Overridden {
  raw: unknown;
  originOf(path: ConfigPath): string | undefined;
}

const OVERRIDE_TARGETS: Record<keyof ConfigOverrides, { path: [string, string]; flag: string; env: string }> = {
  upstream: { path: ['upstream', 'url'], flag: '--upstream', env: 'PORTCULLIS_UPSTREAM' },
  port: { path: ['listen', 'port'], flag: '--port', env: 'PORTCULLIS_PORT' },
  adminPort: { path: ['admin', 'port'], flag: '--admin-port', env: 'PORTCULLIS_ADMIN_PORT' },
};

const OVERRIDE_KEYS = Object.keys(OVERRIDE_TARGETS) as (keyof ConfigOverrides)[];

/**
 * Applies the precedence flags > environment (DESIGN "Command line"); the file and the defaults
 * come after, in `loadConfig`. `env` is passed in (process.env, Deno.env.toObject()) so this stays
 * free of runtime APIs. An empty environment variable counts as unset.
 */
export function resolveSettings(
  flags: ConfigFlags,
  env: Readonly<Record<string, string | undefined>>,
): { configPath: string | undefined; overrides: ConfigOverrides } {
  const fromEnv = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  const overrides: ConfigOverrides = {};
  for (const key of OVERRIDE_KEYS) {
    const target = OVERRIDE_TARGETS[key];
    const flag = flags[key];
    const envValue = fromEnv(target.env);
    if (flag !== undefined) overrides[key] = { value: flag, from: target.flag };
    else if (envValue !== undefined) overrides[key] = { value: envValue, from: target.env };
  }
  return { configPath: flags.config ?? fromEnv('PORTCULLIS_CONFIG'), overrides };
}

/**
 * Returns a copy of the raw (unvalidated) file content with the overrides put in, so that a bad
 * override is validated and reported like a bad file value. The input is not modified.
 */
export function applyOverrides(raw: unknown, overrides: ConfigOverrides): unknown {
  return withOverrides(raw, overrides).raw;
}

/** `applyOverrides`, also telling which path each override set, for messages. */
export function withOverrides(raw: unknown, overrides: ConfigOverrides): Overridden {
  const origins = new Map<string, string>();
  const originOf = (path: ConfigPath) => {
    for (let n = path.length; n > 0; n--) {
      const from = origins.get(pathKey(path.slice(0, n)));
      if (from !== undefined) return from;
    }
    return undefined;
  };
  if (!isRecord(raw)) return { raw, originOf };
  const out: Record<string, unknown> = { ...raw };
  for (const key of OVERRIDE_KEYS) {
    const o = overrides[key];
    if (o === undefined) continue;
    const [section, field] = OVERRIDE_TARGETS[key].path;
    const current = out[section];
    // A section that is there but not an object stays as it is, to be reported as written.
    if (current !== undefined && !isRecord(current)) continue;
    const value = key === 'upstream' ? o.value : toPort(o.value);
    out[section] = { ...current, [field]: value };
    origins.set(pathKey([section, field]), o.from);
  }
  return { raw: out, originOf };
}

function pathKey(path: ConfigPath): string {
  return JSON.stringify(path);
}

/** Digits become a number; anything else stays a string so validation reports it as given. */
function toPort(v: string | number): string | number {
  return typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
}
