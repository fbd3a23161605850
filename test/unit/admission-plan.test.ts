import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/core/admission.ts';
import type { Decision, PendingDecision } from '../../src/core/admission.ts';
import { LimiterSet } from '../../src/core/admission-plan.ts';
import type { Plan } from '../../src/core/admission-plan.ts';
import { configSchema } from '../../src/core/config-schema.ts';
import type { Config } from '../../src/core/config-schema.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

const cfg = (o: Record<string, unknown>): Config => configSchema.parse(o);

function compile(o: Record<string, unknown>) {
  const config = cfg(o);
  const set = new LimiterSet(config, new FakeClock());
  return { set, plan: set.apply(config) };
}

/** A plan as names: its slots in check order, what it reports, which queues a release wakes. */
function shape(p: Plan) {
  return {
    route: p.routeName,
    bypass: p.bypass !== undefined,
    slots: p.slots.map((s) => `${s.family === undefined ? 'limiter' : 'per-client'} ${s.name}`),
    reporter: p.reporter.name,
    queues: p.queues.map((l) => l.name),
    single: p.single,
  };
}

describe('admission plan compiler', () => {
  it('global only: one fixed slot, whose permit is the grant', () => {
    const { plan } = compile({ inflight: { max: 4 } });
    expect(shape(plan.none)).toEqual({ route: undefined, bypass: false, slots: ['limiter global'], reporter: 'global', queues: ['global'], single: true });
    expect(plan.routes).toEqual([]);
  });

  it('a route with inflight: the route limiter before global; a route without inflight: global only', () => {
    const { plan } = compile({
      inflight: { max: 4 },
      routes: [
        { name: 'a', match: { prefix: '/a' }, inflight: { max: 2 } },
        { name: 'open', match: { prefix: '/o' } },
      ],
    });
    expect(plan.routes.map(shape)).toEqual([
      { route: 'a', bypass: false, slots: ['limiter route:a', 'limiter global'], reporter: 'route:a', queues: ['route:a', 'global'], single: false },
      { route: 'open', bypass: false, slots: ['limiter global'], reporter: 'global', queues: ['global'], single: true },
    ]);
    expect(shape(plan.none).slots).toEqual(['limiter global']);
  });

  it('global perClient: the client family first, in every plan', () => {
    const { plan } = compile({ inflight: { max: 4, perClient: 1 }, routes: [{ name: 'a', match: { prefix: '/a' }, inflight: { max: 2 } }] });
    expect(shape(plan.none)).toMatchObject({ slots: ['per-client client', 'limiter global'], queues: ['global'], single: false });
    expect(shape(plan.routes[0] as Plan).slots).toEqual(['per-client client', 'limiter route:a', 'limiter global']);
  });

  it('route perClient: client, route-client, route, global; other plans untouched', () => {
    const { plan } = compile({
      inflight: { max: 4, perClient: 2 },
      routes: [
        { name: 'up', match: { prefix: '/up' }, inflight: { max: 2, perClient: 1 } },
        { name: 'b', match: { prefix: '/b' }, inflight: { max: 2 } },
      ],
    });
    expect(shape(plan.routes[0] as Plan)).toEqual({
      route: 'up',
      bypass: false,
      slots: ['per-client client', 'per-client route:up:client', 'limiter route:up', 'limiter global'],
      reporter: 'route:up',
      queues: ['route:up', 'global'],
      single: false,
    });
    expect(shape(plan.routes[1] as Plan).slots).toEqual(['per-client client', 'limiter route:b', 'limiter global']);
  });

  it('bypass: no slots, one frozen decision', () => {
    const { plan } = compile({ inflight: { max: 0, perClient: 1 }, routes: [{ name: 'probes', match: { exact: '/healthz' }, bypass: true }] });
    const p = plan.routes[0] as Plan;
    expect(shape(p)).toMatchObject({ route: 'probes', bypass: true, slots: [], queues: [] });
    expect(p.bypass).toMatchObject({ decision: 'bypassed', route: 'probes', grant: undefined });
    expect(Object.isFrozen(p.bypass)).toBe(true);
  });

  it('a reload recompiles over the same limiters: kept by name, resized in place; a removed route is retired while busy', () => {
    const { set, plan } = compile({ inflight: { max: 4 }, routes: [{ name: 'a', match: { prefix: '/a' }, inflight: { max: 2, queue: { size: 1, timeout: 1000 } } }] });
    const routeA = (plan.routes[0] as Plan).routeLimiter;
    const permit = routeA?.tryAcquire();
    const next = set.apply(cfg({ inflight: { max: 8, perClient: 3 }, routes: [{ name: 'a', match: { prefix: '/a' }, inflight: { max: 5 } }] }));
    expect((next.routes[0] as Plan).routeLimiter).toBe(routeA);
    expect(routeA?.max).toBe(5);
    expect(next.none.slots.at(-1)?.limiter).toBe(set.global);
    expect(shape(next.none).slots).toEqual(['per-client client', 'limiter global']);
    // Route gone: no longer planned, still listed and woken while it holds a permit.
    const gone = set.apply(cfg({ inflight: { max: 8 } }));
    expect(gone.routes).toEqual([]);
    expect([...set.all()].map((l) => l.name)).toEqual(['global', 'route:a']);
    expect(set.queues().map((l) => l.name)).toEqual(['global', 'route:a']);
    permit?.release();
    expect([...set.all()].map((l) => l.name)).toEqual(['global']);
  });

  it('an invalid config changes nothing', () => {
    const { set } = compile({ inflight: { max: 4 } });
    // Past the schema: a route limit the limiter refuses, after a valid global one.
    const good = cfg({ inflight: { max: 2 }, routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1 } }] });
    const route = good.routes[0] as (typeof good.routes)[0];
    const bad = { ...good, routes: [{ ...route, inflight: { ...(route.inflight as NonNullable<typeof route.inflight>), max: 1.5 } }] };
    expect(() => set.apply(bad)).toThrow(/route:r: max must be a whole number/);
    expect(set.global.max).toBe(4);
    expect([...set.all()].map((l) => l.name)).toEqual(['global']);
  });

  it('a queued request keeps its route limiter across a reload, but its per-client slots follow the new config', async () => {
    const base = { inflight: { max: 10 }, routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, queue: { size: 5, timeout: 1000 } } }] };
    const a = new Admission(cfg(base), { clock: new FakeClock() });
    const req = (path: string, client: string) => ({ method: 'GET', path, host: 'h', headers: {}, client });
    const first = a.admit(req('/r', 'c1')) as Decision;
    const waiting = a.admit(req('/r', 'c2')) as PendingDecision;
    expect(waiting.pending).toBe(true);
    a.update(cfg({ ...base, inflight: { max: 10, perClient: 1 } }));
    // c2 is now at its client cap, so when the route frees up its queued request is refused.
    expect((a.admit(req('/other', 'c2')) as Decision).decision).toBe('admitted');
    first.grant?.release();
    expect(await waiting.promise).toMatchObject({ decision: 'rejected', reason: 'client_inflight_limit', limiter: 'client', route: 'r', status: 429 });
  });
});
