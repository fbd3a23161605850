/**
 * The slow-client meter (issue 10, item 4), sampled by hand: only time the client is waited for
 * counts, the rate is enforced after the grace, the inactivity timeout resets on progress, and
 * either limit is off at 0. Also the shared ticker's period.
 */
import { describe, expect, it } from 'vitest';
import { DataRateMeter, type DataRateLimits } from '../../src/core/data-rate.ts';
import { tickInterval } from '../../src/proxy/slow-clients.ts';

const LIMITS: DataRateLimits = { timeout: 3000, bytesPerSecond: 100, grace: 2000 };

/** Samples once a second: `steps` are [bytes moved in that second, client waited for]. */
function run(steps: Array<[number, boolean]>, limits: DataRateLimits = LIMITS): Array<string | undefined> {
  const m = new DataRateMeter();
  let total = 0;
  m.sample(total, false, 0, limits);
  return steps.map(([bytes, waiting]) => {
    total += bytes;
    return m.sample(total, waiting, 1000, limits);
  });
}

describe('DataRateMeter', () => {
  it('issue 10: a client under the rate is cut once the time it was waited for passes the grace', () => {
    expect(run([[10, true], [10, true], [10, true]])).toEqual([undefined, undefined, 'min_rate']);
  });

  it('issue 10: a client at the rate is not cut', () => {
    expect(run(Array.from({ length: 20 }, () => [100, true] as [number, boolean]))).toEqual(Array(20).fill(undefined));
  });

  it('issue 10: time the client is not waited for (app, backpressure) counts neither for time nor for the timeout', () => {
    // Ten seconds with nothing moving, but the client was not the one waited for.
    const steps: Array<[number, boolean]> = [...Array.from({ length: 10 }, () => [0, false] as [number, boolean]), [300, true], [0, true]];
    expect(run(steps)).toEqual(Array(12).fill(undefined));
  });

  it('issue 10: the inactivity timeout counts waited time since the last byte', () => {
    const off = { ...LIMITS, bytesPerSecond: 0 };
    expect(run([[5, true], [0, true], [0, true], [1, true], [0, true], [0, true], [0, true]], off)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'timeout',
    ]);
    // Not waited for in between: the stall starts over.
    expect(run([[0, true], [0, true], [0, false], [0, true], [0, true]], off)).toEqual(Array(5).fill(undefined));
  });

  it('issue 10: both limits off means never cut', () => {
    expect(run(Array.from({ length: 100 }, () => [0, true] as [number, boolean]), { timeout: 0, bytesPerSecond: 0, grace: 0 })).toEqual(
      Array(100).fill(undefined),
    );
  });

  it('issue 10: bytes before the first measurable sample are not credited', () => {
    const rateOnly = { ...LIMITS, timeout: 0 };
    const m = new DataRateMeter();
    expect(m.sample(undefined, true, 1000, rateOnly)).toBeUndefined();
    // First real sample: a socket that already carried 1 MB of an earlier response is only the baseline.
    m.sample(1_000_000, true, 1000, rateOnly);
    m.sample(1_000_000, true, 1000, rateOnly);
    expect(m.sample(1_000_000, true, 1000, rateOnly)).toBe('min_rate');
  });
});

describe('tickInterval', () => {
  const base = { bodyTimeout: 60_000, bodyMinRate: { bytesPerSecond: 240, grace: 5000 }, sendTimeout: 60_000, sendMinRate: { bytesPerSecond: 240, grace: 5000 } };
  it('is 1 s at the defaults, a quarter of the shortest limit below that, never under 50 ms', () => {
    expect(tickInterval(base)).toBe(1000);
    expect(tickInterval({ ...base, sendMinRate: { bytesPerSecond: 240, grace: 500 } })).toBe(125);
    expect(tickInterval({ ...base, bodyTimeout: 100 })).toBe(50);
    // A grace whose rate is off does not count.
    expect(tickInterval({ ...base, bodyMinRate: { bytesPerSecond: 0, grace: 100 } })).toBe(1000);
    expect(tickInterval({ bodyTimeout: 0, bodyMinRate: { bytesPerSecond: 0, grace: 0 }, sendTimeout: 0, sendMinRate: { bytesPerSecond: 0, grace: 0 } })).toBe(1000);
  });
});
