/**
 * From config file text to the frozen `Config`: read the YAML (config-yaml.ts), put in
 * command-line and environment overrides (config-overrides.ts), validate with `configSchema`, and
 * report every problem at once with its path (`routes[2].inflight.max`) and, when it comes from
 * the file, its line and column; from an override, the flag or variable that set it.
 */
import type { z } from 'zod';
import { configJsonSchema, configSchema, limitRuleProblems, RESTART_ONLY, routeRuleProblems } from './config-schema.ts';
import type { Config } from './config-schema.ts';
import { describe, plainMessage } from './config-messages.ts';
import { withOverrides, type ConfigOverrides, type Overridden } from './config-overrides.ts';
import { formatPath, type ConfigPath } from './config-path.ts';
import { configVersion } from './config-version.ts';
import { locate, readYaml, type YamlFile } from './config-yaml.ts';
import { closest } from './did-you-mean.ts';
import { ConfigError } from './errors.ts';
import type { ConfigProblem } from './errors.ts';
import { deepEqual, deepFreeze, isRecord } from './objects.ts';

/** A validated config and what it was loaded from: what the sidecar runs and a reload replaces. */
export interface LoadedConfig {
  config: Config;
  /** Short content hash of the file text (see `configVersion`). */
  version: string;
  /** File path, or what stands for it ("defaults" when none was given). */
  source: string;
  loadedAt: Date;
}

/**
 * Parses and validates config text. Throws `ConfigError` listing every problem found.
 * `source` (the file path) is only used in messages.
 */
export function parseConfigText(text: string, source: string): LoadedConfig {
  return loadConfig(text, source);
}

/**
 * The whole load: `text` is the file content, or undefined when no file is given (all defaults).
 * Overrides beat the file. Throws `ConfigError` listing every problem found.
 */
export function loadConfig(text: string | undefined, source: string, overrides: ConfigOverrides = {}): LoadedConfig {
  const version = configVersion(text ?? '');
  let raw: unknown = {};
  let file: YamlFile | undefined;
  const problems: ConfigProblem[] = [];
  if (text !== undefined) {
    const read = readYaml(text);
    if (read.syntaxProblems.length > 0) throw new ConfigError(source, read.syntaxProblems);
    raw = read.raw;
    file = read.file;
    problems.push(...read.duplicateKeys);
  }
  const result = validate(withOverrides(raw, overrides), file);
  problems.push(...result.problems);
  if (result.value === undefined || problems.length > 0) throw new ConfigError(source, sortProblems(dedupe(problems)));
  const { $schema: _editorsOnly, ...config } = result.value;
  return { config: deepFreeze(config), version, source, loadedAt: new Date() };
}

/** Which restart-only top-level fields (`RESTART_ONLY`) differ between two configs. */
export function restartOnlyChanges(prev: Config, next: Config): (typeof RESTART_ONLY)[number][] {
  return RESTART_ONLY.filter((k) => !deepEqual(prev[k], next[k]));
}

type Where = Pick<ConfigProblem, 'path' | 'line' | 'column'>;

function validate(input: Overridden, file: YamlFile | undefined): { value?: z.output<typeof configSchema>; problems: ConfigProblem[] } {
  const { raw } = input;
  const result = configSchema.safeParse(raw, { error: plainMessage });
  if (result.success) return { value: result.data, problems: [] };
  // An overridden value has no place in the file: name the flag or variable instead.
  const where = (path: ConfigPath, at: 'key' | 'value' = 'value'): Where => {
    const from = input.originOf(path);
    if (from !== undefined) return { path: `${formatPath(path)} (from ${from})` };
    return { path: formatPath(path), ...locate(file, path, at) };
  };
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ ...where([...path, key], 'key'), message: unknownKeyMessage(key, path, valueAt(raw, path)) });
    } else if (path.length === 0 && issue.code === 'invalid_type') {
      problems.push({ path: '', message: `the top level must be a mapping of settings (key: value), got ${describe(raw)}`, ...locate(file, []) });
    } else {
      problems.push({ ...where(path, issue.code === 'invalid_key' ? 'key' : 'value'), message: issue.message });
    }
  }
  // zod skips refinements once any value is not an integer where one is needed; the route rules
  // are cheap and written for raw input, so make sure their problems are always reported.
  if (isRecord(raw)) {
    for (const p of routeRuleProblems(raw['routes'])) problems.push({ ...where(['routes', ...p.path]), message: p.message });
  }
  for (const p of limitRuleProblems(raw)) problems.push({ ...where(p.path), message: p.message });
  return { problems };
}

/** `value` is what the file holds at `parent`: it picks the branch of a mapping told apart by a key (`adaptive.algorithm`). */
function unknownKeyMessage(key: string, parent: ConfigPath, value: unknown): string {
  const { known, elsewhere } = knownKeys(parent, value);
  const other = elsewhere.get(key);
  if (other !== undefined) return `unknown key ${JSON.stringify(key)} (it belongs with ${other})`;
  const guess = closest(key, known);
  return `unknown key ${JSON.stringify(key)}${guess === undefined ? '' : ` (did you mean ${JSON.stringify(guess)}?)`}`;
}

let jsonSchema: Record<string, unknown> | undefined;

/**
 * The keys allowed at `path`, read from the JSON Schema (the schema stays the one source). Of a
 * mapping with one form per value of a key (`oneOf`, each with a `const`), the form `value`
 * has; `elsewhere` names, for the keys only other forms have, the key and value they need.
 */
function knownKeys(path: ConfigPath, value: unknown): { known: string[]; elsewhere: Map<string, string> } {
  jsonSchema ??= configJsonSchema();
  const elsewhere = new Map<string, string>();
  let node: unknown = jsonSchema;
  for (const seg of path) {
    node = objectBranch(node);
    if (!isRecord(node)) return { known: [], elsewhere };
    if (typeof seg === 'number') node = node['items'];
    else node = isRecord(node['properties']) ? node['properties'][seg] : undefined;
  }
  const forms = isRecord(node) && Array.isArray(node['oneOf']) ? node['oneOf'].filter(isRecord) : undefined;
  if (forms !== undefined) {
    const tag = (form: Record<string, unknown>) => discriminator(form);
    const mine = forms.find((f) => {
      const t = tag(f);
      return t !== undefined && isRecord(value) && value[t.key] === t.value;
    });
    for (const f of forms) {
      const t = tag(f);
      if (f === mine || t === undefined || !isRecord(f['properties'])) continue;
      for (const k of Object.keys(f['properties'])) {
        if (!(isRecord(mine?.['properties']) && k in mine['properties'])) elsewhere.set(k, `${t.key}: ${String(t.value)}`);
      }
    }
    node = mine;
  }
  node = objectBranch(node);
  const known = isRecord(node) && isRecord(node['properties']) ? Object.keys(node['properties']).filter((k) => k !== '$schema') : [];
  return { known, elsewhere };
}

/** The key whose `const` tells this form apart, and its value. */
function discriminator(form: Record<string, unknown>): { key: string; value: unknown } | undefined {
  const props = form['properties'];
  if (!isRecord(props)) return undefined;
  for (const [key, p] of Object.entries(props)) if (isRecord(p) && 'const' in p) return { key, value: p['const'] };
  return undefined;
}

function valueAt(raw: unknown, path: ConfigPath): unknown {
  let v = raw;
  for (const seg of path) {
    if (typeof seg === 'number') v = Array.isArray(v) ? v[seg] : undefined;
    else v = isRecord(v) ? v[seg] : undefined;
  }
  return v;
}

function objectBranch(node: unknown): unknown {
  if (!isRecord(node)) return undefined;
  const options = node['anyOf'];
  if (Array.isArray(options)) return options.find((o) => isRecord(o) && (o['properties'] !== undefined || o['items'] !== undefined));
  return node;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** File order; problems without a position (overrides, the whole file) first. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}
