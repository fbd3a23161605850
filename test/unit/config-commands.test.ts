import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkCommand, schemaCommand } from '../../src/cli/config-commands.ts';
import { parseConfigText } from '../../src/core/config-load.ts';
import { configJsonSchema } from '../../src/core/config-schema.ts';

const root = new URL('../../', import.meta.url);
const readRepoFile = (path: string) => readFileSync(new URL(path, root), 'utf8');

describe('portcullis check / schema', () => {
  it('the bundled example validates', () => {
    const text = readRepoFile('examples/portcullis.yaml');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/portcullis.schema.json');
    const { config, version } = parseConfigText(text, 'examples/portcullis.yaml');
    expect(config.listen.port).toBe(8080);
    expect(config.admin.port).toBe(9901);
    expect(config.upstream.url).toBe('http://127.0.0.1:3000');
    expect(config.inflight.max).toBeLessThanOrEqual(50);
    expect(config.inflight.queue.size).toBeGreaterThan(0);
    expect(config.routes.map((r) => r.name).sort()).toEqual(['healthz', 'slow', 'uploads']);
    const uploads = config.routes.find((r) => r.name === 'uploads');
    expect(uploads?.match).toMatchObject({ prefix: '/upload', methods: ['POST', 'PUT'] });
    expect(uploads?.inflight?.queue.size).toBeGreaterThan(0);
    expect(config.routes.find((r) => r.name === 'slow')?.match.prefix).toBe('/slow');
    expect(config.routes.find((r) => r.name === 'healthz')).toMatchObject({ match: { exact: '/healthz' }, bypass: true });
    expect(checkCommand(text, 'examples/portcullis.yaml')).toEqual({
      exitCode: 0,
      output: `OK: examples/portcullis.yaml (version ${version}, 3 routes)\n`,
    });
  });

  it('check prints every problem on its own line, like nginx -t', () => {
    const result = checkCommand('routes:\n  - name: a\n    inflight:\n      max: -1\n  - name: a\n', 'p.yaml');
    expect(result).toEqual({
      exitCode: 1,
      output:
        'p.yaml:4:12: routes[0].inflight.max: must be >= 0, got -1\n' +
        'p.yaml:5:11: routes[1].name: duplicate route name "a" (also routes[0])\n' +
        'FAILED: p.yaml: 2 problems\n',
    });
    expect(checkCommand('', 'e.yaml').output).toBe(
      'e.yaml: (root): the file has no settings (it is empty or only comments); write {} to take every default\nFAILED: e.yaml: 1 problem\n',
    );
  });

  it('the committed schema/portcullis.schema.json is the generated one (npm run gen:schema)', () => {
    expect(readRepoFile('schema/portcullis.schema.json')).toBe(schemaCommand());
  });

  it('the schema is draft 2020-12, closed everywhere, with defaults and descriptions', () => {
    const schema = configJsonSchema();
    expect(schema['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
    const problems: string[] = [];
    const walk = (node: unknown, path: string, optional: boolean) => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as Record<string, unknown>;
      const properties = n['properties'] as Record<string, unknown> | undefined;
      if (properties !== undefined) {
        if (n['additionalProperties'] !== false) problems.push(`${path}: not closed`);
        const required = (n['required'] as string[] | undefined) ?? [];
        for (const [key, child] of Object.entries(properties)) {
          const c = child as Record<string, unknown>;
          if (typeof c['description'] !== 'string' && !optional) problems.push(`${path}.${key}: no description`);
          // Keys that have a default must say so; only optional match keys, route names, clientKey.header and adaptive (instead of max) have none.
          const hasDefault = 'default' in c;
          const mayLack =
            required.includes(key) ||
            path.includes('.match') ||
            key === '$schema' ||
            key === 'adaptive' ||
            (key === 'inflight' && path.includes('routes')) ||
            `${path}.${key}` === '.clientKey.header';
          if (!hasDefault && !mayLack) problems.push(`${path}.${key}: no default`);
          walk(child, `${path}.${key}`, optional || path.includes('.match'));
        }
      }
      if (n['items'] !== undefined) walk(n['items'], `${path}[]`, optional);
      for (const o of (n['anyOf'] as unknown[] | undefined) ?? []) walk(o, path, optional);
      for (const o of (n['oneOf'] as unknown[] | undefined) ?? []) walk(o, path, optional);
    };
    walk(schema, '', false);
    expect(problems).toEqual([]);
    const upstream = (schema['properties'] as Record<string, Record<string, unknown>>)['upstream'];
    expect((upstream?.['properties'] as Record<string, Record<string, unknown>>)['timeout']?.['default']).toBe('60s');
  });
});
