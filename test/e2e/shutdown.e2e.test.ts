/**
 * Graceful shutdown, on Node and on Deno: on SIGTERM /readyz turns 503 at once, the listener
 * stays up for drain.delay and is then closed (new connections refused), the 20 requests in
 * flight all complete with 200, the process logs "portcullis stopped" and exits 0. When
 * requests outlast drain.timeout, they are cut and the process still exits in bounded time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from '../helpers/http-client.ts';
import { tryConnect } from '../helpers/raw-http.ts';
import { RUNTIMES, cleanup, configFor, startSidecar, waitFor } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

describe.each(RUNTIMES)('shutdown on %s', (runtime) => {
  afterEach(cleanup);

  it('SIGTERM: readyz 503 at once, in-flight requests complete, new connections refused after the delay, exit 0', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { drain: { delay: '1s', timeout: '10s' } }) });
    expect((await sc.admin('/readyz')).status).toBe(200);

    const inflight = Array.from({ length: 20 }, (_, i) => request(sc.port, { path: `/long/${i}?ms=2000` }));
    await waitFor('20 requests at the app', () => up.current() === 20);

    const t0 = Date.now();
    sc.kill('SIGTERM');
    // Not ready any more, well within the 1 s delay.
    await waitFor('/readyz 503', async () => (await sc.admin('/readyz')).status === 503, { timeoutMs: 800, intervalMs: 10 });
    expect((await sc.admin('/healthz')).status).toBe(200);
    expect((await sc.stats()).draining).toBe(true);

    // The listener stays up during the delay, then refuses new connections.
    const refusedAt = await waitFor(
      'new connections to be refused',
      async () => ((await tryConnect(sc.port)) === 'ECONNREFUSED' ? Date.now() - t0 : 0),
      { timeoutMs: 5000, intervalMs: 50 },
    );
    expect(refusedAt).toBeGreaterThanOrEqual(800);

    const results = await Promise.all(inflight);
    for (const r of results) {
      expect(r.error, `request ${r.i}`).toBeUndefined();
      expect(r.status).toBe(200);
      expect(r.body).toBe('ok');
    }
    expect(up.count()).toBe(20);
    expect(up.aborted()).toBe(0);

    const exit = await sc.waitExit(15_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(sc.logs().filter((l) => l.msg === 'portcullis stopped')).toHaveLength(1);
  });

  it('requests outlasting drain.timeout are cut and the process still exits', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { drain: { delay: 0, timeout: '1s' } }) });
    const stuck = request(sc.port, { path: '/stuck?gate=1' });
    await waitFor('the stuck request at the app', () => up.current() === 1);

    const t0 = Date.now();
    const exit = await sc.stop('SIGTERM', 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(exit.signal).toBeNull();
    expect(exit.code).toBe(0);
    const r = await stuck;
    // The client got no complete 200: it was cut.
    expect(r.status === 200 && r.error === undefined).toBe(false);
    expect(sc.logs().some((l) => l.msg === 'portcullis stopped')).toBe(true);
  });
});
