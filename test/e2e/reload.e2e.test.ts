/**
 * Live reload from a ConfigMap volume, on Node and on Deno (issue 4): the kubelet's atomic
 * `..data` swap is picked up by the directory watch (and by the hash poll when watching is off,
 * and on SIGHUP); limits resize in place (raising wakes the queue at once, lowering admits
 * nothing new until the count falls); every invalid content keeps the running config and is
 * reported on /config and in the log; restart-only changes are named, not applied; and 50
 * reloads under load drop nothing and never let a limiter exceed its max.
 */
import http from 'node:http';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { fire, request, type Result } from '../helpers/http-client.ts';
import { configMapVolume, type ConfigMapVolume } from '../helpers/configmap.ts';
import { RUNTIMES, cleanup, configFor, limiter, sleep, startSidecar, waitFor, type Sidecar, type Stats } from '../helpers/sidecar.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

type Plain = Record<string, unknown>;
const yaml = (up: Upstream, patch: Plain) => JSON.stringify(configFor(up.url, patch), null, 2);

interface LastReload {
  at: string;
  result: string;
  version?: string;
  error?: string;
}

async function lastReload(sc: Sidecar): Promise<LastReload | null> {
  return (await sc.config()).lastReload as LastReload | null;
}

async function globalMax(sc: Sidecar): Promise<number> {
  return limiter(await sc.stats(), 'global').max;
}

describe.each(RUNTIMES)('config reload (%s)', (runtime) => {
  afterEach(cleanup);

  const start = (cm: ConfigMapVolume) => startSidecar({ runtime, args: ['--config', cm.file] });

  it('applies a kubelet ..data swap within 2 s with the directory watch', async () => {
    const up = await startUpstream();
    const cm = configMapVolume(yaml(up, { inflight: { max: 5 } }));
    const sc = await start(cm);
    expect(await globalMax(sc)).toBe(5);
    const before = (await sc.config()).version;

    const t0 = performance.now();
    cm.update(yaml(up, { inflight: { max: 7 } }));
    await waitFor('max 7 in force', async () => (await globalMax(sc)) === 7, { timeoutMs: 2000, intervalMs: 5 });
    const ms = Math.round(performance.now() - t0);
    // Not a pass/fail timing (the 2 s bound above is the contract); printed for the issue note.
    console.log(`[reload] ${runtime}: kubelet swap to limit in force: ${ms} ms (watch, debounce 100ms)`);

    const c = await sc.config();
    expect(c.version).not.toBe(before);
    expect(await lastReload(sc)).toMatchObject({ result: 'applied', version: c.version });
    expect(sc.logs().some((l) => l.msg === 'config reloaded' && l.trigger === 'watch')).toBe(true);
    // The old payload directory is gone; the new limit really applies to requests.
    const r = await request(sc.port, { path: '/ok' });
    expect(r.status).toBe(200);
  });

  it('applies within the poll interval + 1 s with watching off', async () => {
    const up = await startUpstream();
    const cm = configMapVolume(yaml(up, { inflight: { max: 5 }, reload: { watch: false, pollInterval: '1s' } }));
    const sc = await start(cm);
    cm.update(yaml(up, { inflight: { max: 8 }, reload: { watch: false, pollInterval: '1s' } }));
    await waitFor('max 8 in force', async () => (await globalMax(sc)) === 8, { timeoutMs: 2000, intervalMs: 10 });
    expect(sc.logs().some((l) => l.msg === 'config reloaded' && l.trigger === 'poll')).toBe(true);
  });

  it('reloads on SIGHUP', async () => {
    const up = await startUpstream();
    const cm = configMapVolume(yaml(up, { inflight: { max: 5 }, reload: { watch: false, pollInterval: 0 } }));
    const sc = await start(cm);
    cm.update(yaml(up, { inflight: { max: 11 }, reload: { watch: false, pollInterval: 0 } }));
    await sleep(300);
    expect(await globalMax(sc)).toBe(5); // nothing watches, nothing polls
    sc.kill('SIGHUP');
    await waitFor('max 11 after SIGHUP', async () => (await globalMax(sc)) === 11);
    expect(sc.logs().some((l) => l.msg === 'config reloaded' && l.trigger === 'SIGHUP')).toBe(true);
  });

  it('keeps the running config and reports every kind of invalid content', async () => {
    const up = await startUpstream();
    const good = yaml(up, { inflight: { max: 5 } });
    const cm = configMapVolume(good);
    const sc = await start(cm);
    const version = (await sc.config()).version;

    const cases: Array<[string, () => void, RegExp]> = [
      ['bad YAML', () => cm.update('inflight: { max: 5\nroutes: [\n'), /portcullis\.yaml:\d+:\d+: /],
      ['unknown key', () => cm.update(yaml(up, { inflight: { max: 9, maxx: 1 } })), /:\d+:\d+: inflight\.maxx: unknown key "maxx"/],
      ['wrong type', () => cm.update(yaml(up, { inflight: { max: 'lots' } })), /:\d+:\d+: inflight\.max: .*"lots"/],
      ['out of range', () => cm.update(yaml(up, { inflight: { max: -1 } })), /:\d+:\d+: inflight\.max: must be >= 0, got -1/],
      ['empty file', () => cm.update(''), /empty/],
      ['half-written file', () => cm.update(good.slice(0, Math.floor(good.length / 2))), /portcullis\.yaml:\d+:\d+: /],
      ['..data pointing nowhere', () => cm.breakData(), /cannot read the file/],
      ['file removed', () => rmSync(cm.file), /cannot read the file/],
    ];
    for (const [name, breakIt, expected] of cases) {
      const seen = (await lastReload(sc))?.at;
      breakIt();
      const lr = await waitFor(`${name}: reported on /config`, async () => {
        const l = await lastReload(sc);
        return l && l.at !== seen && l.result === 'invalid' ? l : undefined;
      });
      expect(lr.error, name).toMatch(expected);
      expect((await sc.config()).version, name).toBe(version);
      expect(await globalMax(sc), name).toBe(5);
      expect((await sc.admin('/readyz')).status, name).toBe(200);
      expect((await request(sc.port, { path: '/ok' })).status, name).toBe(200);
      // Put the good file back: the failure is over, and the next one is reported afresh.
      cm.update(good);
      await waitFor(`${name}: recovered`, async () => (await lastReload(sc))?.result === 'unchanged');
    }
    const invalid = sc.logs().filter((l) => l.msg === 'config invalid');
    expect(invalid.length).toBe(cases.length);
    for (const l of invalid) expect(l.kept).toBe(version);
  });

  it('issue 10: a reload with a value the data path cannot send or a timer cannot keep is refused; rejects keep working', async () => {
    const up = await startUpstream();
    // max 0: every request is rejected, so the reject response is what is exercised.
    const good = yaml(up, { inflight: { max: 0 } });
    const cm = configMapVolume(good);
    const sc = await start(cm);
    const version = (await sc.config()).version;
    const cases: Array<[string, Plain, RegExp]> = [
      ['contentType with CR LF', { inflight: { max: 0 }, reject: { contentType: 'text/plain\r\nx-injected: 1' } }, /reject\.contentType: must be a media type/],
      ['contentType not a media type', { inflight: { max: 0 }, reject: { contentType: 'json' } }, /reject\.contentType: must be a media type/],
      ['queue.timeout 1000h', { inflight: { max: 0, queue: { size: 5, timeout: '1000h' } } }, /inflight\.queue\.timeout: must be at most 596h/],
    ];
    for (const [name, patch, expected] of cases) {
      const seen = (await lastReload(sc))?.at;
      cm.update(yaml(up, patch));
      const lr = await waitFor(`${name}: reported on /config`, async () => {
        const l = await lastReload(sc);
        return l && l.at !== seen && l.result !== 'unchanged' ? l : undefined;
      });
      // The first reject after the reload (before any other check: applied, it used to end the process).
      const r = await request(sc.port, { path: '/ok' });
      if (r.error !== undefined) {
        const exit = await sc.waitExit(1000).catch(() => null);
        expect.fail(`${name}: the request failed (${r.error}); the sidecar exited: ${JSON.stringify(exit)}; stderr: ${sc.stderr().slice(-300)}`);
      }
      expect(lr.result, name).toBe('invalid');
      expect(lr.error, name).toMatch(expected);
      expect((await sc.config()).version, name).toBe(version);
      expect(r.status, name).toBe(503);
      expect(r.headers['content-type'], name).toBe('application/json');
      expect(r.headers['x-injected'], name).toBeUndefined();
      expect((await sc.admin('/readyz')).status, name).toBe(200);
      cm.update(good);
      await waitFor(`${name}: recovered`, async () => (await lastReload(sc))?.result === 'unchanged');
    }
    expect(sc.logs().filter((l) => l.msg === 'config invalid')).toHaveLength(cases.length);
  });

  it('names a restart-only change, does not apply it, and applies the rest', async () => {
    const up = await startUpstream();
    const cm = configMapVolume(yaml(up, { inflight: { max: 5 } }));
    const sc = await start(cm);
    cm.update(yaml(up, { inflight: { max: 6 }, admin: { port: 1 }, upstream: { url: 'http://127.0.0.1:1' } }));
    const lr = await waitFor('restart_required', async () => {
      const l = await lastReload(sc);
      return l?.result === 'restart_required' ? l : undefined;
    });
    expect(lr.error).toMatch(/requires restart: admin, upstream/);
    expect(await globalMax(sc)).toBe(6);
    const c = await sc.config();
    expect(c.config.upstream.url).toBe(up.url);
    expect(c.config.admin.port).toBe(0);
    expect((await request(sc.port, { path: '/ok' })).status).toBe(200); // still the old upstream
    expect(sc.logs().some((l) => l.msg === 'config requires restart')).toBe(true);
  });

  it('raising a max wakes queued requests at once; lowering it admits nothing new until the count falls', async () => {
    const up = await startUpstream();
    const cfg = (max: number) => yaml(up, { inflight: { max, queue: { size: 10, timeout: '30s' } } });
    const cm = configMapVolume(cfg(2));
    const sc = await start(cm);

    const first = fire(sc.port, 5, { path: '/a?gate=1' });
    await waitFor('2 in the app, 3 queued', async () => up.current() === 2 && limiter(await sc.stats(), 'global').queued === 3);
    cm.update(cfg(5));
    // The queued three reach the app while nothing has been released.
    await waitFor('5 in the app', () => up.current() === 5, { timeoutMs: 2000 });
    expect(limiter(await sc.stats(), 'global').queued).toBe(0);

    up.release();
    expect((await first).map((r) => r.status)).toEqual(Array(5).fill(200));
    up.closeGate();

    // Lowering: 5 in flight (3 held, 2 short), the max goes down to 2, 3 more arrive and queue.
    const held = fire(sc.port, 3, { path: '/held?gate=1' });
    const short = fire(sc.port, 2, { path: '/short?ms=300' });
    await waitFor('5 in the app', () => up.current() === 5);
    cm.update(cfg(2));
    await waitFor('max 2', async () => (await globalMax(sc)) === 2);
    const second = fire(sc.port, 3, { path: '/b?gate=1' });
    await waitFor('3 queued', async () => limiter(await sc.stats(), 'global').queued === 3);
    // The two short ones finish: 3 in flight, below the old max, still above the new one.
    expect((await short).map((r) => r.status)).toEqual([200, 200]);
    await sleep(300);
    const s = limiter(await sc.stats(), 'global');
    expect(s.inflight).toBe(3);
    expect(s.queued).toBe(3);
    expect(up.count('/b')).toBe(0);

    up.release();
    const results = [...(await held), ...(await second)];
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(200));
    expect(up.peak('/b')).toBeLessThanOrEqual(2);
    const settled = await sc.settled();
    expect(limiter(settled, 'global').acquired).toBe(13);
    expect(limiter(settled, 'global').released).toBe(13);
  });

  it('200 long requests and a steady load survive 50 reloads that raise and lower limits', async () => {
    const up = await startUpstream();
    const cfg = (i: number) =>
      yaml(up, {
        connections: { max: 2000 },
        inflight: { max: i % 2 ? 60 : 25, queue: { size: 1000, timeout: '60s' } },
        routes: [{ name: 'long', match: { prefix: '/long' }, inflight: { max: i % 2 ? 45 : 10, queue: { size: 1000, timeout: '60s' } } }],
        reload: { debounce: '10ms' },
      });
    const cm = configMapVolume(cfg(0));
    const sc = await start(cm);

    // Sample every limiter's in-flight count and max while everything runs.
    const samples: Stats[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push(await sc.stats());
        await sleep(15);
      }
    })();

    // A steady load on ONE keep-alive connection: a dropped connection shows as a second socket.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let sockets = 0;
    const createConnection = agent.createConnection.bind(agent);
    agent.createConnection = ((...args: Parameters<typeof createConnection>) => {
      sockets++;
      return createConnection(...args);
    }) as typeof agent.createConnection;
    const steady: Result[] = [];
    let steadyOn = true;
    const steadyLoop = (async () => {
      while (steadyOn) steady.push(await request(sc.port, { path: '/steady?ms=5' }, agent, steady.length));
    })();

    const long = fire(sc.port, 200, { path: '/long?ms=800', timeoutMs: 60_000 });
    for (let i = 1; i <= 50; i++) {
      const before = (await sc.config()).version;
      cm.update(cfg(i));
      await waitFor(`reload ${i}`, async () => (await sc.config()).version !== before, { intervalMs: 5 });
    }
    const longResults = await long;
    steadyOn = false;
    await steadyLoop;
    sampling = false;
    await sampler;
    agent.destroy();

    expect(longResults.filter((r) => r.status !== 200 || r.error).map((r) => [r.i, r.status, r.error, r.body.slice(0, 100)])).toEqual([]);
    expect(steady.length).toBeGreaterThan(10);
    expect(steady.filter((r) => r.status !== 200 || r.error).map((r) => [r.i, r.status, r.error, r.body.slice(0, 100)])).toEqual([]);
    expect(sockets).toBe(1);
    // The app never saw more than the highest max that was ever configured.
    expect(up.peak('/long')).toBeLessThanOrEqual(45);
    expect(up.peak()).toBeLessThanOrEqual(60);
    // At no sampled instant did a limiter above its max take anything new: while over, its count only falls.
    // (Only between two samples taken under the same applied config: a raise and a lower can fall in between.)
    const generation = (s: Stats) => (s as Stats & { config: { generation: number } }).config.generation;
    let compared = 0;
    for (let i = 1; i < samples.length; i++) {
      if (generation(samples[i] as Stats) !== generation(samples[i - 1] as Stats)) continue;
      for (const cur of (samples[i] as Stats).limiters) {
        const prev = (samples[i - 1] as Stats).limiters.find((l) => l.name === cur.name);
        if (!prev) continue;
        compared++;
        // Admissions never take a limiter past its max, so a limiter still over it has admitted nothing since the last sample.
        if (cur.inflight > cur.max) {
          expect(cur.inflight, `${cur.name} sample ${i}`).toBeLessThanOrEqual(prev.inflight);
          expect(cur.acquired, `${cur.name} sample ${i}: admitted while over its max`).toBe(prev.acquired);
        }
      }
    }
    expect(compared).toBeGreaterThan(20);
    const reloads = sc.logs().filter((l) => l.msg === 'config reloaded');
    expect(reloads.length).toBe(50);
    const settled = await sc.settled();
    for (const l of settled.limiters) expect(l.acquired, l.name).toBe(l.released);
    expect(settled.totals.rejected).toBe(0);
  }, 120_000);
});
