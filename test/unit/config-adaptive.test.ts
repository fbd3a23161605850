/**
 * issue 12: `adaptive` instead of `max` in `inflight` and `routes[].inflight`: one form per
 * algorithm, every default resolved, and every mistake named with its path and value.
 */
import { describe, expect, it } from 'vitest';
import { checkCommand } from '../../src/cli/config-commands.ts';
import { loadConfig } from '../../src/core/config-load.ts';
import { configSchema } from '../../src/core/config-schema.ts';
import { lines } from '../helpers/config-problems.ts';

const load = (text: string) => loadConfig(text, 'test.yaml').config;

describe('adaptive: good configs', () => {
  it('gradient with every default: the output has adaptive and no max', () => {
    const c = load('inflight:\n  adaptive:\n    algorithm: gradient\n');
    expect(c.inflight).toEqual({
      adaptive: { algorithm: 'gradient', min: 4, max: 1000, initial: 20, tolerance: 1.25, backoff: 0.9, minRttWindow: 30_000 },
      perClient: 0,
      queue: { size: 0, timeout: 1000 },
    });
    expect('max' in c.inflight).toBe(false);
    expect(c.inflight.max).toBeUndefined();
  });

  it('aimd with every default', () => {
    expect(load('inflight: {adaptive: {algorithm: aimd}}').inflight.adaptive).toEqual({ algorithm: 'aimd', min: 4, max: 1000, initial: 20, backoff: 0.9, timeout: 5000 });
  });

  it('every parameter given, durations in ms, on a route too; perClient and the queue stay as they are', () => {
    const c = load(`
inflight:
  adaptive: { algorithm: gradient, min: 2, max: 50, initial: 10, tolerance: 2, backoff: 0.5, minRttWindow: 1m }
  perClient: 3
  queue: { size: 7, timeout: 2s }
routes:
  - name: api
    match: { prefix: /api }
    inflight:
      adaptive: { algorithm: aimd, min: 1, max: 9, initial: 1, backoff: 0.75, timeout: 250ms }
      queue: { size: 4 }
  - name: fixed
    inflight: { max: 5 }
`);
    expect(c.inflight).toEqual({
      adaptive: { algorithm: 'gradient', min: 2, max: 50, initial: 10, tolerance: 2, backoff: 0.5, minRttWindow: 60_000 },
      perClient: 3,
      queue: { size: 7, timeout: 2000 },
    });
    expect(c.routes[0]?.inflight).toEqual({
      adaptive: { algorithm: 'aimd', min: 1, max: 9, initial: 1, backoff: 0.75, timeout: 250 },
      perClient: 0,
      queue: { size: 4, timeout: 1000 },
    });
    expect(c.routes[1]?.inflight).toEqual({ max: 5, perClient: 0, queue: { size: 0, timeout: 1000 } });
  });

  it('min and initial default relative to max: max 10 alone is valid, max 2 pulls min and initial down', () => {
    expect(load('inflight: {adaptive: {algorithm: aimd, max: 10}}').inflight.adaptive).toMatchObject({ min: 4, max: 10, initial: 10 });
    expect(load('inflight: {adaptive: {algorithm: aimd, max: 2}}').inflight.adaptive).toMatchObject({ min: 2, max: 2, initial: 2 });
    expect(load('inflight: {adaptive: {algorithm: aimd, min: 30}}').inflight.adaptive).toMatchObject({ min: 30, max: 1000, initial: 30 });
  });

  it('without adaptive, max still defaults to 256', () => {
    expect(load('inflight: {queue: {size: 1}}').inflight).toEqual({ max: 256, perClient: 0, queue: { size: 1, timeout: 1000 } });
  });

  it('configSchema.parse (no loader) refuses max with adaptive too', () => {
    const r = configSchema.safeParse({ inflight: { max: 5, adaptive: { algorithm: 'gradient' } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['inflight.max', expect.stringContaining('cannot be given together with adaptive')],
    ]);
  });
});

describe('adaptive: bad configs name the path and the value', () => {
  it('max and adaptive together, globally and on a route, even when another value is invalid', () => {
    expect(lines('inflight:\n  max: 100\n  adaptive: {algorithm: gradient}\n  queue: {size: 1.5}\nroutes:\n  - name: r\n    inflight: {max: 3, adaptive: {algorithm: aimd}}\n')).toEqual([
      '2:8 inflight.max: cannot be given together with adaptive (a limiter has a fixed max or an adaptive limit between adaptive.min and adaptive.max): remove one, got 100',
      '4:17 inflight.queue.size: must be a whole number, got 1.5',
      '7:21 routes[0].inflight.max: cannot be given together with adaptive (a limiter has a fixed max or an adaptive limit between adaptive.min and adaptive.max): remove one, got 3',
    ]);
  });

  it('algorithm missing, unknown, or adaptive not a mapping', () => {
    expect(lines('inflight:\n  adaptive: {min: 3}\n')).toEqual(['2:13 inflight.adaptive.algorithm: is required: "gradient" or "aimd"']);
    expect(lines('inflight:\n  adaptive: {algorithm: vegas}\n')).toEqual(['2:25 inflight.adaptive.algorithm: must be "gradient" or "aimd", got "vegas"']);
    expect(lines('inflight:\n  adaptive: 5\n')).toEqual(['2:13 inflight.adaptive: must be a mapping with algorithm: gradient or aimd, got 5']);
  });

  it("another algorithm's key is named as such; a typo gets a suggestion", () => {
    expect(lines('inflight:\n  adaptive: {algorithm: gradient, timeout: 1s}\n')).toEqual(['2:35 inflight.adaptive.timeout: unknown key "timeout" (it belongs with algorithm: aimd)']);
    expect(lines('inflight:\n  adaptive: {algorithm: aimd, tolerance: 2}\n')).toEqual(['2:31 inflight.adaptive.tolerance: unknown key "tolerance" (it belongs with algorithm: gradient)']);
    expect(lines('inflight:\n  adaptive: {algorithm: gradient, tolerence: 2}\n')).toEqual(['2:35 inflight.adaptive.tolerence: unknown key "tolerence" (did you mean "tolerance"?)']);
  });

  it('out-of-range parameters', () => {
    expect(lines('inflight:\n  adaptive: {algorithm: gradient, min: 0, tolerance: 1, backoff: 1, minRttWindow: 0}\n')).toEqual([
      '2:40 inflight.adaptive.min: must be >= 1, got 0',
      '2:54 inflight.adaptive.tolerance: must be a number > 1, got 1',
      '2:66 inflight.adaptive.backoff: must be a number > 0 and < 1, got 1',
      '2:83 inflight.adaptive.minRttWindow: must be at least 1ms, got 0',
    ]);
    expect(lines('inflight:\n  adaptive: {algorithm: aimd, backoff: 0, timeout: soon, max: 1.5}\n')).toEqual([
      '2:40 inflight.adaptive.backoff: must be a number > 0 and < 1, got 0',
      '2:52 inflight.adaptive.timeout: must be a duration such as 500ms, 2s or 1m, or whole milliseconds, got "soon"',
      '2:63 inflight.adaptive.max: must be a whole number, got 1.5',
    ]);
  });

  it('min <= initial <= max, when given', () => {
    expect(lines('inflight:\n  adaptive: {algorithm: gradient, min: 50, max: 10}\n')).toEqual(['2:40 inflight.adaptive.min: must be <= adaptive.max (10), got 50']);
    expect(lines('routes:\n  - name: r\n    inflight:\n      adaptive: {algorithm: aimd, min: 5, initial: 3}\n')).toEqual([
      '4:52 routes[0].inflight.adaptive.initial: must be between adaptive.min (5) and adaptive.max (1000), got 3',
    ]);
    expect(lines('inflight:\n  adaptive: {algorithm: aimd, max: 10, initial: 11}\n')).toEqual([
      '2:49 inflight.adaptive.initial: must be between adaptive.min (4) and adaptive.max (10), got 11',
    ]);
  });
});

describe('portcullis check', () => {
  it('accepts adaptive limiters and shows each with its resolved parameters', () => {
    const text = 'inflight:\n  adaptive: {algorithm: gradient}\nroutes:\n  - name: api\n    inflight: {adaptive: {algorithm: aimd, max: 40, timeout: 2s}}\n  - name: plain\n    inflight: {max: 3}\n';
    const { version } = loadConfig(text, 'a.yaml');
    expect(checkCommand(text, 'a.yaml')).toEqual({
      exitCode: 0,
      output:
        `OK: a.yaml (version ${version}, 2 routes)\n` +
        '  global: adaptive gradient: limit 4..1000, starts at 20; tolerance 1.25, backoff 0.9, minRttWindow 30000ms\n' +
        '  route:api: adaptive aimd: limit 4..40, starts at 20; backoff 0.9, timeout 2000ms\n',
    });
  });

  it('prints the problems of a bad one', () => {
    const r = checkCommand('inflight: {max: 9, adaptive: {algorithm: aimd}}\n', 'b.yaml');
    expect(r.exitCode).toBe(1);
    expect(r.output).toContain('b.yaml:1:17: inflight.max: cannot be given together with adaptive');
  });
});
