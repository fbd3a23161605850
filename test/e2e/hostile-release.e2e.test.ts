/**
 * Issue 10, the release half, on Node and on Deno: however an exchange ends, its permit and its
 * socket slot are released exactly once (pipelined requests on a socket that closes, queued
 * waiters whose pipelined client left); a 1xx from the app never kills the response; an
 * `Expect: 100-continue` is answered only once the request is admitted; and a throw while
 * serving one request (an app reason phrase node refuses to write) is answered, counted and
 * logged while the process keeps serving.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from '../helpers/http-client.ts';
import { connect, get } from '../helpers/raw-http.ts';
import { RUNTIMES, cleanup, configFor, limiter, onCleanup, startSidecar, waitFor, type Sidecar, type Stats } from '../helpers/sidecar.ts';
import { serveOnLoopback, startUpstream } from '../helpers/upstream.ts';

/** /stats with the fields this file checks beyond the shared Stats type. */
type FullStats = Stats & {
  active: number;
  connections: Stats['connections'] & { busy?: number };
  totals: Stats['totals'] & { abandoned: number; internalError?: number };
};

/** Every count back to 0: limiters idle with acquired == released, no active exchange, no busy socket. */
async function allReleased(sc: Sidecar, timeoutMs = 8000): Promise<FullStats> {
  return waitFor(
    'every limiter idle, acquired == released, active 0, no busy socket',
    async () => {
      const s = (await sc.stats()) as FullStats;
      const idle = s.limiters.every((l) => l.inflight === 0 && l.queued === 0 && l.acquired === l.released);
      if (idle && s.active === 0 && s.connections.busy === 0) return s;
      // Thrown, so a timeout shows what was left.
      throw new Error(`active ${s.active}, busy ${s.connections.busy}, limiters ${JSON.stringify(s.limiters)}`);
    },
    { timeoutMs },
  );
}

/** A node:http app on 127.0.0.1:0 with a custom handler (stopped on cleanup). */
async function startApp(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  return serveOnLoopback(server);
}

/** A raw TCP "app" that answers every request head with `answer(path)` (for bytes node:http will not write). */
async function startRawApp(answer: (path: string) => Buffer): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const path = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '/';
        s.write(answer(path));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe.each(RUNTIMES)('hostile release on %s', (runtime) => {
  afterEach(cleanup);

  it('issue 10: pipelined requests on a socket closed after 100 ms release their permits', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { inflight: { max: 4 } }) });
    for (let k = 0; k < 6; k++) {
      const c = await connect(sc.port);
      let ten = '';
      for (let i = 0; i < 10; i++) ten += get(`/p/${k}/${i}?ms=300`);
      await c.write(ten);
      await new Promise((r) => setTimeout(r, 100));
      c.destroy();
    }
    const s = await allReleased(sc);
    expect(limiter(s, 'global').acquired).toBeGreaterThan(0);
    // The cap is free again: a later request is served, not refused.
    const r = await request(sc.port, { path: '/after' });
    expect(r.status).toBe(200);
    await allReleased(sc);
    // Pipelined responses waiting on one socket share one 'close' listener, not one each.
    expect(sc.stderr()).not.toMatch(/MaxListenersExceeded/);
  });

  it('issue 10: a queued waiter whose pipelined client is gone is never forwarded', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, { inflight: { max: 1, queue: { size: 20, timeout: '20s' } } }),
    });
    const holder = await connect(sc.port, { send: get('/hold?gate=1') });
    await waitFor('the holder at the app', () => up.current() === 1);
    const b = await connect(sc.port);
    await b.write(get('/b/0') + get('/b/1') + get('/b/2'));
    // Node hands every pipelined request to the handler at once; Deno one after another.
    await waitFor('a pipelined request queued', async () => limiter(await sc.stats(), 'global').queued >= 1);
    b.destroy();
    await waitFor('the gone client out of the queue', async () => limiter(await sc.stats(), 'global').queued === 0);
    up.release();
    await holder.waitResponses(1);
    const s = await allReleased(sc);
    expect(up.count('/b')).toBe(0);
    expect(s.totals.abandoned).toBeGreaterThanOrEqual(1);
    expect(limiter(s, 'global').acquired).toBe(1);
  });

  it('issue 10: a 103 Early Hints (and a 102) from the app never kills the response', async () => {
    const app = await startApp((req, res) => {
      res.writeProcessing();
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' }, () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
        res.end('ok');
      });
    });
    const sc = await startSidecar({ runtime, config: configFor(app) });
    const c = await connect(sc.port);
    await c.write(get('/hints'));
    await c.waitUntil('a final response', (x) => x.responses().some((r) => r.status >= 200));
    const all = c.responses();
    const last = all[all.length - 1]!;
    expect(last.status, JSON.stringify(c.text().slice(0, 300))).toBe(200);
    expect(last.body.toString()).toBe('ok');
    // 103 passes to the client with its Link; no other 1xx is relayed.
    const early = all.filter((r) => r.status < 200);
    expect(early.map((r) => r.status)).toEqual([103]);
    expect(early[0]?.headers.link).toBe('</style.css>; rel=preload; as=style');
    // The connection stays usable.
    await c.write(get('/again'));
    await c.waitUntil('a second final response', (x) => x.responses().filter((r) => r.status >= 200).length === 2);
    await allReleased(sc);
  });

  it('issue 10: Expect: 100-continue is answered only after admission; a rejected client never sees 100', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { inflight: { max: 1 } }) });
    const holder = await connect(sc.port, { send: get('/hold?gate=1') });
    await waitFor('the holder at the app', () => up.current() === 1);

    const rejected = await connect(sc.port);
    const head = 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n';
    const r = await rejected.request(head);
    expect(rejected.responses().map((x) => x.status)).toEqual([503]);
    expect(r.headers['x-portcullis-reason']).toBe('inflight_limit');
    // The body a client sends anyway never reaches the app.
    await rejected.write('hello');
    up.release();
    await holder.waitResponses(1);
    expect(up.count('/upload')).toBe(0);

    // Admitted: 100 first, then the body goes through.
    const ok = await connect(sc.port);
    await ok.write(head);
    await ok.waitUntil('100 Continue', (x) => x.responses().length >= 1);
    expect(ok.responses()[0]?.status).toBe(100);
    const done = await ok.request('hello');
    expect(done.status).toBe(200);
    expect(JSON.parse(done.body.toString())).toEqual({ bytes: 5 });
    await allReleased(sc);
  });

  it('issue 10: a queued Expect: 100-continue request gets its 100 only when admitted', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, { inflight: { max: 1, queue: { size: 5, timeout: '20s' } } }),
    });
    const holder = await connect(sc.port, { send: get('/hold?gate=1') });
    await waitFor('the holder at the app', () => up.current() === 1);
    const q = await connect(sc.port);
    await q.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await waitFor('the upload queued', async () => limiter(await sc.stats(), 'global').queued === 1);
    // A round trip to the admin port later, still nothing: node would have written 100 before queuing.
    await sc.stats();
    expect(q.received).toBe(0);
    up.release();
    await q.waitUntil('100 Continue once admitted', (x) => x.responses().length >= 1);
    expect(q.responses()[0]?.status).toBe(100);
    const done = await q.request('hello');
    expect(JSON.parse(done.body.toString())).toEqual({ bytes: 5 });
    await holder.waitResponses(1);
    await allReleased(sc);
  });

  it('issue 10: a throw while serving one request (an app reason phrase node refuses) is answered and counted; the process keeps serving', async () => {
    // obs-text in the reason phrase is legal on the wire and llhttp lets it through; undici
    // decodes it as UTF-8 (U+FFFD), which node's writeHead refuses with ERR_INVALID_CHAR.
    const app = await startRawApp((path) =>
      path.startsWith('/bad')
        ? Buffer.concat([Buffer.from('HTTP/1.1 200 '), Buffer.from([0xff, 0xfe]), Buffer.from('\r\ncontent-length: 2\r\n\r\nok')])
        : Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'),
    );
    const sc = await startSidecar({ runtime, config: configFor(app, { inflight: { max: 2 } }) });
    for (let i = 0; i < 3; i++) {
      const r = await request(sc.port, { path: `/bad/${i}` });
      expect(r.error, r.error).toBeUndefined();
      expect(r.status).toBe(500);
      expect(r.headers['x-portcullis-error']).toBe('internal_error');
    }
    const ok = await request(sc.port, { path: '/good' });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('ok');
    const line = await sc.waitForLog('internal error', (l) => l.msg === 'internal error');
    expect(line.level).toBe('error');
    expect(line.where).toBe('response head');
    expect(sc.logs().some((l) => l.msg === 'uncaught error' || l.msg === 'fatal')).toBe(false);
    const s = await allReleased(sc);
    expect(s.totals.internalError).toBe(3);
    expect(limiter(s, 'global').acquired).toBe(4);
  });
});
