/**
 * Hostile HTTP/1.1 clients over raw sockets (node:net, 127.0.0.x), as fast-check arbitraries
 * and a runner. Each generated client is plain data (printable, replayable from a seed): what it
 * sends, when it stops, and whether it keeps its side of the connection open. Every client is
 * bounded: it destroys its socket at `lifeMs` after its start at the latest, and a client that
 * checks that the sidecar lets go of a finished socket waits at most LINGER_BOUND_MS for that.
 *
 * The runner reports what a client saw that breaks the contract from its side (a 100 Continue
 * before a reject, a refused upgrade whose socket the sidecar never closes); everything else is
 * checked by the test after all clients are gone.
 */
import net from 'node:net';
import fc from 'fast-check';
import { parseResponses, type RawResponse } from './raw-http.ts';

/** How long a client that keeps its side open waits for the sidecar to close a finished socket. */
export const LINGER_BOUND_MS = 5000;

const HOST = 'portcullis.test';

/** Spellings of the capped route `/slow`: every one of them is the app's `/slow`. */
export const SLOW_SPELLINGS = ['/slow', '/%73low', '/x/../slow', '/x/%2e%2e/slow', '/healthz/../slow', `http://${HOST}/slow`] as const;

export type Client = { addr: number; startMs: number; lifeMs: number } & Behaviour;

export type Behaviour =
  /** Several requests in one write, then close after `closeAfterMs` (or read them all). */
  | { kind: 'pipeline'; targets: string[]; closeAfterMs: number | 'all' }
  /** Keep-alive: one request after another, each response read in full. */
  | { kind: 'sequential'; targets: string[] }
  /** The first `cut` bytes of a head, then close after `closeAfterMs` (or wait to be cut). */
  | { kind: 'partialHead'; target: string; cut: number; closeAfterMs: number | 'never' }
  /** A body of `size` bytes in `pieces`, `pieceDelayMs` apart; only `sendPieces` of them are sent. */
  | { kind: 'body'; target: string; framing: 'length' | 'chunked'; size: number; pieces: number; sendPieces: number; pieceDelayMs: number }
  /** `Expect: 100-continue`: the body goes only after a 100 (or after `waitMs` without an answer). */
  | { kind: 'expect'; target: string; size: number; waitMs: number }
  /** One request, socket destroyed after `abortAfterMs` (before, while queued, or mid-response). */
  | { kind: 'abort'; target: string; abortAfterMs: number }
  /** A large response read up to `readBytes`, then never read again. */
  | { kind: 'stopReading'; bytes: number; readBytes: number }
  /** An upgrade; `keepOpen`: after a non-101 answer, keep our side open and see the sidecar close. */
  | { kind: 'upgrade'; target: string; token: 'websocket' | 'h2c' | 'foo'; keepOpen: boolean; tunnelBytes: number }
  /** Bytes that are not (valid) HTTP. */
  | { kind: 'malformed'; bytes: number[]; keepOpen: boolean }
  /** A head larger than connections.maxHeaderSize. */
  | { kind: 'oversized'; target: string; pad: number; keepOpen: boolean }
  /** Connects and says nothing. */
  | { kind: 'idle' };

/** What a client saw that breaks the contract (empty when fine), and a one-line summary. */
export interface ClientResult {
  violations: string[];
  summary: string;
}

// ---------------------------------------------------------------------------------------------
// arbitraries

// Known-bad shapes, kept in sync in spirit with test/e2e/bad-input.e2e.test.ts.
const MALFORMED = [
  'GET / HTTP/1.1 trailing-garbage\r\nHost: x\r\n\r\n',
  '\x00\x01\x02 hello\r\n\r\n',
  'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  'GET /fast HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /fast HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n',
  'GET /fast HTTP/1.1\r\nHost: x\r\n X-Folded: y\r\n\r\n',
  'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /slow%00 HTTP/1.1\r\nHost: x\r\n\r\n',
];

const ms = (min: number, max: number) => fc.integer({ min, max });

/** A GET target: a capped, bypass or plain path, with how long the app takes and how it answers. */
const target: fc.Arbitrary<string> = fc
  .record({
    path: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...SLOW_SPELLINGS) },
      { weight: 3, arbitrary: fc.constantFrom('/fast', '/stream', '/api/items') },
      { weight: 1, arbitrary: fc.constant('/healthz') },
    ),
    ms: ms(0, 250),
    chunks: fc.constantFrom(0, 0, 3, 8),
  })
  .map(({ path, ms: wait, chunks }) => `${path}?ms=${wait}${chunks > 0 ? `&chunks=${chunks}` : ''}`);

const uploadTarget = fc.constantFrom('/upload', '/slow/upload', '/%73low/upload', '/x/../slow/upload');

const behaviour: fc.Arbitrary<Behaviour> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('pipeline' as const),
      targets: fc.array(target, { minLength: 2, maxLength: 8 }),
      closeAfterMs: fc.oneof(ms(0, 600), fc.constant('all' as const)),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sequential' as const), targets: fc.array(target, { minLength: 1, maxLength: 3 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('partialHead' as const),
      target,
      cut: fc.integer({ min: 1, max: 40 }),
      closeAfterMs: fc.oneof(ms(0, 800), fc.constant('never' as const)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        kind: fc.constant('body' as const),
        target: uploadTarget,
        framing: fc.constantFrom('length' as const, 'chunked' as const),
        size: fc.integer({ min: 1, max: 20_000 }),
        pieces: fc.integer({ min: 1, max: 8 }),
        sendPieces: fc.integer({ min: 0, max: 8 }),
        pieceDelayMs: ms(0, 300),
      })
      .map((b) => ({ ...b, sendPieces: Math.min(b.sendPieces, b.pieces) })),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('expect' as const), target: uploadTarget, size: fc.integer({ min: 1, max: 4000 }), waitMs: ms(100, 800) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('abort' as const), target, abortAfterMs: ms(0, 700) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('stopReading' as const),
      bytes: fc.integer({ min: 1, max: 4 }).map((m) => m * 1024 * 1024),
      readBytes: fc.integer({ min: 0, max: 128 * 1024 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('upgrade' as const),
      target: fc.constantFrom('/ws', '/ws-refuse'),
      token: fc.constantFrom('websocket' as const, 'websocket' as const, 'h2c' as const, 'foo' as const),
      keepOpen: fc.boolean(),
      tunnelBytes: fc.integer({ min: 0, max: 64 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('malformed' as const),
      bytes: fc.oneof(
        fc.constantFrom(...MALFORMED.map((s) => [...Buffer.from(s, 'latin1')])),
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 48 }),
      ),
      keepOpen: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('oversized' as const), target, pad: fc.integer({ min: 5000, max: 40_000 }), keepOpen: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('idle' as const) }) },
);

export const KINDS = ['pipeline', 'sequential', 'partialHead', 'body', 'expect', 'abort', 'stopReading', 'upgrade', 'malformed', 'oversized', 'idle'] as const;

/**
 * One client: which of `addrs` source addresses (127.0.0.N), when it starts, how long it may
 * live. `kinds` narrows the behaviours (to find which kind breaks an invariant); the same seed
 * then generates other clients.
 */
export function clientArb(addrs: number, kinds?: readonly Behaviour['kind'][]): fc.Arbitrary<Client> {
  const b = kinds === undefined ? behaviour : behaviour.filter((x) => kinds.includes(x.kind));
  return fc
    .record({ addr: fc.integer({ min: 1, max: addrs }), startMs: ms(0, 1000), lifeMs: ms(300, 2000), b })
    .map(({ b, ...rest }) => ({ ...rest, ...b }));
}


// ---------------------------------------------------------------------------------------------
// the runner

const get = (t: string, extra = '') => `GET ${t} HTTP/1.1\r\nHost: ${HOST}\r\n${extra}\r\n`;
const sleep = (n: number) => new Promise<void>((r) => setTimeout(r, n));

/** A raw client socket that keeps its side open unless told (allowHalfOpen), and records all it got. */
class Conn {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  received = 0;
  /** The sidecar sent FIN. */
  ended = false;
  closed = false;
  error: string | undefined;
  private waiters = new Set<() => void>();
  readonly ready: Promise<boolean>;

  constructor(port: number, addr: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${addr}`, allowHalfOpen: true });
    this.socket.setNoDelay(true);
    this.socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.received += c.length;
      this.notify();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? err.message;
      this.notify();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    this.ready = new Promise((res) => {
      this.socket.once('connect', () => res(true));
      this.socket.once('close', () => res(false));
    });
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  responses(): RawResponse[] {
    try {
      return parseResponses(this.data(), this.ended || this.closed).responses;
    } catch {
      return [];
    }
  }

  write(b: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(b, () => {});
  }

  /** Resolves true once `pred` holds, false when `deadline` (epoch ms) passes or the socket closes first. */
  until(pred: () => boolean, deadline: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((res) => {
      const check = () => {
        if (pred()) finish(true);
        else if (this.closed) finish(false);
      };
      const timer = setTimeout(() => finish(pred()), Math.max(0, deadline - Date.now()));
      const finish = (v: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        res(v);
      };
      this.waiters.add(check);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const reasonOf = (r: RawResponse) => r.headers['x-portcullis-reason'];
const statuses = (c: Conn) =>
  c
    .responses()
    .map((r) => r.status + (reasonOf(r) ? `(${reasonOf(r)})` : ''))
    .join(',');

/** Runs one client to its end; never throws. */
export async function runClient(port: number, client: Client, index: number): Promise<ClientResult> {
  await sleep(client.startMs);
  const deadline = Date.now() + client.lifeMs;
  const conn = new Conn(port, client.addr);
  const violations: string[] = [];
  const hardStop = setTimeout(() => conn.destroy(), client.lifeMs);
  // A client that checks the sidecar closes a finished socket may outlive lifeMs by at most this.
  let lingerCheck = false;
  const name = `client #${index} (${client.kind} from 127.0.0.${client.addr})`;
  try {
    if (!(await conn.ready)) return { violations, summary: `${name}: could not connect (${conn.error ?? '-'})` };
    const lingered = await drive(conn, client, deadline, () => {
      lingerCheck = true;
      clearTimeout(hardStop);
    });
    if (lingered !== undefined) violations.push(`${name}: ${lingered}`);
    if (client.kind === 'expect') {
      const rs = conn.responses();
      const reject = rs.find((r) => r.status >= 400 && reasonOf(r) !== undefined);
      if (rs[0]?.status === 100 && reject !== undefined) {
        violations.push(`${name}: got 100 Continue, sent its body, then was rejected ${reject.status} ${reasonOf(reject)} (100-continue answered before admission)`);
      }
    }
  } catch (err) {
    violations.push(`${name}: the client itself failed: ${String(err)}`);
  } finally {
    clearTimeout(hardStop);
    conn.destroy();
  }
  return { violations, summary: `${name}${lingerCheck ? ' [linger check]' : ''}: ${statuses(conn) || '-'} ${conn.error ?? ''}`.trim() };
}

/**
 * Plays one behaviour. Returns a violation message when a socket the sidecar has finished with
 * (it answered a refused upgrade, a bad request or an oversized head) and that this client kept
 * open was not closed by the sidecar within LINGER_BOUND_MS.
 */
async function drive(conn: Conn, c: Client, deadline: number, startLinger: () => void): Promise<string | undefined> {
  const untilEnd = () => conn.until(() => conn.ended, deadline);
  switch (c.kind) {
    case 'pipeline': {
      conn.write(c.targets.map((t) => get(t)).join(''));
      if (c.closeAfterMs === 'all') await conn.until(() => conn.responses().length >= c.targets.length || conn.ended, deadline);
      else await sleep(Math.min(c.closeAfterMs, deadline - Date.now()));
      return undefined;
    }
    case 'sequential': {
      for (const [i, t] of c.targets.entries()) {
        conn.write(get(t));
        if (!(await conn.until(() => conn.responses().length > i || conn.ended, deadline))) break;
        if (conn.ended) break;
      }
      return undefined;
    }
    case 'partialHead': {
      conn.write(get(c.target).slice(0, c.cut));
      if (c.closeAfterMs === 'never') await untilEnd();
      else await sleep(Math.min(c.closeAfterMs, deadline - Date.now()));
      return undefined;
    }
    case 'body': {
      const chunked = c.framing === 'chunked';
      const head = `POST ${c.target} HTTP/1.1\r\nHost: ${HOST}\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${c.size}`}\r\n\r\n`;
      conn.write(head);
      const per = Math.ceil(c.size / c.pieces);
      for (let i = 0; i < c.sendPieces && Date.now() < deadline && !conn.ended; i++) {
        const n = Math.max(0, Math.min(per, c.size - i * per));
        if (n > 0) conn.write(chunked ? `${n.toString(16)}\r\n${'x'.repeat(n)}\r\n` : 'x'.repeat(n));
        if (i < c.sendPieces - 1) await sleep(c.pieceDelayMs);
      }
      if (c.sendPieces === c.pieces && chunked) conn.write('0\r\n\r\n');
      await conn.until(() => conn.responses().length > 0 || conn.ended, deadline);
      return undefined;
    }
    case 'expect': {
      conn.write(`POST ${c.target} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: ${c.size}\r\nExpect: 100-continue\r\n\r\n`);
      await conn.until(() => conn.responses().length > 0 || conn.ended, Math.min(deadline, Date.now() + c.waitMs));
      const first = conn.responses()[0];
      // A final answer means "do not send"; a 100 or silence means go ahead (RFC 9110 10.1.1).
      if (first === undefined || first.status === 100) conn.write('x'.repeat(c.size));
      await conn.until(() => conn.responses().some((r) => r.status >= 200) || conn.ended, deadline);
      return undefined;
    }
    case 'abort': {
      conn.write(get(c.target));
      await sleep(Math.min(c.abortAfterMs, deadline - Date.now()));
      return undefined;
    }
    case 'stopReading': {
      conn.write(get(`/big?bytes=${c.bytes}`));
      await conn.until(() => conn.received >= c.readBytes || conn.ended, deadline);
      conn.socket.pause();
      await sleep(Math.max(0, deadline - Date.now()));
      return undefined;
    }
    case 'upgrade': {
      const ws = c.token === 'websocket' ? 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' : '';
      const h2 = c.token === 'h2c' ? 'HTTP2-Settings: AAMAAABkAAQAAP__\r\n' : '';
      conn.write(get(c.target, `Connection: Upgrade${h2 ? ', HTTP2-Settings' : ''}\r\nUpgrade: ${c.token}\r\n${ws}${h2}`));
      await conn.until(() => conn.responses().some((r) => r.status >= 101) || conn.ended, deadline);
      const answer = conn.responses().find((r) => r.status >= 101);
      if (answer?.status === 101) {
        if (c.tunnelBytes > 0) conn.write('t'.repeat(c.tunnelBytes));
        await untilEnd();
        return undefined;
      }
      if (answer === undefined || !c.keepOpen) return undefined;
      return lingerUntilClosed(conn, startLinger, `upgrade ${c.token} ${c.target} answered ${answer.status}`);
    }
    case 'malformed': {
      conn.write(Buffer.from(c.bytes));
      await untilEnd();
      if (!conn.ended || !c.keepOpen) return undefined;
      return lingerUntilClosed(conn, startLinger, `malformed bytes answered ${statuses(conn) || 'with a FIN'}`);
    }
    case 'oversized': {
      conn.write(get(c.target, `X-Pad: ${'p'.repeat(c.pad)}\r\n`));
      await untilEnd();
      if (!conn.ended || !c.keepOpen) return undefined;
      return lingerUntilClosed(conn, startLinger, `oversized head answered ${statuses(conn) || 'with a FIN'}`);
    }
    case 'idle': {
      await untilEnd();
      return undefined;
    }
  }
}

/**
 * The sidecar is done with this socket (it answered and will not read another request), and the
 * client keeps its side open, as an attacker would. The sidecar must close it: we write a byte
 * every 200 ms, which a closed socket answers with a reset. Bounded by LINGER_BOUND_MS.
 */
async function lingerUntilClosed(conn: Conn, startLinger: () => void, what: string): Promise<string | undefined> {
  startLinger();
  const until = Date.now() + LINGER_BOUND_MS;
  while (Date.now() < until && !conn.closed && conn.error === undefined) {
    conn.write('z');
    await conn.until(() => conn.closed || conn.error !== undefined, Math.min(until, Date.now() + 200));
  }
  if (conn.closed || conn.error !== undefined) return undefined;
  return `${what}; the client kept its side open and the sidecar still held the socket ${LINGER_BOUND_MS} ms later`;
}
