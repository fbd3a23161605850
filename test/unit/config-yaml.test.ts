import { describe, expect, it } from 'vitest';
import { locate, readYaml } from '../../src/core/config-yaml.ts';

/** `line:col` of a path in `text`, or '-' when it has none. */
function at(text: string, path: (string | number)[], where: 'key' | 'value' = 'value'): string {
  const { file, syntaxProblems } = readYaml(text);
  expect(syntaxProblems).toEqual([]);
  const p = locate(file, path, where);
  return p.line === undefined ? '-' : `${p.line}:${p.column}`;
}

describe('config YAML: reading', () => {
  it('gives the value, and no problems, for a good file (JSON too)', () => {
    expect(readYaml('listen:\n  port: 8080\n')).toMatchObject({ raw: { listen: { port: 8080 } }, syntaxProblems: [], duplicateKeys: [] });
    expect(readYaml('{"routes": [{"name": "a"}]}').raw).toEqual({ routes: [{ name: 'a' }] });
  });

  it('a syntax error has its line and column, and leaves no value', () => {
    const read = readYaml('listen:\n  port: 8080\n  host: a: b\n');
    expect(read.raw).toBeUndefined();
    expect(read.syntaxProblems).toEqual([
      { path: '', message: 'YAML syntax error: Nested mappings are not allowed in compact mappings', line: 3, column: 9 },
    ]);
  });

  it('an empty file is a problem of its own', () => {
    expect(readYaml('# only a comment\n').syntaxProblems).toEqual([
      { path: '', message: 'the file has no settings (it is empty or only comments); write {} to take every default' },
    ]);
  });

  it('too many aliases is a YAML error, not a hang', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${'bcdefghi'[i]}: &${'bcdefghi'[i]} [${`*${i === 0 ? 'a' : 'bcdefghi'[i - 1]}, `.repeat(10).slice(0, -2)}]`)].join('\n');
    const read = readYaml(bomb);
    expect(read.raw).toBeUndefined();
    expect(read.syntaxProblems[0]?.message).toMatch(/^YAML error: /);
  });

  it('duplicate keys are found at any depth, with the first one\'s line', () => {
    const read = readYaml('routes:\n  - name: a\n    name: b\nlisten: {}\nlisten: {}\n');
    expect(read.raw).toEqual({ routes: [{ name: 'b' }], listen: {} });
    expect(read.duplicateKeys).toEqual([
      { path: 'routes[0].name', message: 'duplicate key "name" (first at line 2); the later one would silently win', line: 3, column: 5 },
      { path: 'listen', message: 'duplicate key "listen" (first at line 4); the later one would silently win', line: 5, column: 1 },
    ]);
  });
});

describe('config YAML: where a path is', () => {
  const text = 'listen:\n  port: 8080\nroutes:\n  - name: a\n    inflight: { max: 1 }\n  - name: b\nempty:\n';

  it('the value, or the key when asked', () => {
    expect(at(text, ['listen', 'port'])).toBe('2:9');
    expect(at(text, ['listen', 'port'], 'key')).toBe('2:3');
    expect(at(text, ['routes', 0, 'inflight', 'max'])).toBe('5:22');
    expect(at(text, ['routes', 1, 'name'])).toBe('6:11');
  });

  it('an empty value points at its key', () => {
    expect(at(text, ['empty'])).toBe('7:1');
  });

  it('a path beyond the file: the deepest node found', () => {
    expect(at(text, ['listen', 'host'])).toBe('2:3');
    expect(at(text, ['routes', 5, 'name'])).toBe('4:3');
    expect(at(text, [])).toBe('1:1');
  });

  it('the later of duplicate keys, which is the value validated', () => {
    expect(at('listen:\n  port: 1\nlisten:\n  port: -1\n', ['listen', 'port'])).toBe('4:9');
  });

  it('follows aliases', () => {
    expect(at('base: &b { max: 3 }\ninflight: *b\n', ['inflight', 'max'])).toBe('1:17');
  });

  it('nothing without a file (defaults only)', () => {
    expect(locate(undefined, ['listen', 'port'])).toEqual({});
  });
});
