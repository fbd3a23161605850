/**
 * From config file text to the frozen `Config`: parse YAML (JSON is YAML), apply command-line
 * and environment overrides, validate with `configSchema`, and report every problem at once with
 * its path (`routes[2].inflight.max`) and, when it comes from the file, its line and column.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { configJsonSchema, configSchema, RESTART_ONLY, routeRuleProblems } from './config-schema.ts';
import type { Config } from './config-schema.ts';
import { ConfigError } from './errors.ts';
import type { ConfigProblem } from './errors.ts';

export interface LoadedConfig {
  config: Config;
  /** Short content hash of the file text (see `configVersion`). */
  version: string;
}

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

type Path = readonly (string | number)[];

const OVERRIDE_TARGETS: Record<keyof ConfigOverrides, { path: [string, string]; flag: string; env: string }> = {
  upstream: { path: ['upstream', 'url'], flag: '--upstream', env: 'PORTCULLIS_UPSTREAM' },
  port: { path: ['listen', 'port'], flag: '--port', env: 'PORTCULLIS_PORT' },
  adminPort: { path: ['admin', 'port'], flag: '--admin-port', env: 'PORTCULLIS_ADMIN_PORT' },
};

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
  for (const key of Object.keys(OVERRIDE_TARGETS) as (keyof ConfigOverrides)[]) {
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
  return applyOverridesTracked(raw, overrides).raw;
}

function applyOverridesTracked(raw: unknown, overrides: ConfigOverrides): { raw: unknown; origins: Map<string, string> } {
  const origins = new Map<string, string>();
  if (!isRecord(raw)) return { raw, origins };
  const out: Record<string, unknown> = { ...raw };
  for (const key of Object.keys(OVERRIDE_TARGETS) as (keyof ConfigOverrides)[]) {
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
  return { raw: out, origins };
}

/** Digits become a number; anything else stays a string so validation reports it as given. */
function toPort(v: string | number): string | number {
  return typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
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
  let located: Located | undefined;
  const problems: ConfigProblem[] = [];
  if (text !== undefined) {
    const file = readYaml(text);
    if (file.syntaxProblems.length > 0) throw new ConfigError(source, file.syntaxProblems);
    raw = file.raw;
    located = file.located;
    problems.push(...file.duplicateKeys);
  }
  const { raw: withOverrides, origins } = applyOverridesTracked(raw, overrides);
  const result = validate(withOverrides, located, origins);
  problems.push(...result.problems);
  if (result.value === undefined || problems.length > 0) throw new ConfigError(source, sortProblems(dedupe(problems)));
  const { $schema: _editorsOnly, ...config } = result.value;
  return { config: deepFreeze(config), version };
}

/** Which restart-only top-level fields (`RESTART_ONLY`) differ between two configs. */
export function restartOnlyChanges(prev: Config, next: Config): (typeof RESTART_ONLY)[number][] {
  return RESTART_ONLY.filter((k) => !deepEqual(prev[k], next[k]));
}

/**
 * Short, stable hash of the config text: the top 48 bits of FNV-1a 64 over its UTF-8 bytes, as
 * 12 hex digits. Pure TypeScript so core needs no crypto module; it names versions, it does not
 * defend against anyone. Computed in two 32-bit halves: it runs over the whole file at every
 * poll, and BigInt arithmetic per byte held the event loop ~150 ms for a 1 MiB file (issue 10).
 */
export function configVersion(text: string): string {
  const bytes = new TextEncoder().encode(text);
  // hash = hi * 2^32 + lo, both int32; offset basis 0xcbf29ce484222325.
  let hi = 0xcbf29ce4 | 0;
  let lo = 0x84222325 | 0;
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i] as number;
    // hash * (2^40 + 0x1b3) mod 2^64, in small integers only: lo * 0x1b3 in 16-bit halves (the
    // carry goes to hi), and hash << 40 adds lo << 8 to hi.
    const low = (lo & 0xffff) * 0x1b3;
    const mid = (lo >>> 16) * 0x1b3 + (low >>> 16);
    hi = (Math.imul(hi, 0x1b3) + (mid >>> 16) + (lo << 8)) | 0;
    lo = (mid << 16) | (low & 0xffff);
  }
  // FNV's low bits mix poorly (bit 0 is the XOR of the bytes' bit 0), so keep the high ones.
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 16).toString(16).padStart(4, '0');
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// YAML

interface Located {
  doc: Document.Parsed;
  lines: LineCounter;
}

function readYaml(text: string): { raw: unknown; located: Located; syntaxProblems: ConfigProblem[]; duplicateKeys: ConfigProblem[] } {
  const lines = new LineCounter();
  // Duplicate keys are found below, with their path, rather than as a bare parser error.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const located = { doc, lines };
  const syntaxProblems: ConfigProblem[] = doc.errors.map((e) => ({
    path: '',
    message: `YAML syntax error: ${e.message}`,
    ...position(lines, e.pos[0]),
  }));
  if (syntaxProblems.length > 0) return { raw: undefined, located, syntaxProblems, duplicateKeys: [] };
  if (doc.contents === null) {
    return {
      raw: undefined,
      located,
      syntaxProblems: [{ path: '', message: 'the file has no settings (it is empty or only comments); write {} to take every default' }],
      duplicateKeys: [],
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { raw: undefined, located, syntaxProblems: [{ path: '', message: `YAML error: ${message}` }], duplicateKeys: [] };
  }
  return { raw, located, syntaxProblems: [], duplicateKeys: findDuplicateKeys(doc.contents, [], lines) };
}

function findDuplicateKeys(node: unknown, path: Path, lines: LineCounter): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (isMap(node)) {
    const seen = new Map<string, number | undefined>();
    for (const pair of node.items) {
      const key = scalarKey(pair.key);
      if (key === undefined) continue;
      const keyStart = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      if (seen.has(key)) {
        const first = seen.get(key);
        const firstLine = first === undefined ? undefined : lines.linePos(first).line;
        problems.push({
          path: formatPath([...path, key]),
          message: `duplicate key ${JSON.stringify(key)}${firstLine === undefined ? '' : ` (first at line ${firstLine})`}; the later one would silently win`,
          ...position(lines, keyStart),
        });
      } else seen.set(key, keyStart);
      problems.push(...findDuplicateKeys(pair.value, [...path, key], lines));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => problems.push(...findDuplicateKeys(item, [...path, i], lines)));
  }
  return problems;
}

function scalarKey(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

function position(lines: LineCounter, offset: number | undefined): { line?: number; column?: number } {
  if (offset === undefined) return {};
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

/**
 * Where `path` is in the file: the value's position, or the key's when `at` is 'key' or the value
 * is empty. When the path goes further than the file (a missing key), the deepest node found.
 */
function locate(located: Located | undefined, path: Path, at: 'key' | 'value' = 'value'): { line?: number; column?: number } {
  if (located === undefined) return {};
  const { doc, lines } = located;
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    let keyOffset: number | undefined;
    if (isMap(node)) {
      // The last one: with a duplicate key, the later value is the one that was validated.
      const pair = node.items.findLast((p) => scalarKey(p.key) === String(seg));
      if (pair === undefined) break;
      keyOffset = rangeStart(pair.key);
      next = pair.value;
      const last = i === path.length - 1;
      if ((last && at === 'key') || isEmptyNode(next)) {
        offset = keyOffset ?? offset;
        if (last) break;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
      if (next === undefined) break;
    } else break;
    node = next;
    const start = rangeStart(node);
    if (start !== undefined && !isEmptyNode(node)) offset = start;
  }
  return position(lines, offset);
}

function rangeStart(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

function isEmptyNode(node: unknown): boolean {
  if (node === null || node === undefined) return true;
  const range = isNode(node) ? node.range : undefined;
  return range !== undefined && range !== null && range[0] === range[1];
}

function isNode(node: unknown): node is YamlNode {
  return isScalar(node) || isMap(node) || isSeq(node) || isAlias(node);
}

// ---------------------------------------------------------------------------------------------
// Validation

function validate(
  raw: unknown,
  located: Located | undefined,
  origins: ReadonlyMap<string, string>,
): { value?: z.output<typeof configSchema>; problems: ConfigProblem[] } {
  const result = configSchema.safeParse(raw, { error: plainMessage });
  if (result.success) return { value: result.data, problems: [] };
  const problems: ConfigProblem[] = [];
  const where = (path: Path, at: 'key' | 'value' = 'value'): Pick<ConfigProblem, 'path' | 'line' | 'column'> => {
    const from = overrideOrigin(path, origins);
    if (from !== undefined) return { path: `${formatPath(path)} (from ${from})` };
    return { path: formatPath(path), ...locate(located, path, at) };
  };
  for (const issue of result.error.issues) {
    const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(path);
      for (const key of issue.keys) {
        const guess = closest(key, known);
        problems.push({
          ...where([...path, key], 'key'),
          message: `unknown key ${JSON.stringify(key)}${guess === undefined ? '' : ` (did you mean ${JSON.stringify(guess)}?)`}`,
        });
      }
    } else if (path.length === 0 && issue.code === 'invalid_type') {
      problems.push({ path: '', message: `the top level must be a mapping of settings (key: value), got ${describe(raw)}`, ...locate(located, []) });
    } else {
      problems.push({ ...where(path, issue.code === 'invalid_key' ? 'key' : 'value'), message: issue.message });
    }
  }
  // zod skips refinements once any value is not an integer where one is needed; the route rules
  // are cheap and written for raw input, so make sure their problems are always reported.
  if (isRecord(raw)) {
    for (const p of routeRuleProblems(raw['routes'])) problems.push({ ...where(['routes', ...p.path]), message: p.message });
  }
  return { problems };
}

function overrideOrigin(path: Path, origins: ReadonlyMap<string, string>): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const from = origins.get(pathKey(path.slice(0, n)));
    if (from !== undefined) return from;
  }
  return undefined;
}

function pathKey(path: Path): string {
  return JSON.stringify(path);
}

/** `routes[2].inflight.max`; keys that are not identifiers are quoted: `match.headers["x-id"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Messages for issues the schema leaves to zod's defaults ("Invalid input: expected string,
 * received number"): name the rule and the value in the file's terms. Schema messages win.
 */
function plainMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const got = `got ${describe(issue.input)}`;
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const expected: Record<string, string> = {
        object: 'a mapping (key: value)',
        array: 'a list',
        string: 'a string',
        boolean: 'true or false',
        number: 'a number',
        int: 'a whole number',
      };
      return `must be ${expected[issue.expected] ?? issue.expected}, ${got}`;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = small ? issue.minimum : issue.maximum;
      const cmp = small ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      const word = small ? 'at least' : 'at most';
      if (issue.origin === 'string') return `must be ${word} ${bound} character(s) long, ${got}`;
      if (issue.origin === 'array') return `must have ${word} ${bound} item(s), ${got}`;
      return `must be ${cmp} ${bound}, ${got}`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, ${got}`;
    case 'invalid_format':
      return issue.pattern !== undefined ? `must match ${issue.pattern}, ${got}` : `must be a valid ${issue.format}, ${got}`;
    case 'invalid_key':
      return issue.issues.map((i) => i.message).join('; ');
    case 'invalid_union':
      return `does not have any of the accepted forms, ${got}`;
    default:
      return undefined;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

let jsonSchema: Record<string, unknown> | undefined;

/** The keys allowed at `path`, read from the JSON Schema (the schema stays the one source). */
function knownKeys(path: Path): string[] {
  jsonSchema ??= configJsonSchema();
  let node: unknown = jsonSchema;
  for (const seg of path) {
    node = objectBranch(node);
    if (!isRecord(node)) return [];
    if (typeof seg === 'number') node = node['items'];
    else node = isRecord(node['properties']) ? node['properties'][seg] : undefined;
  }
  node = objectBranch(node);
  return isRecord(node) && isRecord(node['properties']) ? Object.keys(node['properties']).filter((k) => k !== '$schema') : [];
}

function objectBranch(node: unknown): unknown {
  if (!isRecord(node)) return undefined;
  const options = node['anyOf'];
  if (Array.isArray(options)) return options.find((o) => isRecord(o) && (o['properties'] !== undefined || o['items'] !== undefined));
  return node;
}

/** A known key that `key` is probably a typo of: same letters ignoring case, '_' and '-', or a small edit away. */
function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const same = known.find((k) => norm(k) === norm(key));
  if (same !== undefined) return same;
  const limit = key.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const k of known) {
    const d = editDistance(norm(key), norm(k));
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance counting a swap of two neighbours as one edit ("prot" -> "port"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return at(a.length, b.length);
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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
