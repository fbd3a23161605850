/**
 * issue 12: global and route limiters get a FixedLimit or an AdaptiveLimit from the config, made
 * by the injected factory; a reload retunes the same algorithm in place, replaces it in the
 * limiter on a switch (fixed <-> adaptive, gradient <-> aimd) starting a busy limiter at its
 * current limit, and resizes a fixed max in place; nothing queued or in flight is dropped. Each
 * limiter's net change is reported once per reload; an algorithm's own moves as they happen.
 */
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/core/admission.ts';
import type { Decision, PendingDecision } from '../../src/core/admission.ts';
import type { Clock } from '../../src/core/clock.ts';
import { configSchema, type Config } from '../../src/core/config-schema.ts';
import { FixedLimit } from '../../src/core/limit-algorithm.ts';
import type { LimitListener, LimitSample } from '../../src/core/limit-algorithm.ts';
import type { LimitChanges } from '../../src/core/limit-log.ts';
import type { Limiter } from '../../src/core/limiter.ts';
import type { AdaptiveConfig, AdaptiveLimit, AdaptiveSnapshot, LimitChange } from '../../src/core/limits/adaptive.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

/** An adaptive limit the test can see into: how it was made, what it was told, and a limit it moves on demand. */
class Fake implements AdaptiveLimit {
  readonly wantsSamples = true;
  onChange: ((change: LimitChange) => void) | undefined = undefined;
  minRttMs: number | undefined = 7;
  sampleRttMs: number | undefined = 11;
  readonly samples: LimitSample[] = [];
  readonly retunes: AdaptiveConfig[] = [];
  limit: number;
  private listener: LimitListener | undefined;
  constructor(
    public config: AdaptiveConfig,
    readonly start: number | undefined,
  ) {
    this.limit = Math.min(config.max, Math.max(config.min, start ?? config.initial));
  }
  get algorithm() {
    return this.config.algorithm;
  }
  onSample(s: Readonly<LimitSample>): void {
    this.samples.push({ ...s });
  }
  listen(l: LimitListener | undefined): void {
    this.listener = l;
  }
  snapshot(): AdaptiveSnapshot {
    return { algorithm: this.algorithm, min: this.config.min, max: this.config.max, minRttMs: this.minRttMs, sampleRttMs: this.sampleRttMs };
  }
  retune(config: AdaptiveConfig): void {
    this.retunes.push(config);
    this.config = config;
    const to = Math.min(config.max, Math.max(config.min, this.limit));
    if (to !== this.limit) this.move(to, 'reload');
  }
  move(to: number, why: LimitChange['why'] = 'latency'): void {
    const from = this.limit;
    this.limit = to;
    this.listener?.limitChanged();
    this.onChange?.({ from, to, why });
  }
}

function harness(first: unknown) {
  const clock = new FakeClock();
  const made: Fake[] = [];
  const factory = (config: AdaptiveConfig, c: Clock, opts?: { start?: number }) => {
    expect(c).toBe(clock);
    const f = new Fake(config, opts?.start);
    made.push(f);
    return f;
  };
  const log: string[] = [];
  const changes: LimitChanges = {
    moved: (l, a, c) => log.push(`moved ${l} ${a} ${c.from}->${c.to} ${c.why}`),
    reloaded: (l, a, from, to) => log.push(`reload ${l} ${a} ${from}->${to}`),
  };
  const config = (c: unknown): Config => configSchema.parse(c);
  const adm = new Admission(config(first), { clock, adaptive: factory, changes });
  const limiter = (name: string) => [...adm.limiters()].find((l) => l.name === name) as Limiter;
  const admit = (path = '/r') => adm.admit({ method: 'GET', path, host: 'h', headers: {}, client: 'c' });
  const update = (c: unknown) => adm.update(config(c));
  return { clock, made, log, adm, limiter, admit, update };
}

const route = (inflight: unknown) => ({ routes: [{ name: 'r', match: { prefix: '/r' }, inflight }] });
const queue = { size: 5, timeout: '10s' };

describe('adaptive limits through admission and reload (issue 12)', () => {
  it('the config gives each limiter a FixedLimit or an AdaptiveLimit from the factory', () => {
    const h = harness({ inflight: { adaptive: { algorithm: 'gradient', initial: 9 } }, ...route({ max: 3 }) });
    expect(h.made.map((f) => [f.algorithm, f.start, f.limit])).toEqual([['gradient', undefined, 9]]);
    expect(h.limiter('global').adaptive).toBe(h.made[0]);
    expect(h.limiter('route:r').algorithm).toBeInstanceOf(FixedLimit);
    expect(h.limiter('global').snapshot()).toMatchObject({ max: 9, adaptive: { algorithm: 'gradient', min: 4, max: 1000, minRttMs: 7, sampleRttMs: 11 } });
    expect('adaptive' in h.limiter('route:r').snapshot()).toBe(false);
    // Starting up reports nothing.
    expect(h.log).toEqual([]);
  });

  it('a decision carries the limit in force and, from an adaptive reporter, what it has learnt', () => {
    const h = harness(route({ adaptive: { algorithm: 'aimd', initial: 5 } }));
    const f = h.made[0] as Fake;
    const d1 = h.admit() as Decision;
    expect(d1).toMatchObject({ decision: 'admitted', limiter: 'route:r', limit: 5, minRttMs: 7, sampleRttMs: 11 });
    f.move(6);
    f.minRttMs = 3;
    const d2 = h.admit() as Decision;
    expect(d2).toMatchObject({ limit: 6, minRttMs: 3 });
    // A fixed reporter has none.
    const d3 = h.admit('/other') as Decision;
    expect(d3).toMatchObject({ limiter: 'global', limit: 256, minRttMs: undefined, sampleRttMs: undefined });
  });

  it('fixed -> adaptive -> other algorithm -> fixed on a busy route: queued stay queued, permits stay counted, starts at the limit in force', async () => {
    const h = harness(route({ max: 2, queue }));
    const a = h.admit() as Decision;
    const b = h.admit() as Decision;
    const waiting = h.admit() as PendingDecision;
    expect(waiting.pending).toBe(true);
    const r = () => h.limiter('route:r');
    const snap = () => ({ inflight: r().inflight, queued: r().queued, max: r().max });

    h.update(route({ adaptive: { algorithm: 'gradient', min: 1, max: 50, initial: 30 }, queue }));
    const g = h.made[0] as Fake;
    expect(g.start).toBe(2);
    expect(r().adaptive).toBe(g);
    expect(snap()).toEqual({ inflight: 2, queued: 1, max: 2 });
    expect(h.log).toEqual(['reload route:r gradient 2->2']);

    // Same algorithm, new parameters: retuned in place, what it learnt kept; the clamp is the reload's change.
    h.update(route({ adaptive: { algorithm: 'gradient', min: 3, max: 50 }, queue }));
    expect(r().adaptive).toBe(g);
    expect(g.retunes).toHaveLength(1);
    // The raise lets the queued one in once the reload is applied.
    expect(snap()).toEqual({ inflight: 3, queued: 0, max: 3 });
    const admitted = await waiting.promise;
    expect(admitted?.decision).toBe('admitted');
    expect(h.log).toEqual(['reload route:r gradient 2->2', 'reload route:r gradient 2->3']);

    // gradient -> aimd: a new algorithm, starting where the old one stood.
    g.move(4);
    h.update(route({ adaptive: { algorithm: 'aimd', min: 1, max: 9, initial: 1 }, queue }));
    const m = h.made[1] as Fake;
    expect([m.algorithm, m.start, r().max, r().inflight]).toEqual(['aimd', 4, 4, 3]);
    // The old one no longer drives the limiter, nor the log.
    g.move(40);
    expect(r().max).toBe(4);

    // adaptive -> fixed below the count: nothing new until it falls.
    h.update(route({ max: 1, queue }));
    expect(r().algorithm).toBeInstanceOf(FixedLimit);
    expect(snap()).toEqual({ inflight: 3, queued: 0, max: 1 });
    expect(h.log.slice(2)).toEqual(['moved route:r gradient 3->4 latency', 'reload route:r aimd 4->4', 'reload route:r fixed 4->1']);
    const late = h.admit() as PendingDecision;
    expect(late.pending).toBe(true);
    a.grant?.release('success');
    b.grant?.release('success');
    expect(r().queued).toBe(1);
    admitted?.grant?.release('success');
    expect((await late.promise)?.decision).toBe('admitted');
    expect(snap()).toEqual({ inflight: 1, queued: 0, max: 1 });
    expect(h.made).toHaveLength(2);
  });

  it('an idle limiter switched to adaptive starts at initial; a fixed max change resizes in place', () => {
    const h = harness({ inflight: { max: 10 } });
    const global = h.limiter('global');
    const fixed = global.algorithm;
    h.update({ inflight: { max: 12 } });
    expect(global.algorithm).toBe(fixed);
    expect(global.max).toBe(12);
    h.update({ inflight: { adaptive: { algorithm: 'aimd', initial: 30 } } });
    expect((h.made[0] as Fake).start).toBeUndefined();
    expect(global.max).toBe(30);
    expect(h.limiter('global')).toBe(global);
    expect(h.log).toEqual(['reload global fixed 10->12', 'reload global aimd 12->30']);
  });

  it('samples of permits taken under the fixed limit are not fed to the adaptive one', () => {
    const h = harness({ inflight: { max: 5 } });
    const old = h.admit() as Decision;
    h.clock.advance(100);
    h.update({ inflight: { adaptive: { algorithm: 'gradient' } } });
    const fresh = h.admit() as Decision;
    h.clock.advance(30);
    old.grant?.release('success');
    fresh.grant?.release('dropped', { appDoneAt: h.clock.now() - 10, bodyDoneAt: undefined });
    expect((h.made[0] as Fake).samples).toEqual([{ rttMs: 20, inflightAtStart: 2, outcome: 'dropped' }]);
  });

  it('an adaptive route that is removed keeps its limiter (and its algorithm) until its requests are done', () => {
    const h = harness(route({ adaptive: { algorithm: 'aimd' } }));
    const d = h.admit() as Decision;
    const f = h.made[0] as Fake;
    h.update({});
    const retired = h.limiter('route:r');
    expect(retired.adaptive).toBe(f);
    d.grant?.release('success');
    expect(f.samples).toHaveLength(1);
    expect([...h.adm.limiters()].map((l) => l.name)).toEqual(['global']);
  });
});
