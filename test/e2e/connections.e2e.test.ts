/**
 * The socket cap, on Node and on Deno: with connections.max M and M+50 sockets opened, exactly
 * M are held (each of them can complete requests, /stats shows M open) and the other 50 get the
 * minimal 503 + Connection: close (onLimit reject) or are closed without a byte (onLimit close).
 * Closing held sockets frees their slots. The per-client socket cap answers 429 to the client
 * over its cap while another client is unaffected. With evictIdle (the default), a new socket at
 * the cap takes the place of the longest-idle one (never spoke, or keep-alive idle), a socket
 * with a request in progress is never closed, and onLimit applies when every socket is busy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, get, type RawConn, type RawResponse } from '../helpers/raw-http.ts';
import { RUNTIMES, cleanup, configFor, sleep, startSidecar, waitFor, type Sidecar } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

/** Opens `n` sockets one after another, each sending a GET as soon as it is connected. */
async function openSockets(port: number, n: number, localAddress?: string): Promise<RawConn[]> {
  const conns: RawConn[] = [];
  for (let i = 0; i < n; i++) {
    conns.push(await connect(port, { send: get(`/c/${i}`), ...(localAddress ? { localAddress } : {}) }));
  }
  return conns;
}

/** Waits until each socket got a 200 (and stays open) or was closed (after a reject, if any). */
async function settle(conns: RawConn[]): Promise<void> {
  await Promise.all(
    conns.map((c) => c.waitUntil('a 200 or close', (x) => x.closed || x.responses()[0]?.status === 200, 10_000)),
  );
}

const first = (c: RawConn): RawResponse | undefined => c.responses()[0];

function expectSocketReject(c: RawConn, status: number, reason: string): void {
  expect(c.closed).toBe(true);
  const r = first(c);
  expect(r, `rejected socket got ${JSON.stringify(c.text().slice(0, 200))} (error ${c.error?.code})`).toBeDefined();
  expect(r!.status).toBe(status);
  expect(r!.headers.connection?.toLowerCase()).toBe('close');
  expect(r!.headers['x-portcullis-reason']).toBe(reason);
  expect(r!.headers['x-upstream']).toBeUndefined();
}

/** Served sockets must stay open (keep-alive): the cap counts them, they are not closed by the sidecar. */
function expectStillOpen(conns: RawConn[]): void {
  const closed = conns.filter((c) => c.closed);
  expect(closed.length, `${closed.length} of ${conns.length} sockets that got a 200 were closed by the sidecar (error ${closed[0]?.error?.code ?? '-'})`).toBe(0);
}

async function openCount(sc: Sidecar, n: number): Promise<void> {
  await waitFor(`/stats connections.open == ${n}`, async () => (await sc.stats()).connections.open === n);
}

describe.each(RUNTIMES)('connections on %s', (runtime) => {
  afterEach(cleanup);

  it('onLimit reject: M+50 sockets -> exactly M held and serving, 50 get the minimal 503 with Connection: close; closing frees slots', async () => {
    const M = 30;
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { max: M, onLimit: 'reject', evictIdle: false } }) });

    const conns = await openSockets(sc.port, M + 50);
    await settle(conns);
    const held = conns.filter((c) => first(c)?.status === 200);
    const turned = conns.filter((c) => first(c)?.status !== 200);
    expect(held.length).toBe(M);
    expect(turned.length).toBe(50);
    for (const c of turned) expectSocketReject(c, 503, 'connection_limit');
    expectStillOpen(held);
    // Only the held sockets' requests reached the app.
    expect(up.count()).toBe(M);

    // The cap counts exactly the held sockets; turned-away ones are not counted.
    await openCount(sc, M);
    const stats = await sc.stats();
    expect(stats.connections.max).toBe(M);
    expect(stats.totals.byReason.connection_limit).toBe(50);

    // Every held socket can keep completing requests (keep-alive).
    const again = await Promise.all(held.map((c, i) => c.request(get(`/again/${i}`))));
    for (const r of again) expect(r.status).toBe(200);
    expect(up.count()).toBe(2 * M);

    // Closing 10 frees 10 slots: 10 new sockets are served, the 11th is turned away again.
    for (const c of held.slice(0, 10)) c.destroy();
    await openCount(sc, M - 10);
    const fresh = await openSockets(sc.port, 10);
    await settle(fresh);
    for (const c of fresh) {
      expect(c.closed).toBe(false);
      expect(first(c)?.status).toBe(200);
    }
    const extra = await openSockets(sc.port, 1);
    await settle(extra);
    expectSocketReject(extra[0]!, 503, 'connection_limit');
    await openCount(sc, M);
    expect((await sc.stats()).connections.open).toBe(M);
  });

  it('over the cap, a socket that has not spoken gets no unsolicited bytes; its request then gets the 503', async () => {
    const M = 3;
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { max: M, onLimit: 'reject', evictIdle: false } }) });
    const held = await openSockets(sc.port, M);
    await settle(held);
    // A client that opens a connection ahead of use must not read a response it never asked for.
    const silent = await connect(sc.port);
    await sleep(300);
    expect(silent.text()).toBe('');
    silent.socket.write(get('/late'));
    await waitFor('the 503 and the close', () => silent.closed);
    expectSocketReject(silent, 503, 'connection_limit');
    expect(up.count('/late')).toBe(0);
    for (const c of held) c.socket.destroy();
  });

  it('onLimit close: sockets over the cap are closed without a response', async () => {
    const M = 10;
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { max: M, onLimit: 'close', evictIdle: false } }) });

    const conns = await openSockets(sc.port, M + 50);
    await settle(conns);
    const held = conns.filter((c) => first(c)?.status === 200);
    const closed = conns.filter((c) => first(c)?.status !== 200);
    expect(held.length).toBe(M);
    expect(closed.length).toBe(50);
    expectStillOpen(held);
    for (const c of closed) expect(c.received, `closed socket received ${JSON.stringify(c.text().slice(0, 100))}`).toBe(0);
    expect(up.count()).toBe(M);
    await openCount(sc, M);
    expect((await sc.stats()).totals.byReason.connection_limit).toBe(50);

    // A freed slot is usable again.
    held[0]!.destroy();
    await openCount(sc, M - 1);
    const [next] = await openSockets(sc.port, 1);
    await settle([next!]);
    expect(next!.closed).toBe(false);
    expect(first(next!)?.status).toBe(200);
  });

  it('perClient socket cap: the client over its cap gets 429 client_connection_limit, another client is unaffected', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { max: 100, perClient: 3 } }) });

    const a = await openSockets(sc.port, 5, '127.0.0.2');
    await settle(a);
    const b = await openSockets(sc.port, 3, '127.0.0.3');
    await settle(b);

    const heldA = a.filter((c) => first(c)?.status === 200);
    expect(heldA.length).toBe(3);
    for (const c of a.filter((x) => first(x)?.status !== 200)) expectSocketReject(c, 429, 'client_connection_limit');
    for (const c of b) expect(first(c)?.status).toBe(200);
    expectStillOpen([...heldA, ...b]);
    await openCount(sc, 6);
    expect((await sc.stats()).totals.byReason.client_connection_limit).toBe(2);
    expect(up.count()).toBe(6);

    // Client A closing one socket lets it open one more.
    heldA[0]!.destroy();
    await openCount(sc, 5);
    const [again] = await openSockets(sc.port, 1, '127.0.0.2');
    await settle([again!]);
    expect(again!.closed).toBe(false);
    expect(first(again!)?.status).toBe(200);
  });

  it('evictIdle: at the cap a new socket takes the place of the longest-idle one; busy sockets are never closed', async () => {
    const M = 6;
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { max: M } }) });

    // Two sockets with a request held at the app (busy), two keep-alive idle after a 200, two that never spoke.
    const busy = await openSockets(sc.port, 2);
    for (const c of busy) c.write(get('/busy?gate=1')); // pipelined after the first GET: busy until released
    const served = await openSockets(sc.port, 2);
    await settle(served);
    const silent = [await connect(sc.port), await connect(sc.port)];
    await waitFor('2 held requests at the app', () => up.current('/busy') === 2);
    await openCount(sc, M);

    // Four newcomers, one after another: each takes the place of an idle socket (keep-alive or
    // silent), the busy ones stay. Every newcomer is served.
    const fresh: RawConn[] = [];
    for (let i = 0; i < 4; i++) {
      const [c] = await openSockets(sc.port, 1);
      await settle([c!]);
      fresh.push(c!);
    }
    for (const c of fresh) expect(first(c)?.status, `newcomer got ${JSON.stringify(c.text().slice(0, 120))}`).toBe(200);
    expectStillOpen(fresh);
    for (const c of [...served, ...silent]) await c.waitClosed();
    expect(busy.filter((c) => c.closed)).toEqual([]);
    await openCount(sc, M);
    expect((await sc.stats()).connections.evicted).toBe(4);

    // Now the four newcomers are the idle ones: the next newcomer evicts the one idle the longest.
    const [next] = await openSockets(sc.port, 1);
    await settle([next!]);
    expect(first(next!)?.status).toBe(200);
    await fresh[0]!.waitClosed();
    expect(fresh.slice(1).filter((c) => c.closed)).toEqual([]);

    // Every socket busy: nothing to evict, onLimit applies (503 connection_limit).
    up.closeGate();
    for (const c of [...fresh.slice(1), next!]) c.write(get('/busy?gate=1'));
    await waitFor('6 held requests at the app', () => up.current('/busy') === M);
    const [over] = await openSockets(sc.port, 1);
    await settle([over!]);
    expectSocketReject(over!, 503, 'connection_limit');
    up.release();
    for (const c of [...busy, ...fresh.slice(1), next!]) {
      await c.waitResponses(2);
      expect(c.responses()[1]!.status).toBe(200);
    }
    expect(busy.filter((c) => c.closed)).toEqual([]);
    const s = await sc.stats();
    expect(s.connections.open).toBe(M);
    expect(s.connections.evicted).toBe(5);
    expect(s.totals.byReason.connection_limit).toBe(1);
  });

  it('evictIdle: a flood of idle sockets many times the cap does not lock real clients out', async () => {
    const M = 50;
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { max: M } }) });
    const flood: RawConn[] = [];
    const served: number[] = [];
    // Interleaved: 10 silent sockets, then one real request on a fresh connection, 30 times (300 idle sockets vs a cap of 50).
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 10; i++) flood.push(await connect(sc.port));
      const [real] = await openSockets(sc.port, 1);
      await settle([real!]);
      served.push(first(real!)?.status ?? 0);
      real!.destroy();
    }
    expect(served.filter((s) => s !== 200)).toEqual([]);
    const s = await sc.stats();
    expect(s.connections.open).toBeLessThanOrEqual(M);
    expect(s.connections.evicted).toBeGreaterThanOrEqual(300 - M);
    expect(s.totals.rejected).toBe(0);
    expect(up.count()).toBe(30);
    for (const c of flood) c.destroy();
  });
});
