import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/core/admission.ts';
import type { Decision, PendingDecision, RequestInfo } from '../../src/core/admission.ts';
import { FakeClock } from '../helpers/fake-clock.ts';
import { configSchema } from '../../src/core/config-schema.ts';
import type { Config } from '../../src/core/config-schema.ts';

const cfg = (o: Record<string, unknown>): Config => configSchema.parse(o);

function req(path = '/', client = 'c1', method = 'GET'): RequestInfo {
  return { method, path, host: 'example.com', headers: {}, client };
}

function isPending(d: Decision | PendingDecision): d is PendingDecision {
  return 'pending' in d;
}

function now(d: Decision | PendingDecision): Decision {
  if (isPending(d)) throw new Error('expected an immediate decision, got a pending one');
  return d;
}

function queued(d: Decision | PendingDecision): PendingDecision {
  if (!isPending(d)) throw new Error(`expected a queued request, got ${d.decision} ${String(d.reason)}`);
  return d;
}

/** Resolution state of pending decisions, observable without awaiting each one. */
function watch(p: PendingDecision) {
  const box: { done: boolean; value: Decision | null | undefined } = { done: false, value: undefined };
  void p.promise.then((v) => {
    box.done = true;
    box.value = v;
  });
  return box;
}

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

function snap(a: Admission, name: string) {
  return a.snapshot().find((s) => s.name === name);
}

function setup(o: Record<string, unknown>) {
  const clock = new FakeClock();
  const a = new Admission(cfg(o), { clock });
  return { a, clock };
}

describe('Admission: immediate decisions', () => {
  it('admits under the limit and reports the deciding limiter', () => {
    const { a } = setup({ inflight: { max: 2 } });
    const d = now(a.admit(req()));
    expect(d).toMatchObject({ decision: 'admitted', reason: undefined, limiter: 'global', limit: 2, inflight: 1, status: 0, dryRun: false, route: undefined });
    expect(d.grant).toBeDefined();
  });

  it('rejects with inflight_limit when full and there is no queue; rejects acquire nothing', () => {
    const { a } = setup({ inflight: { max: 1 }, reject: { status: 503 } });
    now(a.admit(req()));
    const before = snap(a, 'global');
    const d = now(a.admit(req()));
    expect(d).toMatchObject({ decision: 'rejected', reason: 'inflight_limit', limiter: 'global', limit: 1, inflight: 1, status: 503, grant: undefined });
    expect(snap(a, 'global')).toEqual(before);
  });

  it('a grant releases once however often it is called', () => {
    const { a } = setup({ inflight: { max: 1 }, routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, perClient: 1 } }] });
    const d = now(a.admit(req('/r')));
    d.grant?.release();
    d.grant?.release();
    for (const s of a.snapshot()) {
      expect(s.inflight).toBe(0);
      expect(s.released).toBe(s.acquired);
    }
    expect(snap(a, 'global')?.released).toBe(1);
    expect(now(a.admit(req('/r'))).decision).toBe('admitted');
  });

  it('route caps are independent of each other', () => {
    const { a } = setup({
      inflight: { max: 10 },
      routes: [
        { name: 'a', match: { prefix: '/a' }, inflight: { max: 1 } },
        { name: 'b', match: { prefix: '/b' }, inflight: { max: 2 } },
      ],
    });
    const a1 = now(a.admit(req('/a')));
    expect(a1).toMatchObject({ decision: 'admitted', limiter: 'route:a', route: 'a', limit: 1, inflight: 1 });
    expect(now(a.admit(req('/a')))).toMatchObject({ decision: 'rejected', reason: 'inflight_limit', limiter: 'route:a' });
    expect(now(a.admit(req('/b'))).decision).toBe('admitted');
    expect(now(a.admit(req('/b'))).decision).toBe('admitted');
    expect(now(a.admit(req('/b')))).toMatchObject({ decision: 'rejected', limiter: 'route:b' });
    expect(now(a.admit(req('/other'))).decision).toBe('admitted');
    a1.grant?.release();
    expect(now(a.admit(req('/a'))).decision).toBe('admitted');
    expect(snap(a, 'global')?.inflight).toBe(4);
  });

  it('per-client cap: 429 from the client limiter, never queued, other clients unaffected, deleted when idle', () => {
    const { a } = setup({ inflight: { max: 10, perClient: 2, queue: { size: 10, timeout: 1000 } }, reject: { clientStatus: 429 } });
    const g1 = now(a.admit(req('/', 'c1')));
    const g2 = now(a.admit(req('/', 'c1')));
    expect(now(a.admit(req('/', 'c1')))).toMatchObject({ decision: 'rejected', reason: 'client_inflight_limit', limiter: 'client', limit: 2, inflight: 2, status: 429 });
    expect(now(a.admit(req('/', 'c2'))).decision).toBe('admitted');
    expect(a.snapshot().filter((s) => s.kind === 'client')).toHaveLength(2);
    g1.grant?.release();
    g2.grant?.release();
    expect(a.snapshot().filter((s) => s.kind === 'client')).toHaveLength(1);
  });

  it('per-route-client cap applies to its route only', () => {
    const { a } = setup({
      inflight: { max: 10 },
      routes: [{ name: 'up', match: { prefix: '/up' }, inflight: { max: 5, perClient: 1 } }],
    });
    now(a.admit(req('/up', 'c1')));
    expect(now(a.admit(req('/up', 'c1')))).toMatchObject({ decision: 'rejected', reason: 'client_inflight_limit', limiter: 'route:up:client', status: 429 });
    expect(now(a.admit(req('/up', 'c2'))).decision).toBe('admitted');
    expect(now(a.admit(req('/other', 'c1'))).decision).toBe('admitted');
  });

  it('bypass: never limited, no limiter touched', () => {
    const { a } = setup({ inflight: { max: 0 }, routes: [{ name: 'probes', match: { exact: '/healthz' }, bypass: true }] });
    const before = a.snapshot();
    const d = now(a.admit(req('/healthz')));
    expect(d).toMatchObject({ decision: 'bypassed', route: 'probes', reason: undefined, grant: undefined, status: 0 });
    expect(a.snapshot()).toEqual(before);
    expect(now(a.admit(req('/x'))).reason).toBe('inflight_limit');
  });

  it('checks client limits before queueing, and the route queue before the global one', () => {
    const { a } = setup({
      inflight: { max: 1, perClient: 1, queue: { size: 5, timeout: 1000 } },
      routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, queue: { size: 5, timeout: 1000 } } }],
    });
    now(a.admit(req('/r', 'c1')));
    // c1 is at its client cap: refused at once rather than taking a queue slot.
    expect(now(a.admit(req('/r', 'c1'))).reason).toBe('client_inflight_limit');
    // Route and global both full: waits in the route's queue.
    queued(a.admit(req('/r', 'c2')));
    expect(snap(a, 'route:r')?.queued).toBe(1);
    expect(snap(a, 'global')?.queued).toBe(0);
  });
});

describe('Admission: queueing', () => {
  it('queues FIFO up to size, then queue_full; a release admits the head synchronously', async () => {
    const { a } = setup({ inflight: { max: 1, queue: { size: 2, timeout: 1000 } } });
    const first = now(a.admit(req()));
    const p1 = queued(a.admit(req()));
    const p2 = queued(a.admit(req()));
    expect(now(a.admit(req()))).toMatchObject({ decision: 'rejected', reason: 'queue_full', limiter: 'global', queueDepth: 2, status: 503 });
    const w1 = watch(p1);
    const w2 = watch(p2);
    first.grant?.release();
    // Admitted in the same step as the release: the permit moved straight to the head.
    expect(snap(a, 'global')).toMatchObject({ inflight: 1, queued: 1 });
    await tick();
    expect(w1.value).toMatchObject({ decision: 'admitted', queueDepth: 0, limiter: 'global' });
    expect(w2.done).toBe(false);
    w1.value?.grant?.release();
    await tick();
    expect(w2.value).toMatchObject({ decision: 'admitted', queueDepth: 1 });
  });

  it('queue_timeout at the deadline, with the time waited; nothing held', async () => {
    const { a, clock } = setup({ inflight: { max: 1, queue: { size: 1, timeout: 1000 } } });
    const first = now(a.admit(req()));
    const w = watch(queued(a.admit(req())));
    clock.advance(999);
    await tick();
    expect(w.done).toBe(false);
    clock.advance(1);
    await tick();
    expect(w.value).toMatchObject({ decision: 'rejected', reason: 'queue_timeout', queueWaitMs: 1000, limiter: 'global', status: 503, grant: undefined });
    expect(snap(a, 'global')).toMatchObject({ inflight: 1, queued: 0, acquired: 1 });
    first.grant?.release();
    expect(snap(a, 'global')?.inflight).toBe(0);
    expect(clock.armed).toBe(0);
  });

  it('a late timer does not let a waiter in after its deadline', async () => {
    const { a, clock } = setup({ inflight: { max: 1, queue: { size: 1, timeout: 1000 } } });
    const first = now(a.admit(req()));
    const w = watch(queued(a.admit(req())));
    // A busy event loop: time passes the deadline before the timer gets to run.
    clock.t += 1500;
    first.grant?.release();
    await tick();
    expect(w.value).toMatchObject({ decision: 'rejected', reason: 'queue_timeout', queueWaitMs: 1500 });
    expect(snap(a, 'global')?.inflight).toBe(0);
  });

  it('cancel leaves the queue, resolves null, holds nothing', async () => {
    const { a, clock } = setup({ inflight: { max: 1, queue: { size: 1, timeout: 1000 } } });
    const first = now(a.admit(req()));
    const p = queued(a.admit(req()));
    p.cancel();
    expect(await p.promise).toBeNull();
    expect(snap(a, 'global')?.queued).toBe(0);
    expect(clock.armed).toBe(0);
    first.grant?.release();
    expect(snap(a, 'global')).toMatchObject({ inflight: 0, acquired: 1, released: 1 });
  });

  it('cancel after admission releases the grant', async () => {
    const { a } = setup({ inflight: { max: 1, queue: { size: 1, timeout: 1000 } } });
    const first = now(a.admit(req()));
    const p = queued(a.admit(req()));
    first.grant?.release();
    p.cancel();
    expect(snap(a, 'global')).toMatchObject({ inflight: 0, acquired: 2, released: 2 });
    const d = await p.promise;
    d?.grant?.release();
    expect(snap(a, 'global')?.released).toBe(2);
  });

  it('a waiter woken on its route moves to the global queue, keeping the earlier deadline', async () => {
    const config = {
      inflight: { max: 1, queue: { size: 5, timeout: 1000 } },
      routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, queue: { size: 5, timeout: 10_000 } } }],
    };
    const { a, clock } = setup(config);
    const first = now(a.admit(req('/r')));
    const w = watch(queued(a.admit(req('/r'))));
    expect(snap(a, 'route:r')?.queued).toBe(1);
    clock.advance(400);
    // Room on the route but not on global: the waiter moves to global's queue.
    a.update(cfg({ ...config, routes: [{ ...config.routes[0], inflight: { max: 2, queue: { size: 5, timeout: 10_000 } } }] }));
    expect(snap(a, 'route:r')?.queued).toBe(0);
    expect(snap(a, 'global')?.queued).toBe(1);
    // Deadline = arrival + global timeout (1000), not arrival + 10s.
    clock.advance(599);
    await tick();
    expect(w.done).toBe(false);
    clock.advance(1);
    await tick();
    expect(w.value).toMatchObject({ decision: 'rejected', reason: 'queue_timeout', limiter: 'global', queueWaitMs: 1000, route: 'r' });
    first.grant?.release();
  });

  it('a release that frees two queues wakes the older waiter first', async () => {
    const { a } = setup({
      inflight: { max: 2, queue: { size: 5, timeout: 1000 } },
      routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, queue: { size: 5, timeout: 1000 } } }],
    });
    const first = now(a.admit(req('/r')));
    now(a.admit(req('/x')));
    const older = watch(queued(a.admit(req('/r'))));
    const younger = watch(queued(a.admit(req('/x'))));
    expect([snap(a, 'route:r')?.queued, snap(a, 'global')?.queued]).toEqual([1, 1]);
    first.grant?.release();
    await tick();
    expect(older.value?.decision).toBe('admitted');
    expect(younger.done).toBe(false);
    expect(snap(a, 'global')).toMatchObject({ inflight: 2, queued: 1 });
  });

  it('a waiter woken while its client is at its cap is refused with client_inflight_limit', async () => {
    const { a } = setup({
      inflight: { max: 10, perClient: 1 },
      routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, queue: { size: 5, timeout: 1000 } } }],
    });
    const first = now(a.admit(req('/r', 'c1')));
    const w = watch(queued(a.admit(req('/r', 'c2'))));
    now(a.admit(req('/other', 'c2')));
    first.grant?.release();
    await tick();
    expect(w.value).toMatchObject({ decision: 'rejected', reason: 'client_inflight_limit', limiter: 'client', status: 429 });
    expect(snap(a, 'route:r')?.inflight).toBe(0);
  });
});

describe('Admission: reload', () => {
  const base = { inflight: { max: 1, queue: { size: 5, timeout: 1000 } } };

  it('raising max wakes queued requests at once', async () => {
    const { a } = setup(base);
    now(a.admit(req()));
    const ws = [0, 1, 2].map(() => watch(queued(a.admit(req()))));
    a.update(cfg({ inflight: { max: 3, queue: { size: 5, timeout: 1000 } } }));
    expect(snap(a, 'global')).toMatchObject({ inflight: 3, queued: 1, max: 3 });
    await tick();
    expect(ws.map((w) => w.value?.decision)).toEqual(['admitted', 'admitted', undefined]);
  });

  it('Limiter.resize up wakes too (same limiter object, counts kept)', async () => {
    const { a } = setup(base);
    now(a.admit(req()));
    const w = watch(queued(a.admit(req())));
    const global = [...a.limiters()].find((l) => l.name === 'global');
    global?.resize({ max: 2, queueSize: 5, queueTimeout: 1000 });
    await tick();
    expect(w.value?.decision).toBe('admitted');
    expect(global?.inflight).toBe(2);
  });

  it('lowering max admits nothing new until in-flight falls below it', async () => {
    const { a } = setup({ inflight: { max: 3 } });
    const held = [0, 1, 2].map(() => now(a.admit(req())));
    a.update(cfg({ inflight: { max: 1, queue: { size: 5, timeout: 10_000 } } }));
    expect(snap(a, 'global')).toMatchObject({ inflight: 3, max: 1 });
    const w = watch(queued(a.admit(req())));
    held[0]?.grant?.release();
    held[1]?.grant?.release();
    await tick();
    expect(w.done).toBe(false);
    expect(snap(a, 'global')?.inflight).toBe(1);
    held[2]?.grant?.release();
    await tick();
    expect(w.value?.decision).toBe('admitted');
  });

  it('lowering queue size keeps the waiters, refuses newcomers until below', async () => {
    const { a } = setup({ inflight: { max: 1, queue: { size: 3, timeout: 1000 } } });
    let head = now(a.admit(req()));
    const ws = [0, 1, 2].map(() => watch(queued(a.admit(req()))));
    a.update(cfg({ inflight: { max: 1, queue: { size: 1, timeout: 1000 } } }));
    expect(snap(a, 'global')?.queued).toBe(3);
    expect(now(a.admit(req())).reason).toBe('queue_full');
    for (const i of [0, 1]) {
      head.grant?.release();
      await tick();
      const d = ws[i]?.value;
      if (!d) throw new Error('waiter not admitted');
      head = d;
    }
    expect(snap(a, 'global')?.queued).toBe(1);
    expect(now(a.admit(req())).reason).toBe('queue_full');
    head.grant?.release();
    await tick();
    expect(snap(a, 'global')?.queued).toBe(0);
    queued(a.admit(req()));
  });

  it('a removed route keeps counting its in-flight and queued requests, but is no longer matched', async () => {
    const withRoute = {
      inflight: { max: 10 },
      routes: [{ name: 'a', match: { prefix: '/a' }, inflight: { max: 1, queue: { size: 5, timeout: 1000 } } }],
    };
    const { a } = setup(withRoute);
    const first = now(a.admit(req('/a')));
    const w = watch(queued(a.admit(req('/a'))));
    a.update(cfg({ inflight: { max: 10 } }));
    expect(snap(a, 'route:a')).toMatchObject({ inflight: 1, queued: 1 });
    expect(now(a.admit(req('/a')))).toMatchObject({ decision: 'admitted', limiter: 'global', route: undefined });
    first.grant?.release();
    await tick();
    expect(w.value).toMatchObject({ decision: 'admitted', limiter: 'route:a', route: 'a' });
    expect(snap(a, 'route:a')).toMatchObject({ inflight: 1, queued: 0 });
    w.value?.grant?.release();
    expect(snap(a, 'route:a')).toBeUndefined();
    // Added back: a new, empty limiter.
    a.update(cfg(withRoute));
    expect(snap(a, 'route:a')).toMatchObject({ inflight: 0, acquired: 0 });
  });

  it('a kept route is resized in place, a new route starts empty', () => {
    const one = { inflight: { max: 10 }, routes: [{ name: 'a', match: { prefix: '/a' }, inflight: { max: 2 } }] };
    const { a } = setup(one);
    now(a.admit(req('/a')));
    a.update(
      cfg({
        inflight: { max: 10 },
        routes: [
          { name: 'b', match: { prefix: '/b' }, inflight: { max: 1 } },
          { name: 'a', match: { prefix: '/a' }, inflight: { max: 1 } },
        ],
      }),
    );
    expect(snap(a, 'route:a')).toMatchObject({ inflight: 1, max: 1, acquired: 1 });
    expect(snap(a, 'route:b')).toMatchObject({ inflight: 0, max: 1 });
    expect(now(a.admit(req('/a'))).reason).toBe('inflight_limit');
  });

  it('perClient changes apply to existing client limiters', () => {
    const { a } = setup({ inflight: { max: 10, perClient: 3 } });
    now(a.admit(req('/', 'c1')));
    now(a.admit(req('/', 'c1')));
    a.update(cfg({ inflight: { max: 10, perClient: 1 } }));
    expect(snap(a, 'client')).toMatchObject({ inflight: 2, max: 1 });
    expect(now(a.admit(req('/', 'c1'))).reason).toBe('client_inflight_limit');
  });

  it('reject settings swap', () => {
    const { a } = setup({ inflight: { max: 0 } });
    expect(now(a.admit(req())).status).toBe(503);
    a.update(cfg({ inflight: { max: 0 }, reject: { status: 502 } }));
    expect(now(a.admit(req())).status).toBe(502);
  });
});

describe('Admission: dry run', () => {
  it('reports would-be rejects but lets everything through, counted', () => {
    const { a } = setup({ dryRun: true, inflight: { max: 1, perClient: 5 } });
    const d1 = now(a.admit(req()));
    expect(d1).toMatchObject({ decision: 'admitted', dryRun: true });
    const d2 = now(a.admit(req()));
    expect(d2).toMatchObject({ decision: 'rejected', reason: 'inflight_limit', dryRun: true, limiter: 'global', limit: 1, inflight: 1, status: 503 });
    expect(d2.grant).toBeDefined();
    expect(snap(a, 'global')?.inflight).toBe(2);
    d1.grant?.release();
    d2.grant?.release();
    d2.grant?.release();
    for (const s of a.snapshot()) expect(s.inflight).toBe(0);
  });

  it('never queues: within queueSize over max is a would-be admit with its depth, beyond is queue_full', () => {
    const { a } = setup({ dryRun: true, inflight: { max: 1, queue: { size: 2, timeout: 1000 } } });
    const ds = [0, 1, 2, 3].map(() => now(a.admit(req())));
    expect(ds.map((d) => [d.decision, d.reason, d.queueDepth])).toEqual([
      ['admitted', undefined, 0],
      ['admitted', undefined, 0],
      ['admitted', undefined, 1],
      ['rejected', 'queue_full', 2],
    ]);
    expect(ds.every((d) => d.grant !== undefined && d.dryRun)).toBe(true);
  });

  it('client would-be rejects use clientStatus', () => {
    const { a } = setup({ dryRun: true, inflight: { max: 10, perClient: 1 } });
    now(a.admit(req()));
    expect(now(a.admit(req()))).toMatchObject({ decision: 'rejected', reason: 'client_inflight_limit', status: 429, dryRun: true });
  });

  it('switching dry run on lets the queued through; switching it off enforces again', async () => {
    const enforced = { inflight: { max: 1, queue: { size: 5, timeout: 1000 } } };
    const { a } = setup(enforced);
    now(a.admit(req()));
    const w = watch(queued(a.admit(req())));
    a.update(cfg({ ...enforced, dryRun: true }));
    await tick();
    expect(w.value).toMatchObject({ decision: 'admitted', dryRun: true });
    expect(snap(a, 'global')).toMatchObject({ inflight: 2, queued: 0 });
    a.update(cfg(enforced));
    queued(a.admit(req()));
  });
});
