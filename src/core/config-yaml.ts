/**
 * The YAML side of loading (JSON is YAML): text to a raw value, syntax problems and duplicate
 * keys with their line and column, and where in the file a given path is.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { formatPath, type ConfigPath } from './config-path.ts';
import type { ConfigProblem } from './errors.ts';

/** A parsed file kept for `locate`: the document and its line index. */
export interface YamlFile {
  doc: Document.Parsed;
  lines: LineCounter;
}

export interface YamlRead {
  /** The file's value; undefined when there are syntax problems. */
  raw: unknown;
  file: YamlFile;
  /** Problems that leave nothing to validate (syntax, an empty file). */
  syntaxProblems: ConfigProblem[];
  /** Reported along with validation: the later value is the one validated. */
  duplicateKeys: ConfigProblem[];
}

export type Position = Pick<ConfigProblem, 'line' | 'column'>;

export function readYaml(text: string): YamlRead {
  const lines = new LineCounter();
  // Duplicate keys are found below, with their path, rather than as a bare parser error.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const file = { doc, lines };
  const failed = (syntaxProblems: ConfigProblem[]): YamlRead => ({ raw: undefined, file, syntaxProblems, duplicateKeys: [] });
  if (doc.errors.length > 0) {
    return failed(doc.errors.map((e) => ({ path: '', message: `YAML syntax error: ${e.message}`, ...position(lines, e.pos[0]) })));
  }
  if (doc.contents === null) {
    return failed([{ path: '', message: 'the file has no settings (it is empty or only comments); write {} to take every default' }]);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return failed([{ path: '', message: `YAML error: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  return { raw, file, syntaxProblems: [], duplicateKeys: findDuplicateKeys(doc.contents, [], lines) };
}

function findDuplicateKeys(node: unknown, path: ConfigPath, lines: LineCounter): ConfigProblem[] {
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

/**
 * Where `path` is in the file: the value's position, or the key's when `at` is 'key' or the value
 * is empty. When the path goes further than the file (a missing key), the deepest node found.
 */
export function locate(file: YamlFile | undefined, path: ConfigPath, at: 'key' | 'value' = 'value'): Position {
  if (file === undefined) return {};
  const { doc, lines } = file;
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    if (isMap(node)) {
      // The last one: with a duplicate key, the later value is the one that was validated.
      const pair = node.items.findLast((p) => scalarKey(p.key) === String(seg));
      if (pair === undefined) break;
      next = pair.value;
      const last = i === path.length - 1;
      if ((last && at === 'key') || isEmptyNode(next)) {
        offset = rangeStart(pair.key) ?? offset;
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

function position(lines: LineCounter, offset: number | undefined): Position {
  if (offset === undefined) return {};
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

function scalarKey(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
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
