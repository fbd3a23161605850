/**
 * Upgrade (WebSocket): admission decides at the handshake like for any request; once the app
 * answers 101 the permit is released and the two sockets are spliced into a tunnel. The tunnel
 * keeps its client socket, so it keeps holding a slot of the socket cap until either side closes.
 */
import { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Pool } from 'undici';
import type { Admission, Decision, Grant } from '../core/admission.ts';
import type { DecisionTotals } from '../core/totals.ts';
import type { SampledLog } from '../core/log.ts';
import type { RejectResponse } from '../core/reject-response.ts';
import type { Reason } from '../core/admission.ts';
import type { ClientIdentity } from '../core/client-key.ts';
import { forwardRequestHeaders, type ForwardedFor } from './headers.ts';
import { requestInfo, upstreamFailure } from './proxy.ts';
import { statusText } from '../core/reject-response.ts';
import type { Span } from '@opentelemetry/api';
import { finish, type Telemetry } from '../telemetry/telemetry.ts';

export interface UpgradeOptions {
  admission: Admission;
  pool: Pool;
  totals: DecisionTotals;
  rejectLog: SampledLog;
  rejects: () => Readonly<Record<Reason, RejectResponse>>;
  closing: () => boolean;
  /** The socket cap's `arrive`: true when the socket was turned away (and has been answered). */
  arrive: (socket: Socket) => boolean;
  telemetry: Telemetry;
  /** Who the client is (clientKey), updated in place on reload. */
  identity: ClientIdentity;
}

function rawResponse(status: number, headers: Record<string, string>, body = ''): string {
  let out = `HTTP/1.1 ${status} ${statusText(status)}\r\nconnection: close\r\n`;
  for (const k in headers) if (k !== 'connection') out += `${k}: ${headers[k]}\r\n`;
  if (!('content-length' in headers)) out += `content-length: ${Buffer.byteLength(body)}\r\n`;
  return `${out}\r\n${body}`;
}

export function createUpgradeHandler(options: UpgradeOptions) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Busy from here on: an upgraded socket is a tunnel, never idle, never evicted.
    if (options.arrive(req.socket)) return;
    socket.on('error', () => socket.destroy());
    const info = requestInfo(req, options.identity);
    const client = info.client;
    const startedAt = performance.timeOrigin + performance.now();
    const refuse = (reason: Reason, d: Decision | undefined) => {
      const status = options.rejects()[reason].status;
      if (d === undefined) options.telemetry.draining(info, startedAt, status);
      else options.telemetry.decision(info, startedAt, d, status);
      options.totals.reject(reason);
      options.rejectLog.reject(reason, { limiter: d?.limiter, route: d?.route, client, upgrade: true });
      const r = options.rejects()[reason];
      socket.end(rawResponse(r.status, r.headers, r.body));
    };
    if (options.closing()) return refuse('draining', undefined);
    const outcome = options.admission.admit(info);
    const go = (d: Decision | null) => {
      if (d === null) return;
      if (d.decision === 'rejected' && !d.dryRun) return refuse(d.reason as Reason, d);
      if (d.decision === 'bypassed') options.totals.bypassed++;
      else if (d.decision === 'admitted') options.totals.admitted++;
      else options.totals.wouldReject++;
      const span = options.telemetry.decision(info, startedAt, d, 0);
      tunnel(options.pool, req, socket, head, { client: info.peer, proto: 'http', trusted: info.trustedPeer }, d.grant, span, options.telemetry);
    };
    if ('pending' in outcome) {
      const onClose = () => outcome.cancel();
      socket.once('close', onClose);
      void outcome.promise.then((d) => {
        socket.off('close', onClose);
        if (socket.destroyed) d?.grant?.release();
        else go(d);
      });
    } else go(outcome);
  };
}

function tunnel(
  pool: Pool,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  fwd: ForwardedFor,
  grant: Grant | undefined,
  span: Span | undefined,
  telemetry: Telemetry,
): void {
  const { headers } = forwardRequestHeaders(req.rawHeaders, fwd);
  if (span !== undefined) telemetry.inject(span, headers);
  // The span covers the handshake; the tunnel after it is not a request.
  let spanOpen = span !== undefined;
  const endSpan = (status: number) => {
    if (spanOpen && span !== undefined) {
      spanOpen = false;
      finish(span, status);
    }
  };
  const release = () => {
    grant?.release();
    endSpan(0);
  };
  socket.once('close', release);
  pool
    .upgrade({
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers,
      protocol: String(req.headers.upgrade ?? 'websocket'),
    })
    .then(
      ({ headers: upHeaders, socket: upstream }) => {
        endSpan(101);
        release();
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        let out = 'HTTP/1.1 101 Switching Protocols\r\n';
        for (const k in upHeaders) {
          const v = upHeaders[k];
          if (v === undefined) continue;
          for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
        }
        socket.write(`${out}\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
        upstream.pipe(socket);
        socket.pipe(upstream);
        upstream.once('close', () => socket.destroy());
        socket.once('close', () => upstream.destroy());
      },
      (err: unknown) => {
        const f = upstreamFailure(err);
        endSpan(f.status);
        release();
        socket.end(rawResponse(f.status, { 'content-type': 'application/json', 'x-portcullis-error': f.error }, `{"error":"${f.error}"}`));
      },
    );
}
