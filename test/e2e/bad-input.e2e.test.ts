/**
 * Hostile or broken clients, on Node and on Deno: malformed request lines, request smuggling
 * shapes (Content-Length with Transfer-Encoding, two different Content-Lengths, a bad chunk
 * size) get 400 and nothing reaches the app; a head larger than connections.maxHeaderSize
 * gets 431 (and one just under it passes); a head trickled in byte by byte (slowloris) is cut
 * after connections.headerTimeout while other clients are served normally meanwhile. After
 * each, the sidecar still serves and holds no permit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fire, type Result } from '../helpers/http-client.ts';
import { connect, exchange, get } from '../helpers/raw-http.ts';
import { RUNTIMES, cleanup, configFor, sleep, startSidecar } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

const MALFORMED: Array<{ name: string; bytes: string }> = [
  { name: 'a malformed request line', bytes: 'GET / HTTP/1.1 trailing-garbage\r\nHost: x\r\n\r\n' },
  { name: 'bytes that are not HTTP at all', bytes: '\x00\x01\x02 hello\r\n\r\n' },
  {
    name: 'both Content-Length and Transfer-Encoding',
    bytes: 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  },
  {
    name: 'two different Content-Lengths',
    bytes: 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  },
  {
    name: 'an invalid chunk size',
    bytes: 'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  },
];

describe.each(RUNTIMES)('bad input on %s', (runtime) => {
  afterEach(cleanup);

  it.each(MALFORMED)('$name -> 400, the app receives nothing', async ({ bytes }) => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url) });

    const r = await exchange(sc.port, bytes, { timeoutMs: 5000 });
    expect(r.responses[0]?.status, `got ${JSON.stringify(r.data.toString('latin1').slice(0, 200))} closed=${r.closed} error=${r.error}`).toBe(400);
    expect(r.responses[0]?.headers['x-upstream']).toBeUndefined();
    expect(r.closed).toBe(true);
    expect(up.count()).toBe(0);

    // The sidecar is unharmed: the next client is served, no permit is left behind.
    const ok = await exchange(sc.port, get('/after', { Connection: 'close' }), { responses: 1 });
    expect(ok.responses[0]?.status).toBe(200);
    expect(up.count()).toBe(1);
    expect(up.requests[0]?.path).toBe('/after');
    await sc.settled();
  });

  it('a head over connections.maxHeaderSize -> 431, one under it passes', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { maxHeaderSize: '4KiB' } }) });

    const small = await exchange(sc.port, get('/small', { 'X-Pad': 'a'.repeat(3000), Connection: 'close' }), { responses: 1 });
    expect(small.responses[0]?.status).toBe(200);
    // 8000 bytes is well under Node's own 16 KiB default: only the configured limit can refuse it.
    const big = await exchange(sc.port, get('/big', { 'X-Pad': 'a'.repeat(8000) }), { timeoutMs: 5000 });
    expect(big.responses[0]?.status, `got ${JSON.stringify(big.data.toString('latin1').slice(0, 200))} error=${big.error}`).toBe(431);
    expect(up.requests.map((r) => r.path)).toEqual(['/small']);
    await sc.settled();
  });

  it('a trickled head is cut after headerTimeout while other clients are served meanwhile', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url, { connections: { headerTimeout: '2s' } }) });

    // 60 bytes at one byte per 500 ms would take 30 s to arrive.
    const head = Buffer.from(get('/trickle', { 'X-Slow': 'abcdefghij' }));
    expect(head.length).toBeGreaterThan(40);
    const slow = await connect(sc.port);
    const t0 = Date.now();
    const trickling = (async () => {
      for (let i = 0; i < head.length && !slow.closed; i++) {
        await slow.write(head.subarray(i, i + 1));
        await sleep(500);
      }
    })();

    // Meanwhile, others are served normally, several times over.
    const served: Result[] = [];
    while (!slow.closed && Date.now() - t0 < 10_000) {
      served.push(...(await fire(sc.port, 5, { path: '/meanwhile' })));
      await slow.waitUntil('close', (c) => c.closed, 300).catch(() => {});
    }
    expect(slow.closed).toBe(true);
    const closedAfter = (slow.closedAt as number) - t0;
    // Not cut early (the head had 2 s), and cut long before it could have finished (30 s).
    expect(closedAfter).toBeGreaterThanOrEqual(1500);
    expect(closedAfter).toBeLessThan(8000);
    await trickling;
    // Cut with a 408 or without any answer; never a forwarded request.
    const answer = slow.received > 0 ? slow.responses()[0]?.status : undefined;
    if (answer !== undefined) expect(answer).toBe(408);
    expect(served.length).toBeGreaterThanOrEqual(10);
    for (const r of served) expect(r.status, r.error).toBe(200);
    expect(up.requests.filter((r) => r.path === '/trickle')).toEqual([]);
    expect(up.count()).toBe(served.length);
  });
});
