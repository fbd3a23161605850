/**
 * Upgrade (WebSocket): only the protocols in `upgrade.allow` are tunnelled, since a tunnel is
 * past every limiter (an `h2c` tunnel would carry unlimited requests); any other token is
 * answered 400 before anything reaches the app. Admission decides at the handshake like for any
 * request; once the app answers 101 the permit is released and the two sockets are spliced into
 * a tunnel, closed after `upgrade.idleTimeout` without a byte either way. The tunnel keeps its
 * client socket, so it keeps holding a slot of the socket cap until either side closes.
 *
 * A handshake that does not become a tunnel (refused by a limit, draining, not allowed; or the
 * app answered normally, refused or failed) has left HTTP for good: the server's timeouts and
 * eviction no longer see the socket. So it is answered and dismissed through the socket cap,
 * which closes it after a short linger even if the client keeps its side open.
 */
import type { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Span } from '@opentelemetry/api';
import type { Admission, Decision, Grant, Reason } from '../core/admission.ts';
import type { Config } from '../core/config-schema.ts';
import type { DecisionTotals, TunnelTotals } from '../core/totals.ts';
import type { SampledLog } from '../core/log.ts';
import type { RejectResponse } from '../core/reject-response.ts';
import type { PathNormalizer } from '../core/path-normalize.ts';
import { checkTarget } from './request-target.ts';
import type { ClientIdentity } from '../core/client-key.ts';
import { jsonError, rawHead, rawMessage, statusText, type HeaderValues } from '../core/wire.ts';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.ts';
import { requestInfo, upstreamFailure } from './proxy.ts';
import { finish, type Telemetry } from '../telemetry/telemetry.ts';

export interface UpgradeOptions {
  admission: Admission;
  pool: Dispatcher;
  totals: DecisionTotals;
  tunnels: TunnelTotals;
  settings: Config['upgrade'];
  rejectLog: SampledLog;
  rejects: () => Readonly<Record<Reason, RejectResponse>>;
  closing: () => boolean;
  /** The socket cap's `arrive`: true when the socket was turned away (and has been answered). */
  arrive: (socket: Socket) => boolean;
  /** The socket cap's `dismiss`: writes the last answer and closes the socket soon, whatever the client does. */
  dismiss: (socket: Duplex, raw: string) => void;
  telemetry: Telemetry;
  /** The path rules in force (config `paths`). */
  paths: () => PathNormalizer;
  /** Who the client is (clientKey), updated in place on reload. */
  identity: ClientIdentity;
}

/** Longest delay setTimeout takes as given (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Our own error answer to a handshake, like the data path's: JSON body, `x-portcullis-error`. */
function errorResponse(status: number, error: string): string {
  return rawMessage(jsonError(status, error));
}

/**
 * `upgrade.allow` compiled once per config. `offered` keeps, of the tokens a client (or the app
 * in its 101) listed, only the allowed ones, in their order and spelling; undefined when none is.
 * The allowed ones alone are forwarded, so the app cannot pick a protocol we did not allow.
 */
class AllowList {
  private readonly names: ReadonlySet<string>;

  constructor(allow: readonly string[]) {
    this.names = new Set(allow.map((t) => t.toLowerCase()));
  }

  offered(header: string): string | undefined {
    let out: string | undefined;
    for (const raw of header.split(',')) {
      const token = raw.trim();
      if (token === '') continue;
      const lower = token.toLowerCase();
      const slash = lower.indexOf('/');
      if (this.names.has(lower) || (slash > 0 && this.names.has(lower.slice(0, slash)))) out = out === undefined ? token : `${out}, ${token}`;
    }
    return out;
  }
}

export class Upgrades {
  private settings: Config['upgrade'];
  private allow: AllowList;
  /** Open tunnels, so a reload can re-arm their idle timers. */
  private readonly open = new Set<Tunnel>();

  constructor(private readonly options: UpgradeOptions) {
    this.settings = options.settings;
    this.allow = new AllowList(options.settings.allow);
  }

  /** Live reload: new handshakes see the new list; open tunnels get the new idle timeout at once. */
  update(settings: Config['upgrade']): void {
    this.settings = settings;
    this.allow = new AllowList(settings.allow);
    for (const t of this.open) t.arm();
  }

  get idleTimeout(): number {
    return this.settings.idleTimeout;
  }

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const o = this.options;
    // Busy from here on: an upgraded socket is a tunnel or is dismissed, never idle, never evicted.
    if (o.arrive(req.socket)) return;
    socket.on('error', () => socket.destroy());
    const target = checkTarget(req, o.paths());
    if (typeof target !== 'string') {
      if (target.error !== undefined) o.rejectLog.note('bad request', target.error, { status: target.status, error: target.error, upgrade: true });
      return o.dismiss(socket, rawMessage(target));
    }
    const info = requestInfo(req, target, o.identity);
    const client = info.client;
    const requested = String(req.headers.upgrade ?? '');
    const offered = this.allow.offered(requested);
    if (offered === undefined) {
      o.tunnels.refused++;
      o.tunnels.notAllowed++;
      o.rejectLog.note('upgrade not allowed', 'upgrade_not_allowed', { client, path: info.path, upgrade: requested.slice(0, 128) });
      o.dismiss(socket, errorResponse(400, 'upgrade_not_allowed'));
      return;
    }
    const startedAt = performance.timeOrigin + performance.now();
    const refuse = (reason: Reason, d: Decision | undefined) => {
      const r = o.rejects()[reason];
      if (d === undefined) o.telemetry.draining(info, startedAt, r.status);
      else o.telemetry.decision(info, startedAt, d, r.status);
      o.totals.reject(reason);
      o.tunnels.refused++;
      o.rejectLog.reject(reason, { limiter: d?.limiter, route: d?.route, client, upgrade: true });
      o.dismiss(socket, rawMessage(r));
    };
    if (o.closing()) return refuse('draining', undefined);
    const outcome = o.admission.admit(info);
    const go = (d: Decision | null) => {
      if (d === null) return;
      if (d.decision === 'rejected' && !d.dryRun) return refuse(d.reason as Reason, d);
      if (d.decision === 'bypassed') o.totals.bypassed++;
      else if (d.decision === 'admitted') o.totals.admitted++;
      else o.totals.wouldReject++;
      const span = o.telemetry.decision(info, startedAt, d, 0);
      const { headers } = forwardRequestHeaders(req.rawHeaders, { client: info.peer, proto: 'http', trusted: info.trustedPeer });
      if (span !== undefined) o.telemetry.inject(span, headers);
      const handshake = new Handshake(this, socket, head, d.grant, span);
      try {
        o.pool.dispatch(
          { origin: undefined, method: (req.method ?? 'GET') as Dispatcher.HttpMethod, path: info.target, headers, upgrade: offered } as Dispatcher.DispatchOptions,
          handshake,
        );
      } catch (err) {
        // undici validates synchronously (e.g. a header value it will not send): answer, never crash.
        handshake.fail(err, 400, 'bad_request');
      }
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

  /** The app switched: splice the sockets. False when its 101 names a protocol we did not offer. */
  accepted(socket: Duplex, upstream: Duplex, head: Buffer, headers: HeaderValues): boolean {
    const o = this.options;
    const named = headers['upgrade'];
    const protocol = Array.isArray(named) ? named.join(', ') : named;
    if (protocol === undefined || this.allow.offered(protocol) !== protocol.trim()) return false;
    o.tunnels.opened++;
    socket.write(rawHead(101, 'Switching Protocols', headers, false));
    if (head.length > 0) upstream.write(head);
    this.open.add(new Tunnel(socket, upstream, this));
    return true;
  }

  /** The handshake did not become a tunnel. */
  failed(error: string | undefined, err: unknown): void {
    this.options.tunnels.failed++;
    if (error !== undefined) this.options.rejectLog.note('upgrade failed', error, { error, detail: String((err as Error)?.message ?? err) });
  }

  dismiss(socket: Duplex, raw: string): void {
    this.options.dismiss(socket, raw);
  }

  opened(): void {
    this.options.tunnels.open++;
  }

  closed(t: Tunnel, idle: boolean): void {
    this.open.delete(t);
    this.options.tunnels.open--;
    if (idle) this.options.tunnels.idleClosed++;
  }
}

/**
 * One handshake forwarded to the app, as undici's dispatch handler. It ends exactly once: 101
 * (a tunnel), a normal response (passed to the client, who learns why: 401, 426...), an error,
 * or the client gone. The permit is released when it ends; the span covers the handshake only.
 */
class Handshake implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private done = false;
  /** The app's status when it answered without switching (its head has been written). */
  private status = 0;

  constructor(
    private readonly owner: Upgrades,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private grant: Grant | undefined,
    private span: Span | undefined,
  ) {
    socket.once('close', this.onClientClose);
  }

  private end(status: number): void {
    this.done = true;
    this.socket.off('close', this.onClientClose);
    const g = this.grant;
    this.grant = undefined;
    g?.release();
    const span = this.span;
    this.span = undefined;
    if (span !== undefined) finish(span, status);
  }

  private readonly onClientClose = (): void => {
    if (this.done) return;
    this.end(0);
    this.controller?.abort(new Error('client went away'));
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.done) controller.abort(new Error('client went away'));
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderValues, upstream: Duplex): void {
    if (this.done) {
      upstream.destroy();
      return;
    }
    this.end(statusCode);
    if (this.socket.destroyed) {
      upstream.destroy();
      return;
    }
    if (!this.owner.accepted(this.socket, upstream, this.head, headers)) {
      upstream.destroy();
      this.owner.failed('upstream_bad_upgrade', new Error(`the app switched to ${String(headers['upgrade'])}, which was not offered`));
      this.owner.dismiss(this.socket, errorResponse(502, 'upstream_bad_upgrade'));
    }
  }

  /** The app answered without switching: the client gets that answer, then the socket is dismissed. */
  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderValues, statusMessage?: string): void {
    if (this.done) return;
    this.status = statusCode;
    this.socket.write(rawHead(statusCode, statusMessage || statusText(statusCode), forwardResponseHeaders(headers), true));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    if (!this.socket.write(chunk)) {
      controller.pause();
      this.socket.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.done) return;
    this.end(this.status);
    this.owner.failed(undefined, undefined);
    // The body, if it had no length, is delimited by our close.
    this.owner.dismiss(this.socket, '');
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.done) return;
    const f = upstreamFailure(err);
    this.fail(err, f.status, f.error);
  }

  fail(err: unknown, status: number, error: string): void {
    if (this.done) return;
    const midBody = this.status !== 0;
    this.end(status);
    this.owner.failed(error, err);
    if (midBody) this.socket.destroy(); // mid-body: cutting is the only honest signal left
    else this.owner.dismiss(this.socket, errorResponse(status, error));
  }
}

/** Two spliced sockets; closed when either side closes, or after `upgrade.idleTimeout` without a byte either way. */
class Tunnel {
  private last = performance.now();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly client: Duplex,
    private readonly upstream: Duplex,
    private readonly owner: Upgrades,
  ) {
    owner.opened();
    const touch = () => {
      this.last = performance.now();
    };
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('data', touch);
    client.on('data', touch);
    upstream.pipe(client);
    client.pipe(upstream);
    upstream.once('close', () => this.close(false));
    client.once('close', () => this.close(false));
    this.arm();
  }

  /** (Re)starts the idle timer from the last byte seen, for the current `idleTimeout`. */
  arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const idle = this.owner.idleTimeout;
    if (this.closed || idle === 0) return;
    // One timer per tunnel, not one reset per chunk: on firing it checks when the last byte was.
    const left = Math.max(1, idle - (performance.now() - this.last));
    this.timer = setTimeout(this.check, Math.min(left, MAX_TIMER_MS));
    this.timer.unref?.();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const idle = this.owner.idleTimeout;
    if (this.closed || idle === 0) return;
    if (performance.now() - this.last >= idle) this.close(true);
    else this.arm();
  };

  private close(idle: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.owner.closed(this, idle);
    this.client.destroy();
    this.upstream.destroy();
  }
}
