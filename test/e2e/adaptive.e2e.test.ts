/**
 * Adaptive limits end to end, on Node and on Deno (issue 12): a reload switches a busy route
 * limiter from a fixed max to an adaptive limit, between algorithms and back, under steady
 * closed-loop load, and drops nothing; /stats and /metrics show an adaptive limiter's limit in
 * force and what it has learnt; the reload's change is logged as "limit changed"; a queue in
 * front of an adaptive limit keeps its timeout, a raise wakes it at once, a lower limit admits
 * nothing new until the count falls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request, type Result } from '../helpers/http-client.ts';
import { configMapVolume } from '../helpers/configmap.ts';
import { parsePrometheus, sum } from '../helpers/prometheus.ts';
import { RUNTIMES, cleanup, configFor, limiter, sleep, startSidecar, waitFor, type Stats } from '../helpers/sidecar.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Plain = Record<string, unknown>;

describe.each(RUNTIMES)('adaptive limits (%s)', (runtime) => {
  afterEach(cleanup);

  it('issue 12: reload fixed -> adaptive -> fixed under load drops nothing', async () => {
    const up = await startUpstream();
    const queue = { size: 500, timeout: '60s' };
    const steps: Array<{ inflight: Plain; algorithm: string | undefined }> = [
      { inflight: { max: 6 }, algorithm: undefined },
      { inflight: { adaptive: { algorithm: 'gradient', min: 2, max: 12, initial: 3 } }, algorithm: 'gradient' },
      { inflight: { adaptive: { algorithm: 'aimd', min: 2, max: 12, initial: 3, timeout: '2s' } }, algorithm: 'aimd' },
      { inflight: { max: 4 }, algorithm: undefined },
    ];
    const cfg = (i: number) =>
      JSON.stringify(
        configFor(up.url, {
          connections: { max: 1000 },
          inflight: { max: 200 },
          routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { ...steps[i]?.inflight, queue } }],
          reload: { debounce: '10ms' },
        }),
      );
    const cm = configMapVolume(cfg(0));
    const sc = await startSidecar({ runtime, args: ['--config', cm.file] });

    // Closed loop: 16 clients, each sends its next request when the last one is answered.
    const results: Result[] = [];
    let on = true;
    const loops = Array.from({ length: 16 }, async (_, w) => {
      while (on) results.push(await request(sc.port, { path: `/r/${w}?ms=15`, timeoutMs: 60_000 }, undefined, results.length));
    });
    const seen: Stats[] = [];
    const during = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        seen.push(await sc.stats());
        await sleep(25);
      }
    };
    await waitFor('the route saturated and queueing', async () => {
      const r = limiter(await sc.stats(), 'route:r');
      return r.inflight === 6 && r.queued > 0;
    });
    await during(300);
    for (let i = 1; i < steps.length; i++) {
      const before = (await sc.config()).version;
      cm.update(cfg(i));
      await waitFor(`reload ${i}`, async () => (await sc.config()).version !== before, { intervalMs: 5 });
      const r = limiter(await sc.stats(), 'route:r');
      // The queue stayed: the route was busy when it switched.
      expect(r.adaptive?.algorithm, `after reload ${i}`).toBe(steps[i]?.algorithm);
      await during(400);
    }
    on = false;
    await Promise.all(loops);

    const bad = results.filter((x) => x.status !== 200 || x.error !== undefined).map((x) => [x.i, x.status, x.error, x.body.slice(0, 80)]);
    expect(bad).toEqual([]);
    expect(results.length).toBeGreaterThan(100);
    // Never more in the app than the highest limit any of the configs allows.
    expect(up.peak('/r')).toBeLessThanOrEqual(12);
    for (const s of seen) {
      const r = limiter(s, 'route:r');
      if (r.adaptive !== undefined) {
        expect(r.max).toBeGreaterThanOrEqual(r.adaptive.min);
        expect(r.max).toBeLessThanOrEqual(r.adaptive.max);
      }
    }
    const settled = await sc.settled();
    for (const l of settled.limiters) {
      expect(l.acquired, l.name).toBe(l.released);
      expect([l.inflight, l.queued], l.name).toEqual([0, 0]);
    }
    expect(limiter(settled, 'route:r').acquired).toBe(results.length);
    expect(settled.totals.rejected).toBe(0);
    // Each switch is a "limit changed" line of its own, at once.
    const changes = sc.logs().filter((l) => l.msg === 'limit changed' && l['limiter'] === 'route:r' && l['why'] === 'reload');
    expect(changes.map((l) => l['algorithm'])).toEqual(['gradient', 'aimd', 'fixed']);
    expect(changes.at(-1)).toMatchObject({ to: 4, changes: 1 });
  }, 120_000);

  it('issue 12: a queue in front of an adaptive limit: the timeout bounds waits, a raise admits at once, a lower one admits nothing new', async () => {
    const up = await startUpstream();
    // Bounds that pin the adaptive limit (min = max), so the test decides where it stands.
    const cfg = (limit: number, timeout: string) =>
      JSON.stringify(
        configFor(up.url, {
          routes: [{ name: 'q', match: { prefix: '/q' }, inflight: { adaptive: { algorithm: 'gradient', min: limit, max: limit }, queue: { size: 4, timeout } } }],
          reload: { debounce: '10ms' },
        }),
      );
    const cm = configMapVolume(cfg(1, '300ms'));
    const sc = await startSidecar({ runtime, args: ['--config', cm.file] });
    const reload = async (text: string) => {
      const before = (await sc.config()).version;
      cm.update(text);
      await waitFor('the reload', async () => (await sc.config()).version !== before, { intervalMs: 5 });
    };

    // One request holds the only slot; the next waits its 300 ms in the queue and is turned away.
    const held = request(sc.port, { path: '/q/held?gate=1', timeoutMs: 30_000 });
    await waitFor('the slot taken', async () => limiter(await sc.stats(), 'route:q').inflight === 1);
    const t0 = Date.now();
    const late = await request(sc.port, { path: '/q/late', timeoutMs: 30_000 });
    expect(late.status).toBe(503);
    expect(late.headers['x-portcullis-reason']).toBe('queue_timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(3000);

    // Two wait (with a long timeout now); raising the limit to 3 admits both at once.
    await reload(cfg(1, '30s'));
    const waiting = [request(sc.port, { path: '/q/a?gate=1', timeoutMs: 30_000 }), request(sc.port, { path: '/q/b?gate=1', timeoutMs: 30_000 })];
    await waitFor('two queued', async () => limiter(await sc.stats(), 'route:q').queued === 2);
    await reload(cfg(3, '30s'));
    await waitFor('both admitted after the raise', async () => {
      const r = limiter(await sc.stats(), 'route:q');
      return r.inflight === 3 && r.queued === 0 && up.current('/q') === 3 ? r : undefined;
    });
    expect(limiter(await sc.stats(), 'route:q').max).toBe(3);

    // Lowered to 1 with 3 in flight: a newcomer waits until the count is below 1 again.
    await reload(cfg(1, '30s'));
    const next = request(sc.port, { path: '/q/next', timeoutMs: 30_000 });
    await waitFor('the newcomer queued', async () => limiter(await sc.stats(), 'route:q').queued === 1);
    await sleep(200);
    expect(limiter(await sc.stats(), 'route:q')).toMatchObject({ inflight: 3, queued: 1, max: 1 });
    expect(up.peak('/q')).toBeLessThanOrEqual(3);
    up.release();
    for (const r of [await held, ...(await Promise.all(waiting)), await next]) expect(r.status).toBe(200);
    const settled = await sc.settled();
    const q = limiter(settled, 'route:q');
    expect([q.inflight, q.queued, q.acquired - q.released]).toEqual([0, 0, 0]);
  }, 60_000);

  it('issue 12: /stats and /metrics show the adaptive limiter: the limit in force and what it has learnt', async () => {
    const up: Upstream = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        inflight: { adaptive: { algorithm: 'gradient', min: 3, max: 40, initial: 10, minRttWindow: '10s' } },
        routes: [{ name: 'fixed', match: { prefix: '/fixed' }, inflight: { max: 5 } }],
      }),
      env: { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' },
    });
    // minRTT comes with the first light-load answer, the sample RTT with the first decision
    // (ten fresh answers, three RTT intervals after the last change).
    for (let i = 0; i < 15; i++) expect((await request(sc.port, { path: `/a?ms=10` })).status).toBe(200);
    const s = await waitFor('minRTT and a sample RTT learnt', async () => {
      const st = await sc.stats();
      const a = limiter(st, 'global').adaptive;
      return a?.minRttMs !== undefined && a.sampleRttMs !== undefined ? st : undefined;
    });
    const g = limiter(s, 'global');
    expect(g.adaptive).toMatchObject({ algorithm: 'gradient', min: 3, max: 40 });
    expect(Object.keys(g.adaptive ?? {}).sort()).toEqual(['algorithm', 'max', 'min', 'minRttMs', 'sampleRttMs']);
    expect(g.adaptive?.minRttMs).toBeGreaterThan(0);
    expect(g.adaptive?.sampleRttMs).toBeGreaterThan(0);
    // The forward's round trip: the app held each request 10 ms; far less than a second.
    expect(g.adaptive?.minRttMs).toBeLessThan(1000);
    expect(g.max).toBeGreaterThanOrEqual(3);
    expect(g.max).toBeLessThanOrEqual(40);
    // A fixed limiter has no adaptive entry.
    expect('adaptive' in limiter(s, 'route:fixed')).toBe(false);

    const res = await sc.admin('/metrics');
    expect(res.status).toBe(200);
    const samples = parsePrometheus(res.text);
    // Read at collection: the limit in force, as /stats has it (nothing runs in between to move it).
    expect(sum(samples, 'portcullis_limit', { limiter: 'global' })).toBe(limiter(await sc.stats(), 'global').max);
    expect(sum(samples, 'portcullis_limit', { limiter: 'route:fixed' })).toBe(5);
  }, 60_000);
});
