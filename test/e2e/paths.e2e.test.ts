/**
 * Issue 10, item 3: what a route matched is what the app runs (DESIGN invariant 8). Two real
 * kinds of app sit behind portcullis: aiohttp (routes on the percent-decoded path) and a
 * WHATWG-URL server (resolves dot segments, takes `\` for `/`). Route `slow` caps the app's /slow
 * handler at 1 with no queue, and `/healthz` is a bypass prefix route. One canonical /slow is held
 * in the app; then every other spelling must be turned away (503 by the route cap, or 400 as a bad
 * path) or reach a handler other than /slow: the app's /slow handler never runs twice at once.
 *
 * Item 7 (request-target and Host parts): a duplicate Host is a 400 before admission, and
 * `OPTIONS *` is answered by portcullis; neither is logged as an upstream fault.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { exchange, get, type RawResponse } from '../helpers/raw-http.ts';
import { RUNTIMES, cleanup, configFor, startSidecar, type Sidecar } from '../helpers/sidecar.ts';
import { HAS_AIOHTTP, startPathApp, type PathApp, type PathAppKind } from '../helpers/path-apps.ts';
import { startUpstream } from '../helpers/upstream.ts';

/** capped: 503 from route slow's cap; bad: 400 bad_path; other: the app ran another handler on exactly this target. */
type Outcome = 'capped' | 'bad' | { other: string };

interface Spelling {
  target: string;
  /** By app kind when the two differ. */
  expect: Outcome | Record<PathAppKind, Outcome>;
}

const DEFAULT_SPELLINGS: Spelling[] = [
  { target: '/%73low', expect: 'capped' },
  { target: '/sl%6Fw', expect: 'capped' },
  { target: '/x/../slow', expect: 'capped' },
  { target: '/./slow', expect: 'capped' },
  { target: '/slow/.', expect: { other: '/slow/' } },
  { target: '//slow', expect: 'capped' },
  { target: '/x/..//slow', expect: 'capped' },
  { target: '/healthz/../slow', expect: 'capped' },
  { target: '/healthz/%2e%2e/slow', expect: 'capped' },
  { target: '/%2e%2e/slow', expect: 'capped' },
  { target: '/x/%2E%2E/slow', expect: 'capped' },
  { target: '/x/.%2e/slow', expect: 'capped' },
  { target: '/SLOW', expect: { other: '/SLOW' } },
  { target: '/x%2F..%2Fslow', expect: 'bad' },
  { target: '/x%5c..%5cslow', expect: 'bad' },
  { target: '/x\\..\\slow', expect: 'bad' },
  { target: '/x/..\\slow', expect: 'bad' },
  { target: 'http://x/slow', expect: 'capped' },
  { target: 'HTTP://x:80/x/../slow?q=1', expect: 'capped' },
  { target: '/slow?q=/../x', expect: 'capped' },
  { target: '/slow#/../x', expect: 'capped' },
  { target: '/slow%00', expect: 'bad' },
  { target: '/slow%', expect: 'bad' },
  { target: '/%G1/../slow', expect: 'bad' },
  { target: '/x/%2e%2/../slow', expect: 'bad' },
];

const KEEP_SPELLINGS: Spelling[] = [
  { target: '/x%2F..%2Fslow', expect: { other: '/x%2F..%2Fslow' } },
  { target: '/x%5c..%5cslow', expect: { other: '/x%5C..%5Cslow' } },
  // A WHATWG server would take a raw `\` for `/`: it is sent on as %5C, which nobody takes for one.
  { target: '/x\\..\\slow', expect: { other: '/x%5C..%5Cslow' } },
  { target: '/x/..%2Fslow', expect: { other: '/x/..%2Fslow' } },
  { target: '/x/../slow', expect: 'capped' },
];

const DECODE_SPELLINGS: Spelling[] = [
  { target: '/x%2F..%2Fslow', expect: 'capped' },
  { target: '/x%5c..%5cslow', expect: 'capped' },
  { target: '/x\\..\\slow', expect: 'capped' },
  { target: '/x/..%2fslow', expect: 'capped' },
  { target: '/a%2Fb', expect: { other: '/a/b' } },
];

const MERGE_SPELLINGS: Spelling[] = [
  { target: '/x//../slow', expect: 'capped' },
  { target: '///slow', expect: 'capped' },
  { target: '/slow//', expect: { other: '/slow/' } },
  { target: '/a//b/./', expect: { other: '/a/b/' } },
];

const NO_MERGE_SPELLINGS: Spelling[] = [
  { target: '/x//../slow', expect: { other: '/x/slow' } },
  { target: '///slow', expect: 'capped' },
  { target: '/a//b', expect: { other: '/a//b' } },
];

const ROUTES = [
  { name: 'probes', match: { prefix: '/healthz' }, bypass: true },
  { name: 'slow', match: { exact: '/slow' }, inflight: { max: 1, queue: { size: 0 } } },
];

const APPS: PathAppKind[] = HAS_AIOHTTP ? ['aiohttp', 'whatwg'] : ['whatwg'];

function request(target: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: portcullis.test\r\nConnection: close\r\n\r\n`;
}

function describeResponse(r: RawResponse | undefined): string {
  if (r === undefined) return 'no response';
  const why = r.headers['x-portcullis-reason'] ?? r.headers['x-portcullis-error'] ?? '';
  return `${r.status}${why ? ` ${why}` : ''} ${r.body.toString('latin1').trim().slice(0, 80)}`;
}

/**
 * Holds one canonical /slow in the app, sends every spelling, and returns what went wrong (an
 * empty list when all is well); then releases the held request and checks it completes.
 */
async function checkSpellings(sc: Sidecar, app: PathApp, spellings: Spelling[]): Promise<string[]> {
  const wrong: string[] = [];
  const held = exchange(sc.port, request('/slow'), { timeoutMs: 20_000, responses: 1 });
  // The canonical request is inside the app's /slow handler before any spelling is tried.
  for (let i = 0; i < 200 && (await app.state()).slowCurrent < 1; i++) await new Promise((r) => setTimeout(r, 25));
  if ((await app.state()).slowCurrent !== 1) wrong.push('the canonical /slow never reached the app');

  for (const s of spellings) {
    const want = typeof s.expect === 'string' || 'other' in s.expect ? (s.expect as Outcome) : s.expect[app.kind];
    const before = (await app.state()).seen.length;
    const r = await exchange(sc.port, request(s.target), { timeoutMs: 5000, responses: 1 });
    const got = r.responses[0];
    const after = await app.state();
    const reached = after.seen.slice(before);
    const label = `${JSON.stringify(s.target)} (want ${JSON.stringify(want)}): got ${describeResponse(got)}; app ran ${JSON.stringify(reached)}`;
    if (want === 'capped') {
      if (got?.status !== 503 || got.headers['x-portcullis-reason'] !== 'inflight_limit' || reached.length > 0) wrong.push(label);
    } else if (want === 'bad') {
      if (got?.status !== 400 || got.headers['x-portcullis-error'] !== 'bad_path' || reached.length > 0) wrong.push(label);
    } else if (reached.length !== 1 || reached[0]?.route === 'slow' || reached[0]?.target !== want.other) {
      wrong.push(label);
    }
  }

  const st = await app.state();
  if (st.slowCount !== 1 || st.slowPeak !== 1) wrong.push(`the app's /slow handler ran ${st.slowCount} times, ${st.slowPeak} at once (cap 1)`);
  await app.release();
  const canonical = (await held).responses[0];
  if (canonical?.status !== 200) wrong.push(`the canonical /slow got ${describeResponse(canonical)}`);
  await sc.settled();
  return wrong;
}

describe.each(RUNTIMES)('paths on %s', (runtime) => {
  afterEach(cleanup);

  describe.each(APPS)('behind a real %s app', (kind) => {
    it('issue 10: every spelling of /slow that reaches the app is counted against route slow (defaults)', async () => {
      const app = await startPathApp(kind);
      const sc = await startSidecar({ runtime, config: configFor(app.url, { routes: ROUTES }) });
      expect(await checkSpellings(sc, app, [...DEFAULT_SPELLINGS, ...NO_MERGE_SPELLINGS])).toEqual([]);
    });

    it('issue 10: escaped slashes per paths.escapedSlashes: keep and decode', async () => {
      const app = await startPathApp(kind);
      const keep = await startSidecar({ runtime, config: configFor(app.url, { routes: ROUTES, paths: { escapedSlashes: 'keep' } }) });
      expect(await checkSpellings(keep, app, KEEP_SPELLINGS)).toEqual([]);
      const app2 = await startPathApp(kind);
      const decode = await startSidecar({ runtime, config: configFor(app2.url, { routes: ROUTES, paths: { escapedSlashes: 'decode' } }) });
      expect(await checkSpellings(decode, app2, DECODE_SPELLINGS)).toEqual([]);
    });

    it('issue 10: paths.mergeSlashes merges runs of slashes before matching', async () => {
      const app = await startPathApp(kind);
      const sc = await startSidecar({ runtime, config: configFor(app.url, { routes: ROUTES, paths: { mergeSlashes: true } }) });
      expect(await checkSpellings(sc, app, MERGE_SPELLINGS)).toEqual([]);
    });

    it('issue 10: the app receives exactly the normalized target, query kept as sent', async () => {
      const app = await startPathApp(kind);
      const sc = await startSidecar({ runtime, config: configFor(app.url, { routes: ROUTES }) });
      await app.release();
      const cases: Array<[string, string, string]> = [
        ['/x/../sl%6fw?q=%2e%2E/../a&b=%7e', 'slow', '/slow?q=%2e%2E/../a&b=%7e'],
        ['http://other.test/a/./b/%7euser/%41%3a%3F', 'other', '/a/b/~user/A%3A%3F'],
        ['/x/../healthz?x', 'healthz', '/healthz?x'],
      ];
      for (const [target, route, want] of cases) {
        const before = (await app.state()).seen.length;
        const r = await exchange(sc.port, request(target), { timeoutMs: 5000, responses: 1 });
        expect(r.responses[0]?.status, describeResponse(r.responses[0])).toBe(route === 'other' ? 404 : 200);
        const seen = (await app.state()).seen.slice(before);
        expect(seen.map((x) => [x.route, x.target])).toEqual([[route, want]]);
      }
      await sc.settled();
    });
  });

  describe('request target and Host', () => {
    const upstreamFaults = (sc: Sidecar) => sc.logs().filter((l) => l.msg === 'upstream error' || /upstream_/.test(String(l['error'] ?? '')));

    it('issue 10: a duplicate Host header is a 400 before admission, not an upstream fault', async () => {
      const up = await startUpstream();
      const sc = await startSidecar({ runtime, config: configFor(up.url) });
      for (const hosts of [['a.test', 'b.test'], ['a.test', 'a.test']]) {
        const head = `GET /dup HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}Connection: close\r\n\r\n`;
        const r = await exchange(sc.port, head, { timeoutMs: 5000, responses: 1 });
        expect(r.responses[0]?.status, describeResponse(r.responses[0])).toBe(400);
        expect(r.responses[0]?.headers['x-portcullis-error']).toBe('bad_host');
      }
      expect(up.count()).toBe(0);
      const ok = await exchange(sc.port, get('/after', { Connection: 'close' }), { responses: 1 });
      expect(ok.responses[0]?.status).toBe(200);
      const s = await sc.settled();
      expect(s.totals).not.toHaveProperty('upstream_reset');
      expect(upstreamFaults(sc)).toEqual([]);
    });

    it('issue 10: an upgrade is forwarded with the normalized target; a bad path or a second Host is refused before the app', async () => {
      const up = await startUpstream();
      const sc = await startSidecar({ runtime, config: configFor(up.url) });
      const upgrade = (target: string, extra = '') =>
        `GET ${target} HTTP/1.1\r\nHost: portcullis.test\r\n${extra}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
      const ok = await exchange(sc.port, upgrade('/x/../w%73?q=%2e'), { timeoutMs: 5000, responses: 1 });
      expect(ok.responses[0]?.status, describeResponse(ok.responses[0])).toBe(101);
      expect(up.requests.map((q) => q.url)).toEqual(['/ws?q=%2e']);
      const bad = await exchange(sc.port, upgrade('/ws%00'), { timeoutMs: 5000, responses: 1 });
      expect(bad.responses[0]?.status, describeResponse(bad.responses[0])).toBe(400);
      expect(bad.responses[0]?.headers['x-portcullis-error']).toBe('bad_path');
      const dup = await exchange(sc.port, upgrade('/ws', 'Host: other.test\r\n'), { timeoutMs: 5000, responses: 1 });
      expect(dup.responses[0]?.status, describeResponse(dup.responses[0])).toBe(400);
      expect(dup.responses[0]?.headers['x-portcullis-error']).toBe('bad_host');
      expect(up.count()).toBe(1);
      await sc.settled();
      expect(upstreamFaults(sc)).toEqual([]);
    });

    it('issue 10: OPTIONS * is answered by portcullis (200), other methods with * are 400; no upstream fault', async () => {
      const up = await startUpstream();
      const sc = await startSidecar({ runtime, config: configFor(up.url) });
      const r = await exchange(sc.port, 'OPTIONS * HTTP/1.1\r\nHost: portcullis.test\r\nConnection: close\r\n\r\n', { timeoutMs: 5000, responses: 1 });
      expect(r.responses[0]?.status, describeResponse(r.responses[0])).toBe(200);
      expect(r.responses[0]?.headers['content-length']).toBe('0');
      const g = await exchange(sc.port, 'GET * HTTP/1.1\r\nHost: portcullis.test\r\nConnection: close\r\n\r\n', { timeoutMs: 5000, responses: 1 });
      expect(g.responses[0]?.status, describeResponse(g.responses[0])).toBe(400);
      expect(g.responses[0]?.headers['x-portcullis-error']).toBe('bad_path');
      expect(up.count()).toBe(0);
      await sc.settled();
      expect(upstreamFaults(sc)).toEqual([]);
    });
  });
});
