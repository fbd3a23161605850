/**
 * What a reload does with new file content, decided without touching anything: unchanged,
 * invalid (keep running), or a config to apply in one step. Restart-only fields are never
 * applied live: the running values are kept and the change is named, for the log and /config.
 */
import { RESTART_ONLY, type Config } from './config-schema.ts';
import { loadConfig, restartOnlyChanges, type LoadedConfig } from './config-load.ts';
import type { ConfigOverrides } from './config-overrides.ts';
import { configVersion } from './config-version.ts';
import { ConfigError, formatProblems, type ConfigProblem } from './errors.ts';
import { deepFreeze } from './objects.ts';

export type ReloadPlan =
  | { result: 'unchanged'; version: string }
  | { result: 'invalid'; version: string; error: string; problems: readonly ConfigProblem[] }
  | { result: 'applied'; version: string; config: Config; restartRequired: readonly string[] };

/** What a plan is made against: the running config and its version. */
export type Running = Pick<LoadedConfig, 'config' | 'version'>;

/**
 * `text` is the new content, or an Error when the file could not be read (removed, `..data`
 * pointing nowhere): the running config stays in both failure cases.
 */
export function planReload(running: Running, text: string | Error, source: string, overrides: ConfigOverrides): ReloadPlan {
  if (text instanceof Error) {
    const problems = [{ path: '', message: `cannot read the file: ${text.message}` }];
    return { result: 'invalid', version: running.version, error: formatProblems(source, problems), problems };
  }
  const version = configVersion(text);
  if (version === running.version) return { result: 'unchanged', version };
  let next: Config;
  try {
    next = loadConfig(text, source, overrides).config;
  } catch (err) {
    if (err instanceof ConfigError) {
      return { result: 'invalid', version, error: formatProblems(source, err.problems), problems: err.problems };
    }
    throw err;
  }
  const restartRequired = restartOnlyChanges(running.config, next);
  if (restartRequired.length > 0) {
    const kept: Record<string, unknown> = { ...next };
    for (const k of RESTART_ONLY) kept[k] = running.config[k];
    next = deepFreeze(kept as Config);
  }
  return { result: 'applied', version, config: next, restartRequired };
}
