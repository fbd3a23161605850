/**
 * Admission under real load, on Node and on Deno: the in-flight caps (global, per route, per
 * client) are never exceeded at the app (upstream peak <= max), every request is either
 * admitted or rejected (admitted + rejected = sent), rejects never reach the app and carry
 * status, Retry-After, x-portcullis-reason and the configured body, every permit is released
 * (acquired == released, nothing in flight afterwards), queues admit in FIFO order when a slot
 * frees in time and reject with queue_full / queue_timeout otherwise, bypass routes are never
 * limited, and dryRun enforces nothing but reports the would-be rejects.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fire, request, tally, type Result } from '../helpers/http-client.ts';
import { REASONS, RUNTIMES, cleanup, configFor, limiter, startSidecar, waitFor, type Sidecar } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

const BODY = '{"error":"overloaded"}';

/** A reject as the contract spells it: status, Retry-After, a known reason, the configured body. */
function expectReject(r: Result, status: number, reason: string): void {
  expect(r.error, `request ${r.i}: ${r.error}`).toBeUndefined();
  expect(r.status).toBe(status);
  expect(r.headers['retry-after']).toBe('1');
  expect(REASONS).toContain(r.headers['x-portcullis-reason']);
  expect(r.headers['x-portcullis-reason']).toBe(reason);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  expect(r.body).toBe(BODY);
  expect(r.headers['x-upstream']).toBeUndefined();
}

function expectOk(r: Result): void {
  expect(r.error, `request ${r.i}: ${r.error}`).toBeUndefined();
  expect(r.status).toBe(200);
  expect(r.headers['x-upstream']).toBe('yes');
  expect(r.body).toBe('ok');
}

/** Waits until `n` requests sit in the named limiter's queue. */
async function queued(sc: Sidecar, name: string, n: number) {
  return waitFor(`${n} queued in ${name}`, async () => limiter(await sc.stats(), name).queued === n);
}

describe.each(RUNTIMES)('admission on %s', (runtime) => {
  afterEach(cleanup);

  it('500 concurrent clients against inflight.max 20: app peak <= 20, admitted + rejected = 500, all permits released', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { inflight: { max: 20 } }) });

    const results = await fire(sc.port, 500, (i) => ({ path: `/work/${i}?ms=150` }));

    const ok = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status !== 200);
    expect(tally(results)).toEqual({ '200': ok.length, '503': 500 - ok.length });
    expect(ok.length + rejected.length).toBe(500);
    ok.forEach(expectOk);
    rejected.forEach((r) => expectReject(r, 503, 'inflight_limit'));
    // The load really saturated the cap, and the cap held at the app.
    expect(up.peak()).toBe(20);
    expect(rejected.length).toBeGreaterThan(0);
    // A rejected request never reaches the app.
    expect(up.count()).toBe(ok.length);
    expect(up.aborted()).toBe(0);

    const s = await sc.settled();
    const g = limiter(s, 'global');
    expect(g.max).toBe(20);
    expect(g.peak).toBeLessThanOrEqual(20);
    expect(g.acquired).toBe(ok.length);
    expect(g.released).toBe(ok.length);
    for (const l of s.limiters) expect(l.acquired, l.name).toBe(l.released);
    expect(s.totals.admitted).toBe(ok.length);
    expect(s.totals.rejected).toBe(rejected.length);
    expect(s.totals.byReason.inflight_limit).toBe(rejected.length);
  });

  it('a route cap holds independently of another route and of the global cap', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        inflight: { max: 100 },
        routes: [
          { name: 'a', match: { prefix: '/a' }, inflight: { max: 5 } },
          { name: 'b', match: { prefix: '/b' }, inflight: { max: 3 } },
        ],
      }),
    });

    // Fill route a exactly: 5 held at the app.
    const heldA = Array.from({ length: 5 }, () => request(sc.port, { path: '/a/held?gate=1' }));
    await waitFor('5 /a requests at the app', () => up.current('/a') === 5);
    // a is full: the next /a is rejected at once, but b and unrouted paths still get through.
    expectReject(await request(sc.port, { path: '/a/more' }), 503, 'inflight_limit');
    const heldB = Array.from({ length: 3 }, () => request(sc.port, { path: '/b/held?gate=1' }));
    await waitFor('3 /b requests at the app', () => up.current('/b') === 3);
    expectReject(await request(sc.port, { path: '/b/more' }), 503, 'inflight_limit');
    expectOk(await request(sc.port, { path: '/c/free' }));
    let s = await sc.stats();
    expect(limiter(s, 'route:a').inflight).toBe(5);
    expect(limiter(s, 'route:b').inflight).toBe(3);
    expect(limiter(s, 'global').inflight).toBe(8);
    up.release();
    (await Promise.all([...heldA, ...heldB])).forEach(expectOk);
    await sc.settled();

    // Then both routes under concurrent load at once: separate peaks, each at its own cap.
    up.reset();
    const results = await fire(sc.port, 120, (i) => ({ path: `${i % 2 ? '/a' : '/b'}/load?ms=200` }));
    for (const r of results) {
      if (r.status === 200) expectOk(r);
      else expectReject(r, 503, 'inflight_limit');
    }
    expect(up.peak('/a')).toBe(5);
    expect(up.peak('/b')).toBe(3);
    expect(up.peak()).toBeLessThanOrEqual(8);
    const okA = results.filter((r) => r.i % 2 === 1 && r.status === 200).length;
    const okB = results.filter((r) => r.i % 2 === 0 && r.status === 200).length;
    expect(up.count('/a')).toBe(okA);
    expect(up.count('/b')).toBe(okB);
    s = await sc.settled();
    expect(limiter(s, 'route:a').peak).toBe(5);
    expect(limiter(s, 'route:b').peak).toBe(3);
    for (const l of s.limiters) expect(l.acquired, l.name).toBe(l.released);
  });

  it('per-client caps: one client at its cap gets 429 client_inflight_limit, another client is unaffected', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        inflight: { max: 100, perClient: 2 },
        routes: [{ name: 'solo', match: { prefix: '/solo' }, inflight: { max: 50, perClient: 1 } }],
      }),
    });
    const A = '127.0.0.2';
    const B = '127.0.0.3';

    const heldA = [1, 2].map(() => request(sc.port, { path: '/x?gate=1', localAddress: A }));
    await waitFor('2 requests of client A at the app', () => up.current() === 2);
    expectReject(await request(sc.port, { path: '/x', localAddress: A }), 429, 'client_inflight_limit');
    // Client B has its own allowance.
    const heldB = [1, 2].map(() => request(sc.port, { path: '/x?gate=1', localAddress: B }));
    await waitFor('2 requests of client B at the app', () => up.current() === 4);
    expectReject(await request(sc.port, { path: '/x', localAddress: B }), 429, 'client_inflight_limit');
    expect(new Set(up.requests.map((r) => r.headers['x-forwarded-for']))).toEqual(new Set([A, B]));
    up.release();
    (await Promise.all([...heldA, ...heldB])).forEach(expectOk);
    await sc.settled();

    // A route's per-client cap (1) is tighter than the global one (2).
    up.closeGate();
    const soloA = request(sc.port, { path: '/solo?gate=1', localAddress: A });
    await waitFor('one /solo request at the app', () => up.current('/solo') === 1);
    expectReject(await request(sc.port, { path: '/solo', localAddress: A }), 429, 'client_inflight_limit');
    const soloB = request(sc.port, { path: '/solo?gate=1', localAddress: B });
    await waitFor('/solo from client B at the app', () => up.current('/solo') === 2);
    up.release();
    expectOk(await soloA);
    expectOk(await soloB);

    const s = await sc.settled();
    expect(s.totals.byReason.client_inflight_limit).toBe(3);
    expect(s.totals.rejected).toBe(3);
    expect(up.count()).toBe(6);
  });

  it('queue: waiting requests are admitted in FIFO order when a slot frees, queue_full beyond size', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, { inflight: { max: 1, queue: { size: 3, timeout: '5s' } } }),
    });

    const first = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('the first request at the app', () => up.current() === 1);
    const waiting: Array<Promise<Result>> = [];
    for (let i = 0; i < 3; i++) {
      waiting.push(request(sc.port, { path: `/q${i}` }));
      await queued(sc, 'global', i + 1);
    }
    // The queue is full: rejected at once, never reaches the app.
    expectReject(await request(sc.port, { path: '/overflow' }), 503, 'queue_full');
    expect(up.count()).toBe(1);
    const s1 = await sc.stats();
    expect(limiter(s1, 'global').inflight).toBe(1);
    expect(limiter(s1, 'global').queued).toBe(3);

    up.release();
    expectOk(await first);
    (await Promise.all(waiting)).forEach(expectOk);
    expect(up.requests.map((r) => r.path)).toEqual(['/hold', '/q0', '/q1', '/q2']);
    expect(up.peak()).toBe(1);

    const s = await sc.settled();
    expect(limiter(s, 'global').acquired).toBe(4);
    expect(s.totals.admitted).toBe(4);
    expect(s.totals.rejected).toBe(1);
    expect(s.totals.byReason.queue_full).toBe(1);
  });

  it('queue: a request not admitted within queue.timeout is rejected with queue_timeout and never reaches the app', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, { inflight: { max: 1, queue: { size: 5, timeout: '700ms' } } }),
    });
    const held = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('the held request at the app', () => up.current() === 1);

    const late = await Promise.all([1, 2].map(() => request(sc.port, { path: '/late' })));
    late.forEach((r) => expectReject(r, 503, 'queue_timeout'));
    // Nobody is turned away before the timeout (lower bound only; the upper one is the test timeout).
    for (const r of late) expect(r.ms).toBeGreaterThanOrEqual(600);
    expect(up.count()).toBe(1);

    up.release();
    expectOk(await held);
    const s = await sc.settled();
    expect(s.totals.byReason.queue_timeout).toBe(2);
    expect(limiter(s, 'global').acquired).toBe(1);
  });

  it('bypass routes are never limited, even when the global cap is 0', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        inflight: { max: 0 },
        routes: [{ name: 'probes', match: { exact: '/healthz' }, bypass: true }],
      }),
    });

    const probes = await fire(sc.port, 30, { path: '/healthz?ms=300' });
    probes.forEach(expectOk);
    // All 30 were at the app at the same time: nothing limited them.
    expect(up.peak()).toBe(30);
    // Everything else meets max 0; exact match means /healthz/x is not the bypass route.
    const others = await fire(sc.port, 5, (i) => ({ path: i === 0 ? '/healthz/x' : `/other/${i}` }));
    others.forEach((r) => expectReject(r, 503, 'inflight_limit'));
    expect(up.count()).toBe(30);

    const s = await sc.settled();
    expect(s.totals.bypassed).toBe(30);
    expect(s.totals.rejected).toBe(5);
    expect(s.totals.admitted).toBe(0);
    expect(limiter(s, 'global').acquired).toBe(0);
  });

  it('dryRun: every request passes through, /stats and the log show the would-be rejects', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { inflight: { max: 2 }, dryRun: true }) });

    const all = Array.from({ length: 10 }, (_, i) => request(sc.port, { path: `/d/${i}?gate=1` }));
    // All 10 reach the app at once although max is 2: nothing is enforced.
    await waitFor('10 requests at the app', () => up.current() === 10);
    up.release();
    (await Promise.all(all)).forEach(expectOk);

    // Would-be rejects are counted as such; nothing was actually rejected.
    const s = await sc.settled();
    expect(s.totals.wouldReject, JSON.stringify(s.totals)).toBe(8);
    expect(s.totals.rejected).toBe(0);
    expect(s.totals.admitted + (s.totals.wouldReject ?? 0)).toBe(10);
    const line = await sc.waitForLog('a dry-run reject', (l) => l.msg === 'reject' && l.reason === 'inflight_limit', 5000);
    expect(line.level).toBe('warn');
    expect(line.dryRun).toBe(true);
    expect(Number(line.count)).toBeGreaterThanOrEqual(1);
    // Folded log lines add up to every would-be reject once the sampler has flushed.
    await waitFor('reject log counts adding up to 8', () => {
      const logged = sc
        .logs()
        .filter((l) => l.msg === 'reject' && l.reason === 'inflight_limit')
        .reduce((n, l) => n + Number(l.count), 0);
      return logged === 8;
    }, { timeoutMs: 4000 });
  });
});
