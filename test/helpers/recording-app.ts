/**
 * A real node:http app that routes the way real apps do and records how many requests it was
 * running at once, per group: `global`, `route:<name>`, `client:<addr>` and
 * `route:<name>:client:<addr>`. The path is what the app routes on: the WHATWG URL pathname
 * (absolute-form resolved, dot segments removed, like Deno.serve, hono or Bun) then
 * percent-decoded (like aiohttp), so `/%73low`, `/x/../slow` and `/healthz/../slow` are all the
 * app's `/slow`. The client is the last X-Forwarded-For entry (the hop portcullis appended).
 *
 * A request ends for the app at the first sign of it: response finished, response closed, or
 * the connection's end seen (the proxy aborted it). Concurrency is taken one turn of the event
 * loop after a request arrived (an abort read in the same poll round is not overlap) and
 * counts only the requests still running `graceMs` later: the peaks are of real overlap.
 *
 * Behaviour, per request, from the decoded path and the query:
 *   .../upload       read the whole body, answer {"bytes":n}
 *   .../big?bytes=N  stream N bytes (backpressure honoured)
 *   anything else    wait ?ms=N, then answer "ok", or ?chunks=K chunked pieces 10 ms apart
 * Upgrades: a path starting with /ws-refuse is answered like a plain request (200, then the
 * connection is closed), as by an app that does not upgrade; any other path is accepted with
 * 101 and every byte echoed back, whatever the token (an app that speaks h2c accepts `h2c`).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { onCleanup } from './sidecar.ts';
import { download } from './upstream.ts';

export interface AppRoute {
  name: string;
  /** The decoded path starts with this. */
  prefix: string;
  /** Bypass routes take no permit: their requests are counted in no group. */
  bypass?: boolean;
}

export interface Peak {
  peak: number;
  /** The raw request targets the app was running at that peak. */
  witnesses: string[];
}

export interface SeenUpgrade {
  url: string;
  path: string;
  token: string;
  accepted: boolean;
}

export interface RecordingApp {
  url: string;
  /** Highest concurrency per group (only groups that saw a request), once every measurement is in. */
  peaks(): Promise<Map<string, Peak>>;
  /** Requests in progress now. */
  live(): number;
  /** Requests seen, upgrades excluded. */
  count(): number;
  upgrades: SeenUpgrade[];
  close(): Promise<void>;
}

interface Live {
  url: string;
  groups: string[];
  ended: boolean;
}


/** The path an app routes on: WHATWG pathname, then percent-decoded (malformed escapes kept). */
export function appPath(target: string): string {
  let pathname: string;
  try {
    pathname = new URL(target, 'http://app.local').pathname;
  } catch {
    return target;
  }
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

export interface RecordingAppOptions {
  routes: AppRoute[];
  /**
   * A request counts as running alongside another only if both still run this long after the
   * later one arrived (default 50 ms), so an abort the proxy sent just before it forwarded the
   * next request is not taken for overlap, however the two are ordered on the way here.
   */
  graceMs?: number;
}

export async function startRecordingApp(options: RecordingAppOptions): Promise<RecordingApp> {
  const live = new Set<Live>();
  const peaks = new Map<string, Peak>();
  const upgrades: SeenUpgrade[] = [];
  const sockets = new Set<Socket>();
  let count = 0;

  const groupsOf = (path: string, client: string): string[] => {
    const route = options.routes.find((r) => path.startsWith(r.prefix));
    if (route?.bypass) return [];
    const groups = ['global', `client:${client}`];
    if (route) groups.push(`route:${route.name}`, `route:${route.name}:client:${client}`);
    return groups;
  };

  const graceMs = options.graceMs ?? 50;
  const measure = (me: Live) => {
    if (me.ended) return;
    const running = me.groups.map((g) => ({ g, with: [...live].filter((l) => l.groups.includes(g)) }));
    const confirm = () => {
      for (const { g, with: those } of running) {
        const still = those.filter((l) => !l.ended);
        const p = peaks.get(g);
        if (p === undefined || still.length > p.peak) peaks.set(g, { peak: still.length, witnesses: still.map((l) => l.url) });
      }
    };
    if (graceMs <= 0) return confirm();
    pending++;
    setTimeout(() => {
      confirm();
      if (--pending === 0) for (const w of measured.splice(0)) w();
    }, graceMs);
  };
  let pending = 0;
  const measured: Array<() => void> = [];

  const server = http.createServer({ keepAliveTimeout: 30_000, requestTimeout: 0, headersTimeout: 60_000 });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    count++;
    const target = req.url ?? '/';
    const path = appPath(target);
    const query = new URL(target, 'http://app.local').searchParams;
    const xff = String(req.headers['x-forwarded-for'] ?? '');
    const client = xff.split(',').pop()?.trim() || (req.socket.remoteAddress ?? 'unknown');
    const me: Live = { url: target, groups: groupsOf(path, client), ended: false };
    live.add(me);
    const socket = req.socket;
    const end = () => {
      if (me.ended) return;
      me.ended = true;
      live.delete(me);
      socket.off('end', end);
      socket.off('close', end);
    };
    res.once('finish', end);
    res.once('close', end);
    req.once('aborted', end);
    socket.once('end', end);
    socket.once('close', end);
    setImmediate(() => measure(me));

    let timer: NodeJS.Timeout | undefined;
    res.once('close', () => clearTimeout(timer));
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('error', () => {});
    res.on('error', () => {});

    const answer = () => {
      if (res.destroyed) return;
      if (path.endsWith('/upload')) {
        const body = JSON.stringify({ bytes: bodyBytes });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      if (path.endsWith('/big')) return download(res, Number(query.get('bytes') ?? 65536));
      const chunks = Number(query.get('chunks') ?? 0);
      if (chunks <= 0) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
        res.end('ok');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      let left = chunks;
      const piece = () => {
        if (res.destroyed) return;
        res.write(`piece ${left}\n`);
        if (--left > 0) timer = setTimeout(piece, 10);
        else res.end();
      };
      piece();
    };
    const ms = Number(query.get('ms') ?? 0);
    const start = () => (ms > 0 ? (timer = setTimeout(answer, ms)) : answer());
    // Answer once the whole request body is in, as most apps do.
    if (req.complete) start();
    else req.once('end', start);
    req.resume();
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const target = req.url ?? '/';
    const path = appPath(target);
    const token = String(req.headers.upgrade ?? '');
    const accepted = !path.startsWith('/ws-refuse');
    upgrades.push({ url: target, path, token, accepted });
    socket.on('error', () => socket.destroy());
    if (!accepted) {
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${token}\r\nConnection: Upgrade\r\n\r\n`);
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });

  server.on('clientError', (_err, socket: Socket) => socket.destroy());

  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const port = (server.address() as AddressInfo).port;

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    const done = new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
    await done;
  };
  onCleanup(close);

  return {
    url: `http://127.0.0.1:${port}`,
    peaks: async () => {
      if (pending > 0) await new Promise<void>((r) => measured.push(r));
      return new Map(peaks);
    },
    live: () => live.size,
    count: () => count,
    upgrades,
    close,
  };
}

