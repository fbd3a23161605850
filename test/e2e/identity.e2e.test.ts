/**
 * Client identity behind an ingress, on Node and on Deno (issue 10): X-Forwarded-* from a peer
 * that is not in `clientKey.trustedProxies` are overwritten (the app sees what portcullis saw),
 * from a trusted peer they are kept and appended to; the per-client key comes from the socket
 * (default), from X-Forwarded-For with realip semantics (only when the peer is trusted), or from
 * a named header; a live reload applies a new clientKey.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request, type Result } from '../helpers/http-client.ts';
import { configMapVolume } from '../helpers/configmap.ts';
import { exchange, get } from '../helpers/raw-http.ts';
import { RUNTIMES, cleanup, configFor, startSidecar, waitFor } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

const SPOOF = { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Port': '443' };

function expectClientReject(r: Result): void {
  expect(r.error, `${r.error}`).toBeUndefined();
  expect(r.status).toBe(429);
  expect(r.headers['x-portcullis-reason']).toBe('client_inflight_limit');
}

function expectOk(r: Result): void {
  expect(r.error, `${r.error}`).toBeUndefined();
  expect(r.status).toBe(200);
}

describe.each(RUNTIMES)('client identity (%s)', (runtime) => {
  afterEach(cleanup);

  it('issue 10: X-Forwarded-* from an untrusted peer are overwritten with what portcullis saw', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url) });
    const r = await exchange(sc.port, get('/echo', SPOOF, 'shop.example:8443'), { responses: 1, localAddress: '127.0.0.2' });
    expect(r.responses[0]?.status).toBe(200);
    const seen = up.requests[0]!;
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.2');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('shop.example:8443');
    // Any other X-Forwarded-* of the client is dropped, not passed on as if a proxy had set it.
    expect(seen.headers['x-forwarded-port']).toBeUndefined();
    await sc.settled();
  });

  it('issue 10: X-Forwarded-* from a trusted peer (127.0.0.1/32) are kept, X-Forwarded-For appended to', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { clientKey: { trustedProxies: ['127.0.0.1/32'] } }) });
    await exchange(sc.port, get('/echo', SPOOF, 'internal:8080'), { responses: 1, localAddress: '127.0.0.1' });
    const seen = up.requests[0]!;
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-forwarded-host']).toBe('evil.example');
    expect(seen.headers['x-forwarded-port']).toBe('443');
    // 127.0.0.2 is not in the list: overwritten.
    await exchange(sc.port, get('/echo', SPOOF, 'internal:8080'), { responses: 1, localAddress: '127.0.0.2' });
    expect(up.requests[1]!.headers['x-forwarded-for']).toBe('127.0.0.2');
    expect(up.requests[1]!.headers['x-forwarded-proto']).toBe('http');
    expect(up.requests[1]!.headers['x-forwarded-host']).toBe('internal:8080');
    await sc.settled();
  });

  it('issue 10: per-client limits by forwarded-for: clients behind a trusted proxy get their own budgets; a spoofed XFF from an untrusted peer changes nothing', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        clientKey: { from: 'forwarded-for', trustedProxies: ['127.0.0.1/32', '10.0.0.0/8'] },
        inflight: { max: 100, perClient: 1 },
        routes: [{ name: 'solo', match: { prefix: '/solo' }, inflight: { max: 50, perClient: 1 } }],
      }),
    });
    const via = (xff: string, localAddress = '127.0.0.1') => ({ localAddress, headers: { 'x-forwarded-for': xff } });
    const held = [
      request(sc.port, { path: '/x?gate=1', ...via('198.51.100.1') }),
      // realip: the rightmost address not in trustedProxies (10.1.2.3 is another trusted hop).
      request(sc.port, { path: '/x?gate=1', ...via('192.0.2.99, 198.51.100.2, 10.1.2.3') }),
    ];
    await waitFor('2 clients behind the proxy at the app', () => up.current() === 2);
    expectClientReject(await request(sc.port, { path: '/x', ...via('198.51.100.1') }));
    expectClientReject(await request(sc.port, { path: '/x', ...via('198.51.100.2') }));
    // The same client by another route: the route's own per-client limiter is keyed the same way.
    held.push(request(sc.port, { path: '/solo?gate=1', ...via('198.51.100.3') }));
    await waitFor('a third client at the app', () => up.current() === 3);
    expectClientReject(await request(sc.port, { path: '/solo', ...via('198.51.100.3') }));

    // An untrusted peer is keyed by its socket address whatever it writes in X-Forwarded-For.
    held.push(request(sc.port, { path: '/x?gate=1', ...via('198.51.100.50', '127.0.0.2') }));
    await waitFor('the untrusted client at the app', () => up.current() === 4);
    expectClientReject(await request(sc.port, { path: '/x', ...via('198.51.100.51', '127.0.0.2') }));
    up.release();
    (await Promise.all(held)).forEach(expectOk);
    const s = await sc.settled();
    for (const l of s.limiters) expect(l.acquired, l.name).toBe(l.released);
  });

  it('issue 10: per-client limits by a named header; a request without it is keyed by its address', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, { clientKey: { from: 'header', header: 'X-Tenant' }, inflight: { max: 100, perClient: 1 } }),
    });
    const tenant = (t: string) => ({ headers: { 'x-tenant': t } });
    const held = [request(sc.port, { path: '/x?gate=1', ...tenant('a') }), request(sc.port, { path: '/x?gate=1', ...tenant('b') })];
    await waitFor('tenants a and b at the app', () => up.current() === 2);
    expectClientReject(await request(sc.port, { path: '/x', ...tenant('a') }));
    held.push(request(sc.port, { path: '/x?gate=1', localAddress: '127.0.0.2' }));
    await waitFor('a client without the header at the app', () => up.current() === 3);
    expectClientReject(await request(sc.port, { path: '/x', localAddress: '127.0.0.2' }));
    // With the header, the same address is another client: the header alone is the key.
    held.push(request(sc.port, { path: '/x?gate=1', ...tenant('c'), localAddress: '127.0.0.2' }));
    await waitFor('tenant c at the app', () => up.current() === 4);
    up.release();
    (await Promise.all(held)).forEach(expectOk);
    await sc.settled();
  });

  it('issue 10: a live reload applies a new clientKey', async () => {
    const up = await startUpstream();
    const cfg = (clientKey: Record<string, unknown>) => JSON.stringify(configFor(up.url, { clientKey, inflight: { max: 100, perClient: 1 } }));
    const cm = configMapVolume(cfg({ from: 'socket' }));
    const sc = await startSidecar({ runtime, args: ['--config', cm.file] });
    const tenant = (t: string) => ({ headers: { 'x-tenant': t } });
    const first = request(sc.port, { path: '/x?gate=1', ...tenant('a') });
    await waitFor('one request at the app', () => up.current() === 1);
    // Keyed by the socket: tenant b from the same address shares the budget.
    expectClientReject(await request(sc.port, { path: '/x', ...tenant('b') }));
    cm.update(cfg({ from: 'header', header: 'x-tenant' }));
    await waitFor('clientKey from header in force', async () => (await sc.config()).config.clientKey?.from === 'header');
    const second = request(sc.port, { path: '/x?gate=1', ...tenant('b') });
    await waitFor('tenant b at the app', () => up.current() === 2);
    up.release();
    expectOk(await first);
    expectOk(await second);
    await sc.settled();
  });
});
