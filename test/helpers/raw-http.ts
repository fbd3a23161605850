/**
 * Raw TCP clients for what a well-behaved HTTP client will not send: malformed heads,
 * trickled bytes, many idle sockets, tunnels. Always 127.0.0.1. Every socket is destroyed on
 * cleanup.
 */
import net from 'node:net';
import { onCleanup } from './sidecar.ts';

export interface RawResponse {
  status: number;
  reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** Bytes of the whole response (head and body) in the stream. */
  length: number;
}

/** A response head alone (for 1xx): everything after it belongs to the next protocol. */
const NO_BODY = (status: number, head: boolean) => head || status < 200 || status === 204 || status === 304;

/**
 * Parses every complete response in `buf`. A response delimited by close is complete only
 * when `closed`. `rest` is what follows the last complete response (after a 101: the tunnel).
 */
export function parseResponses(buf: Buffer, closed: boolean, { headRequests = false } = {}): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1');
    const [statusLine = '', ...lines] = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine.slice(0, 200))}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const k = line.slice(0, i).trim().toLowerCase();
      const v = line.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    const bodyStart = end + 4;
    let body: Buffer;
    let next: number;
    if (NO_BODY(status, headRequests)) {
      body = Buffer.alloc(0);
      next = bodyStart;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1').split(';')[0] ?? '', 16);
        if (Number.isNaN(size)) throw new Error('bad chunk size in response');
        if (size === 0) {
          // Either the empty line right away, or trailers ending with one.
          if (buf.length < le + 4) break;
          if (buf[le + 2] === 13 && buf[le + 3] === 10) {
            p = le + 4;
            complete = true;
            break;
          }
          const te = buf.indexOf('\r\n\r\n', le + 2);
          if (te < 0) break;
          p = te + 4;
          complete = true;
          break;
        }
        if (le + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
      next = p;
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (bodyStart + n > buf.length) break;
      body = buf.subarray(bodyStart, bodyStart + n);
      next = bodyStart + n;
    } else {
      if (!closed) break;
      body = buf.subarray(bodyStart);
      next = buf.length;
    }
    responses.push({ status, reason: m[2] ?? '', headers, body, length: next - off });
    off = next;
    if (status === 101) break;
  }
  return { responses, rest: buf.subarray(off) };
}

export interface RawConnectOptions {
  localAddress?: string;
  /** Keep our side open after the server's FIN (a client that never closes on its own). */
  allowHalfOpen?: boolean;
  /** Bytes written as soon as the connection is up. */
  send?: string | Buffer;
}

/** One client socket that records everything it receives and how it ended. */
export class RawConn {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  private size = 0;
  private waiters = new Set<() => void>();
  connected = false;
  closed = false;
  /** The server sent its FIN (with allowHalfOpen our side may still be open). */
  ended = false;
  /** The connection error, if any (ECONNREFUSED, ECONNRESET, EPIPE, ...). */
  error: NodeJS.ErrnoException | undefined;
  readonly openedAt = Date.now();
  closedAt: number | undefined;
  readonly ready: Promise<void>;

  constructor(port: number, options: RawConnectOptions = {}) {
    this.socket = net.connect({
      port,
      host: '127.0.0.1',
      allowHalfOpen: options.allowHalfOpen ?? false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    this.socket.setNoDelay(true);
    this.socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.size += c.length;
      this.notify();
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err;
      this.notify();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.notify();
    });
    this.ready = new Promise<void>((res, rej) => {
      this.socket.once('connect', () => {
        this.connected = true;
        if (options.send !== undefined) this.socket.write(options.send);
        res();
      });
      this.socket.once('close', () => (this.connected ? res() : rej(this.error ?? new Error('closed before connecting'))));
    });
    // Only unhandled if nobody awaits `ready`; the error is kept in `error` either way.
    this.ready.catch(() => {});
    onCleanup(() => this.socket.destroy());
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  /** Everything received so far. */
  data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  get received(): number {
    return this.size;
  }

  text(): string {
    return this.data().toString('latin1');
  }

  responses(opts?: { headRequests?: boolean }): RawResponse[] {
    return parseResponses(this.data(), this.closed, opts).responses;
  }

  /** Writes, ignoring errors (they land in `error`): a server may close on us on purpose. */
  write(data: string | Buffer): Promise<void> {
    return new Promise((res) => {
      if (this.socket.destroyed) return res();
      this.socket.write(data, () => res());
    });
  }

  /** Waits until `pred` holds, re-checking on every event; throws after `timeoutMs`. */
  waitUntil(what: string, pred: (c: RawConn) => boolean, timeoutMs = 5000): Promise<void> {
    if (pred(this)) return Promise.resolve();
    return new Promise((res, rej) => {
      const check = () => {
        let ok = false;
        try {
          ok = pred(this);
        } catch (err) {
          cleanupWaiter();
          return rej(err);
        }
        if (ok) {
          cleanupWaiter();
          res();
        }
      };
      const timer = setTimeout(() => {
        cleanupWaiter();
        rej(
          new Error(
            `timed out after ${timeoutMs}ms waiting for ${what}; closed=${this.closed} error=${this.error?.code ?? '-'} received ${this.size} bytes: ${JSON.stringify(this.text().slice(0, 300))}`,
          ),
        );
      }, timeoutMs);
      const cleanupWaiter = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.waitUntil('the socket to close', (c) => c.closed, timeoutMs);
  }

  /** Waits for `n` complete responses in total on this socket and returns them all. */
  async waitResponses(n: number, timeoutMs = 5000, opts?: { headRequests?: boolean }): Promise<RawResponse[]> {
    await this.waitUntil(`${n} response(s)`, (c) => c.responses(opts).length >= n || (c.closed && c.responses(opts).length < n && fail(c, n)), timeoutMs);
    return this.responses(opts);
  }

  /** Sends a request and waits for its response (the `n`-th on this socket). */
  async request(raw: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
    const before = this.responses().length;
    await this.write(raw);
    const all = await this.waitResponses(before + 1, timeoutMs);
    return all[before] as RawResponse;
  }

  destroy(): void {
    this.socket.destroy();
  }

  end(): void {
    this.socket.end();
  }
}

function fail(c: RawConn, n: number): never {
  throw new Error(
    `socket closed after ${c.responses().length} of ${n} responses (error ${c.error?.code ?? '-'}): ${JSON.stringify(c.text().slice(0, 300))}`,
  );
}

/** Opens a raw connection and waits until it is established. */
export async function connect(port: number, options: RawConnectOptions = {}): Promise<RawConn> {
  const c = new RawConn(port, options);
  await c.ready;
  return c;
}

export interface ExchangeResult {
  responses: RawResponse[];
  data: Buffer;
  closed: boolean;
  error: string | undefined;
  ms: number;
}

/**
 * Sends `bytes` (pieces written one after another) and collects what comes back until the
 * server closes, or `responses` complete responses arrived, or `timeoutMs` passed.
 */
export async function exchange(
  port: number,
  bytes: string | Buffer | Array<string | Buffer>,
  { timeoutMs = 5000, responses = Infinity, localAddress }: { timeoutMs?: number; responses?: number; localAddress?: string } = {},
): Promise<ExchangeResult> {
  const started = Date.now();
  const c = await connect(port, localAddress ? { localAddress } : {});
  for (const piece of Array.isArray(bytes) ? bytes : [bytes]) await c.write(piece);
  try {
    await c.waitUntil('close or responses', (x) => x.closed || x.responses().length >= responses, timeoutMs);
  } catch {
    /* timeout: report what we have */
  }
  const result: ExchangeResult = {
    responses: safeResponses(c),
    data: c.data(),
    closed: c.closed,
    error: c.error?.code,
    ms: Date.now() - started,
  };
  c.destroy();
  return result;
}

function safeResponses(c: RawConn): RawResponse[] {
  try {
    return c.responses();
  } catch {
    return [];
  }
}

/** Tries to open a TCP connection: 'connected' (then closed at once) or the error code. */
export function tryConnect(port: number, timeoutMs = 2000): Promise<string> {
  return new Promise((res) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      s.destroy();
      res('timeout');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      res('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      res(err.code ?? String(err));
    });
  });
}

/** A minimal GET request head. */
export function get(path: string, headers: Record<string, string> = {}, host = 'portcullis.test'): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}
