/**
 * Upgrades from hostile or unlucky clients (issue 10, item 2), on Node and on Deno: only the
 * tokens in `upgrade.allow` are tunnelled (others get 400 upgrade_not_allowed and the app sees
 * nothing); a refused or failed upgrade closes its socket after a short linger even when the
 * client keeps its side open, so it cannot hold a socket-cap slot; an idle tunnel is closed after
 * `upgrade.idleTimeout` while a busy one stays; open tunnels are counted in /stats; a real
 * WebSocket works through the tunnel; a reload applies `upgrade.*`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'undici';
import { connect, get, type RawConn } from '../helpers/raw-http.ts';
import { configMapVolume } from '../helpers/configmap.ts';
import { parsePrometheus, sum } from '../helpers/prometheus.ts';
import { RUNTIMES, cleanup, configFor, sleep, startSidecar, waitFor, type Sidecar } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { startPlainApp, startWebSocketApp } from '../helpers/websocket.ts';

interface Tunnels {
  open: number;
  opened: number;
  idleClosed: number;
  refused: number;
  notAllowed: number;
  failed: number;
}

async function tunnels(sc: Sidecar): Promise<Tunnels> {
  const s = (await sc.stats()) as unknown as { tunnels?: Tunnels };
  if (s.tunnels === undefined) throw new Error('/stats has no tunnels');
  return s.tunnels;
}

const upgradeRequest = (token: string, extra = '') =>
  `GET /ws HTTP/1.1\r\nHost: portcullis.test\r\nConnection: Upgrade\r\nUpgrade: ${token}\r\n${extra}\r\n`;

/** Clients that send an upgrade and then never close their side: only the sidecar can free the socket. */
async function stubbornUpgrades(port: number, n: number, token: string): Promise<RawConn[]> {
  const conns: RawConn[] = [];
  for (let i = 0; i < n; i++) conns.push(await connect(port, { allowHalfOpen: true, send: upgradeRequest(token) }));
  await Promise.all(conns.map((c) => c.waitResponses(1)));
  return conns;
}

/**
 * The sidecar sent its FIN to each and then let go of the socket: /stats shows none open. (A
 * half-open client is not told that the server side is gone until it writes, so its own socket
 * stays "open"; the slot is what counts.)
 */
async function slotsFreed(sc: Sidecar, conns: RawConn[]): Promise<void> {
  await Promise.all(conns.map((c) => c.waitUntil('the FIN from the sidecar', (x) => x.ended, 5000)));
  await waitFor('/stats connections.open == 0', async () => (await sc.stats()).connections.open === 0, { timeoutMs: 5000 });
}

function openWebSocket(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  return new Promise((res, rej) => {
    ws.onopen = () => res(ws);
    ws.onerror = (e) => rej(new Error(`websocket failed: ${String((e as { message?: string }).message ?? e.type)}`));
  });
}

function echo(ws: WebSocket, text: string, timeoutMs = 5000): Promise<string> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no echo of ${text} in ${timeoutMs}ms`)), timeoutMs);
    ws.onmessage = (m) => {
      if (m.data !== text) return;
      clearTimeout(timer);
      res(String(m.data));
    };
    ws.send(text);
  });
}

function closed(ws: WebSocket, timeoutMs = 5000): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`websocket still open after ${timeoutMs}ms`)), timeoutMs);
    ws.addEventListener('close', () => {
      clearTimeout(timer);
      res();
    });
  });
}

describe.each(RUNTIMES)('hostile upgrades on %s', (runtime) => {
  afterEach(cleanup);

  it('issue 10: refused upgrades (Upgrade: foo) from clients that keep their side open do not hold socket slots', async () => {
    const app = await startPlainApp();
    const sc = await startSidecar({ runtime, config: configFor(app.url, { connections: { max: 3 } }) });
    const conns = await stubbornUpgrades(sc.port, 3, 'foo');
    // The sidecar closes them itself, after a short linger: none of them sends its FIN.
    await slotsFreed(sc, conns);
    const fourth = await connect(sc.port);
    expect((await fourth.request(get('/after'))).status).toBe(200);
    for (const c of conns) {
      const r = c.responses()[0]!;
      expect(r.status).toBe(400);
      expect(r.headers['x-portcullis-error']).toBe('upgrade_not_allowed');
      expect(r.headers.connection?.toLowerCase()).toBe('close');
      expect(JSON.parse(r.body.toString())).toEqual({ error: 'upgrade_not_allowed' });
    }
    // Refused before anything reached the app: it saw only the fourth client's GET.
    expect(app.requests).toBe(1);
    expect(app.upgradeHeaders).toEqual([]);
    expect(await tunnels(sc)).toMatchObject({ open: 0, opened: 0, notAllowed: 3, refused: 3 });
    expect(sc.logs().some((l) => l.msg === 'upgrade not allowed')).toBe(true);
    await sc.settled();
  });

  it('issue 10: failed upgrades (the app answers a websocket handshake normally) close after a short linger; the client gets the app answer', async () => {
    const app = await startPlainApp();
    const sc = await startSidecar({ runtime, config: configFor(app.url, { connections: { max: 3 } }) });
    const conns = await stubbornUpgrades(sc.port, 3, 'websocket');
    await slotsFreed(sc, conns);
    const fourth = await connect(sc.port);
    expect((await fourth.request(get('/after'))).status).toBe(200);
    for (const c of conns) {
      // What the app said, not a 502: a WebSocket endpoint that answers 401 or 426 is understood.
      const r = c.responses()[0]!;
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('plain');
      expect(r.headers.connection?.toLowerCase()).toBe('close');
    }
    expect(app.upgradeHeaders).toEqual(['websocket', 'websocket', 'websocket']);
    expect(await tunnels(sc)).toMatchObject({ open: 0, opened: 0, failed: 3 });
    await sc.settled();
  });

  it('issue 10: a refused upgrade at the in-flight cap closes its socket after a short linger', async () => {
    const app = await startWebSocketApp();
    const sc = await startSidecar({ runtime, config: configFor(app.url, { connections: { max: 3 }, inflight: { max: 0 } }) });
    const conns = await stubbornUpgrades(sc.port, 3, 'websocket');
    await slotsFreed(sc, conns);
    for (const c of conns) expect(c.responses()[0]!.status).toBe(503);
    expect(app.upgrades).toBe(0);
    expect(await tunnels(sc)).toMatchObject({ open: 0, refused: 3, notAllowed: 0 });
  });

  it('issue 10: Upgrade: h2c to an app that would switch is refused with 400 and the app receives nothing', async () => {
    // This app answers 101 to any upgrade and then echoes: an h2c tunnel would carry unlimited requests.
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url) });
    for (const token of ['h2c', 'H2C', 'foo, h2c', 'TLS/1.0']) {
      const c = await connect(sc.port, { send: upgradeRequest(token, 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n') });
      const [r] = await c.waitResponses(1);
      expect(r!.status, token).toBe(400);
      expect(r!.headers['x-portcullis-error']).toBe('upgrade_not_allowed');
      expect(r!.headers['content-type']).toBe('application/json');
      await c.waitClosed(5000);
    }
    expect(up.requests).toEqual([]);
    expect(up.sockets()).toBe(0);
    expect(await tunnels(sc)).toMatchObject({ notAllowed: 4, opened: 0 });
    // The sidecar still serves.
    const c = await connect(sc.port);
    expect((await c.request(get('/after'))).status).toBe(200);
    expect(up.requests.map((r) => r.path)).toEqual(['/after']);
  });

  it('issue 10: allowed tokens compare case-insensitively; of several tokens only the allowed ones reach the app', async () => {
    const up = await startUpstream();
    const sc = await startSidecar({ runtime, config: configFor(up.url) });
    for (const token of ['WebSocket', 'h2c, websocket']) {
      const c = await connect(sc.port, { send: upgradeRequest(token) });
      await c.waitUntil('the 101 head', (x) => x.text().includes('\r\n\r\n'));
      expect(c.text()).toMatch(/^HTTP\/1\.1 101 /);
      c.destroy();
    }
    expect(up.requests.map((r) => r.headers.upgrade)).toEqual(['WebSocket', 'websocket']);
    await waitFor('tunnels closed', async () => (await tunnels(sc)).open === 0);
    expect(await tunnels(sc)).toMatchObject({ opened: 2, notAllowed: 0 });
  });

  it('issue 10: an idle tunnel is closed after upgrade.idleTimeout, a busy one is not; /stats counts open tunnels', async () => {
    const app = await startWebSocketApp();
    const sc = await startSidecar({ runtime, config: configFor(app.url, { upgrade: { idleTimeout: '1s' } }) });
    const idle = await openWebSocket(sc.port);
    const busy = await openWebSocket(sc.port);
    expect(await echo(idle, 'hello')).toBe('hello');
    expect(await tunnels(sc)).toMatchObject({ open: 2, opened: 2 });
    let stop = false;
    const chatter = (async () => {
      for (let i = 0; !stop; i++) {
        await echo(busy, `m${i}`);
        await sleep(100);
      }
    })();
    await closed(idle, 10_000);
    // Well past the idle timeout, the busy tunnel still carries messages.
    await sleep(1500);
    stop = true;
    await chatter;
    expect(busy.readyState).toBe(WebSocket.OPEN);
    expect(await echo(busy, 'still here')).toBe('still here');
    expect(await tunnels(sc)).toMatchObject({ open: 1, idleClosed: 1 });
    busy.close();
    await closed(busy);
    await waitFor('tunnels.open == 0', async () => (await tunnels(sc)).open === 0);
    await waitFor('/stats connections.open == 0', async () => (await sc.stats()).connections.open === 0);
    await sc.settled();
  });

  it('issue 10: a real WebSocket works through the tunnel (default config)', async () => {
    const app = await startWebSocketApp();
    const sc = await startSidecar({ runtime, config: configFor(app.url) });
    const ws = await openWebSocket(sc.port);
    expect(await echo(ws, 'one')).toBe('one');
    const big = 'x'.repeat(200_000);
    expect(await echo(ws, big, 10_000)).toBe(big);
    ws.close();
    await closed(ws);
    await waitFor('tunnels.open == 0', async () => (await tunnels(sc)).open === 0);
    await sc.settled();
  });

  it('issue 10: open tunnels and upgrade outcomes are metrics', async () => {
    const app = await startWebSocketApp();
    const sc = await startSidecar({
      runtime,
      config: configFor(app.url),
      // The SDK on, exporters off: /metrics is served from the in-process reader.
      env: { OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' },
    });
    const ws = await openWebSocket(sc.port);
    expect(await echo(ws, 'm')).toBe('m');
    const refused = await connect(sc.port, { send: upgradeRequest('h2c') });
    expect((await refused.waitResponses(1))[0]!.status).toBe(400);
    const samples = parsePrometheus((await sc.admin('/metrics')).text);
    expect(sum(samples, 'portcullis_tunnels')).toBe(1);
    expect(sum(samples, 'portcullis_upgrades_total', { outcome: 'tunnelled' })).toBe(1);
    expect(sum(samples, 'portcullis_upgrades_total', { outcome: 'not_allowed' })).toBe(1);
    expect(sum(samples, 'portcullis_upgrades_total', { outcome: 'failed' })).toBe(0);
    expect(samples.some((x) => x.name === 'portcullis_tunnels_idle_closed_total')).toBe(true);
    ws.close();
    await closed(ws);
  });

  it('issue 10: a reload applies upgrade.allow and upgrade.idleTimeout', async () => {
    const up = await startUpstream();
    const text = (patch: Record<string, unknown>) => JSON.stringify(configFor(up.url, patch), null, 2);
    const cm = configMapVolume(text({}));
    const sc = await startSidecar({ runtime, args: ['--config', cm.file] });
    const refused = await connect(sc.port, { send: upgradeRequest('echo') });
    expect((await refused.waitResponses(1))[0]!.status).toBe(400);
    cm.update(text({ upgrade: { allow: ['websocket', 'echo'], idleTimeout: '500ms' } }));
    await waitFor('the reload applied', async () => (await sc.config()).config.upgrade?.idleTimeout === 500);
    const c = await connect(sc.port, { send: upgradeRequest('echo') });
    await c.waitUntil('the 101 head', (x) => x.text().includes('\r\n\r\n'));
    expect(c.text()).toMatch(/^HTTP\/1\.1 101 /);
    // The new idle timeout applies: nothing is sent, the tunnel is cut.
    await c.waitClosed(5000);
    expect(await tunnels(sc)).toMatchObject({ idleClosed: 1, open: 0 });
  });
});
