/**
 * Issue 12, thinking like the person trying to switch the adaptive limit off: a client sets the
 * pace of its own exchange (it trickles its request body, or stops reading its answer), so if
 * that time counted as the app's latency, a handful of such clients would teach a gradient
 * limit that the app is congested and drive it down to `min`, turning everybody else away. The
 * RTT sample starts once the request body is in and ends when the app's answer is done, and an
 * exchange whose answer waited for its reader teaches nothing. Likewise a client that can make
 * the app fail (a path that answers 500) must not be able to shed everybody else with a trickle
 * of such requests: failures are congestion only when they are a share of the interval's answers.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fire } from '../helpers/http-client.ts';
import { RUNTIMES, cleanup, configFor, limiter, onCleanup, sleep, startSidecar } from '../helpers/sidecar.ts';
import { serveOnLoopback, startUpstream } from '../helpers/upstream.ts';

afterEach(cleanup);

const INITIAL = 30;

/** A POST whose 3000-byte body arrives over ~1.2 s in 100-byte pieces; resolves with the status line. */
function slowUpload(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => s.destroy());
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    s.on('error', reject);
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    s.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\nConnection: close\r\n\r\n');
    let sent = 0;
    const t = setInterval(() => {
      s.write(Buffer.alloc(100, 0x61));
      if ((sent += 100) >= 3000) clearInterval(t);
    }, 40);
    onCleanup(() => clearInterval(t));
  });
}

/** A GET of 8 MiB whose client reads nothing for 2 s, then everything; resolves with the status line. */
function slowRead(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => s.destroy());
    let head = '';
    s.on('data', (d: Buffer) => {
      if (head.length < 64) head += d.toString('latin1', 0, Math.min(d.length, 64));
    });
    s.on('error', reject);
    s.on('close', () => resolve(head.split('\r\n')[0] ?? ''));
    s.write(`GET /download?bytes=${8 * 1024 * 1024} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
    s.pause();
    setTimeout(() => s.resume(), 2000);
  });
}

describe.each(RUNTIMES)('issue 12: clients cannot drive an adaptive limit down (%s)', (runtime) => {
  it('slow uploaders and slow readers do not count as app latency: the limit holds', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        routes: [
          {
            name: 'r',
            match: { prefix: '/' },
            inflight: { adaptive: { algorithm: 'gradient', min: 2, max: 100, initial: INITIAL, tolerance: 1.5 } },
          },
        ],
      }),
    });
    // Light load first: the no-load latency (a millisecond or two) is learnt from these.
    for (let i = 0; i < 10; i++) await fire(sc.port, 8, { path: '/' });
    expect(limiter(await sc.stats(), 'route:r').adaptive?.minRttMs).toBeGreaterThan(0);

    // Three rounds of 14 slow readers, then 14 slow uploaders: 28 in flight, near the limit, so
    // the gradient counts the limit as used and acts on what they teach it. The uploads are
    // answered (at ~1.2 s) while the readers still read nothing, and the readers' 112 MiB move
    // after that (at 2 s), so neither's own work is in the other's latency.
    const lows: number[] = [];
    for (let round = 0; round < 3; round++) {
      const readers = Array.from({ length: 14 }, () => slowRead(sc.port));
      await sleep(50);
      const clients = [...readers, ...Array.from({ length: 14 }, () => slowUpload(sc.port))];
      const statuses = await Promise.all(clients);
      for (const st of statuses) expect(st).toMatch(/^HTTP\/1\.1 (200|503)/);
      lows.push(limiter(await sc.stats(), 'route:r').max);
      await sleep(50);
    }
    const l = limiter(await sc.stats(), 'route:r');
    // Before the fix the limit fell to min (2) in the first round; it must not have shrunk.
    const moves = sc.logs().filter((x) => x.msg === 'limit changed').map((x) => JSON.stringify(x));
    expect(Math.min(...lows), `limit after each round: ${lows.join(', ')}\n${moves.join('\n')}`).toBeGreaterThanOrEqual(INITIAL);
    expect(l.adaptive?.sampleRttMs ?? 0).toBeLessThan(200);
    const settled = await sc.settled();
    expect(limiter(settled, 'route:r')).toMatchObject({ inflight: 0, queued: 0 });
  }, 60_000);
});

describe.each(RUNTIMES)('issue 12: a trickle of app errors does not shed everyone (%s)', (runtime) => {
  it('one request in twenty answered 500 does not drive the limit down; most answers failing does', async () => {
    // 500 at once on /boom, everything else 200 after 5 ms.
    const app = http.createServer((req, res) => {
      if (req.url?.startsWith('/boom')) return void res.writeHead(500).end('boom');
      setTimeout(() => res.end('ok'), 5);
    });
    onCleanup(() => new Promise<void>((r) => app.close(() => r())));
    app.keepAliveTimeout = 100;
    const url = await serveOnLoopback(app);
    const sc = await startSidecar({
      runtime,
      config: configFor(url, {
        routes: [{ name: 'r', match: { prefix: '/' }, inflight: { adaptive: { algorithm: 'aimd', min: 2, max: 100, initial: INITIAL } } }],
      }),
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    onCleanup(() => agent.destroy());
    const get = (path: string) =>
      new Promise<number>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: sc.port, path, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(0));
      });
    // Closed loop of 24 clients (the limit counts as used), of which every 20th request is /boom.
    const run = async (ms: number, every: number) => {
      const until = Date.now() + ms;
      const statuses: number[] = [];
      let n = 0;
      await Promise.all(
        Array.from({ length: 24 }, async () => {
          while (Date.now() < until) statuses.push(await get(++n % every === 0 ? '/boom' : '/'));
        }),
      );
      return statuses;
    };
    const trickle = await run(2500, 20);
    expect(trickle.filter((s) => s === 500).length).toBeGreaterThan(20);
    const afterTrickle = limiter(await sc.stats(), 'route:r').max;
    expect(afterTrickle, 'a 5% trickle of 500s must not lower the limit').toBeGreaterThanOrEqual(INITIAL);
    // Half the answers failing is the app in trouble: the limit backs off.
    await run(1500, 2);
    expect(limiter(await sc.stats(), 'route:r').max).toBeLessThan(afterTrickle);
    await sc.settled();
  }, 60_000);
});
