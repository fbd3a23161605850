/**
 * What a config load reports, the way the config tests read it: every problem, or `line:col
 * path: message` lines as an operator reads them.
 */
import { loadConfig } from '../../src/core/config-load.ts';
import type { ConfigOverrides } from '../../src/core/config-overrides.ts';
import { ConfigError } from '../../src/core/errors.ts';
import type { ConfigProblem } from '../../src/core/errors.ts';

/** The problems a load reports; fails the test when it loads fine. */
export function problemsOf(text: string | undefined, overrides: ConfigOverrides = {}): ConfigProblem[] {
  try {
    loadConfig(text, 'test.yaml', overrides);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

/** `line:col path: message`, the way an operator reads them. */
export function lines(text: string | undefined, overrides: ConfigOverrides = {}): string[] {
  return problemsOf(text, overrides).map((p) => `${p.line ?? '-'}:${p.column ?? '-'} ${p.path}: ${p.message}`);
}
