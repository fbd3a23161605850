/**
 * values.schema.json is generated (scripts/gen-chart-schema.ts) from schema/portcullis.schema.json;
 * the committed file must be what the generator writes today.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { DEFAULTS_KEYS, chartValuesSchema, chartValuesSchemaText } from '../../scripts/gen-chart-schema.ts';
import { ROOT } from '../helpers/sidecar.ts';

const configText = readFileSync(join(ROOT, 'schema', 'portcullis.schema.json'), 'utf8');

describe('charts/portcullis/values.schema.json', () => {
  test('is up to date (regenerate: npm run gen:chart-schema)', () => {
    const committed = readFileSync(join(ROOT, 'charts', 'portcullis', 'values.schema.json'), 'utf8');
    expect(committed).toBe(chartValuesSchemaText(configText));
  });

  test('defaults carries the config schema of the same keys, bounds included, without upstream.url', () => {
    const config = JSON.parse(configText);
    const values = chartValuesSchema(config) as any;
    const defaults = values.properties.defaults;
    expect(Object.keys(defaults.properties)).toEqual([...DEFAULTS_KEYS]);
    expect(defaults.additionalProperties).toBe(false);
    const { default: _dflt, ...max } = config.properties.inflight.properties.max;
    expect(defaults.properties.inflight.properties.max).toEqual(max);
    expect(max).toMatchObject({ type: 'integer', minimum: 0 });
    expect(defaults.properties.connections.properties.onLimit.enum).toEqual(['reject', 'close']);
    expect(defaults.properties.upstream.properties.url).toBeUndefined();
    expect(JSON.stringify(defaults)).not.toContain('"default"');
  });

  test('every object in it is closed', () => {
    const open: string[] = [];
    const walk = (node: any, path: string) => {
      if (!node || typeof node !== 'object') return;
      if (node.type === 'object' && node.properties && node.additionalProperties !== false) open.push(path || '(root)');
      for (const [k, v] of Object.entries(node.properties ?? {})) walk(v, `${path}.${k}`);
      if (node.items) walk(node.items, `${path}[]`);
      for (const alt of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) walk(alt, path);
    };
    walk(JSON.parse(readFileSync(join(ROOT, 'charts', 'portcullis', 'values.schema.json'), 'utf8')), '');
    expect(open).toEqual([]);
  });
});
