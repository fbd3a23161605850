/**
 * A real WebSocket echo app (RFC 6455, written out here: no ws package in the tree) on
 * 127.0.0.1:0, and the plain-HTTP app that does not upgrade at all. The client side of a
 * WebSocket test is undici's WebSocket, a real browser-conformant client.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { onCleanup } from './sidecar.ts';

export interface App {
  port: number;
  url: string;
  /** Plain requests answered (an Upgrade the app did not take counts here). */
  requests: number;
  /** Upgrade handshakes received. */
  upgrades: number;
  /** Upgrade headers seen, in order. */
  upgradeHeaders: string[];
  close(): Promise<void>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

async function serve(server: http.Server, app: Omit<App, 'port' | 'url' | 'close'>): Promise<App> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
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
  return Object.assign(app, { port, url: `http://127.0.0.1:${port}`, close });
}

/** An app with no 'upgrade' listener: node answers an Upgrade request as a normal request (200). */
export function startPlainApp(): Promise<App> {
  const app = { requests: 0, upgrades: 0, upgradeHeaders: [] as string[] };
  const server = http.createServer((req, res) => {
    app.requests++;
    if (req.headers.upgrade !== undefined) app.upgradeHeaders.push(req.headers.upgrade);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
    res.end('plain');
  });
  return serve(server, app);
}

/** Echoes every text and binary message, answers ping with pong and close with close. */
export function startWebSocketApp(): Promise<App> {
  const app = { requests: 0, upgrades: 0, upgradeHeaders: [] as string[] };
  const server = http.createServer((_req, res) => {
    app.requests++;
    res.writeHead(426, { 'content-length': 0 });
    res.end();
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    app.upgrades++;
    app.upgradeHeaders.push(String(req.headers.upgrade));
    socket.on('error', () => socket.destroy());
    const key = req.headers['sec-websocket-key'];
    if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let buf = head;
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        const frame = parseFrame(buf);
        if (frame === undefined) return;
        buf = buf.subarray(frame.length);
        if (frame.opcode === 0x8) {
          socket.end(encodeFrame(0x8, frame.payload.subarray(0, 2)));
          return;
        }
        if (frame.opcode === 0x9) socket.write(encodeFrame(0xa, frame.payload));
        else if (frame.opcode === 0x1 || frame.opcode === 0x2) socket.write(encodeFrame(frame.opcode, frame.payload));
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(Buffer.alloc(0));
  });
  return serve(server, app);
}

/** One complete client frame at the start of `buf` (unmasked payload), or undefined while incomplete. Fragments are echoed as they come. */
function parseFrame(buf: Buffer): { opcode: number; payload: Buffer; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = (buf[0] as number) & 0x0f;
  const masked = ((buf[1] as number) & 0x80) !== 0;
  let len = (buf[1] as number) & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const maskAt = off;
  if (masked) off += 4;
  if (buf.length < off + len) return undefined;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (buf[maskAt + (i & 3)] as number);
  return { opcode, payload, length: off + len };
}

function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126 && n < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else if (n >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}
