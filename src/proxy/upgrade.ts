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
import type { Dispatcher } from 'undici';
import type { ClientIdentity } from '../core/client-key.ts';
import type { Config } from '../core/config-schema.ts';
import type { SampledLog } from '../core/log.ts';
import type { Configurable } from '../core/running-config.ts';
import type { TunnelTotals } from '../core/totals.ts';
import { jsonError, rawHead, rawMessage, type HeaderValues } from '../core/wire.ts';
import type { DataPath } from './data-path.ts';
import { Handshake } from './handshake.ts';
import type { RequestSlots } from './http1.ts';
import type { RequestTargets } from './request-target.ts';
import { Tunnel, type TunnelOwner } from './tunnel.ts';

export interface UpgradeOptions {
  path: DataPath;
  pool: Dispatcher;
  tunnels: TunnelTotals;
  settings: Config['upgrade'];
  rejectLog: SampledLog;
  /** The socket cap: `begin` marks the socket busy (false: turned away, answered); `dismiss` writes the last answer and closes the socket soon, whatever the client does. */
  slots: Pick<RequestSlots, 'begin'> & { dismiss(socket: Duplex, raw: string): void };
  targets: RequestTargets;
  /** Who the client is (clientKey), updated in place on reload. */
  identity: ClientIdentity;
}

/** Our own error answer to a handshake, like the data path's: JSON body, `x-portcullis-error`. */
export function handshakeError(status: number, error: string): string {
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

/** The upgrade adapter of the data path: node's 'upgrade' events become handshakes (handshake.ts). */
export class Upgrades implements Configurable, TunnelOwner {
  private settings: Config['upgrade'];
  private allow: AllowList;
  /** Open tunnels, so a reload can re-arm their idle timers. */
  private readonly open = new Set<Tunnel>();

  constructor(readonly options: UpgradeOptions) {
    this.settings = options.settings;
    this.allow = new AllowList(options.settings.allow);
  }

  /** Live reload: new handshakes see the new list; open tunnels get the new idle timeout at once. */
  apply(config: Config): void {
    this.settings = config.upgrade;
    this.allow = new AllowList(config.upgrade.allow);
    for (const t of this.open) t.arm();
  }

  get idleTimeout(): number {
    return this.settings.idleTimeout;
  }

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const o = this.options;
    // Busy from here on: an upgraded socket is a tunnel or is dismissed, never idle, never evicted.
    if (!o.slots.begin(req.socket)) return;
    socket.on('error', () => socket.destroy());
    const target = o.targets.check(req);
    if (typeof target !== 'string') {
      if (target.error !== undefined) o.rejectLog.note('bad request', target.error, { status: target.status, error: target.error, upgrade: true });
      return o.slots.dismiss(socket, rawMessage(target));
    }
    const x = new Handshake(this, req, socket, head, target);
    const requested = String(req.headers.upgrade ?? '');
    const offered = this.allow.offered(requested);
    if (offered === undefined) {
      o.tunnels.refused++;
      o.tunnels.notAllowed++;
      o.rejectLog.note('upgrade not allowed', 'upgrade_not_allowed', { client: x.client, path: x.path, upgrade: requested.slice(0, 128) });
      o.slots.dismiss(socket, handshakeError(400, 'upgrade_not_allowed'));
      return;
    }
    x.offered = offered;
    try {
      o.path.begin(x);
    } catch (err) {
      o.path.internalError('upgrade', err, x);
    }
  };

  /** Whether the app's 101 names a protocol we offered. */
  accepts(headers: HeaderValues): boolean {
    const named = headers['upgrade'];
    const protocol = Array.isArray(named) ? named.join(', ') : named;
    return protocol !== undefined && this.allow.offered(protocol) === protocol.trim();
  }

  /** The app switched: splice the sockets. */
  splice(socket: Duplex, upstream: Duplex, head: Buffer, headers: HeaderValues): void {
    this.options.tunnels.opened++;
    socket.write(rawHead(101, 'Switching Protocols', headers, false));
    if (head.length > 0) upstream.write(head);
    new Tunnel(socket, upstream, this);
  }

  /** A handshake refused by a limit or by draining. */
  refused(): void {
    this.options.tunnels.refused++;
  }

  /** The handshake did not become a tunnel. */
  failed(error: string | undefined, err: unknown): void {
    this.options.tunnels.failed++;
    if (error !== undefined) this.options.rejectLog.note('upgrade failed', error, { error, detail: String((err as Error)?.message ?? err) });
  }

  dismiss(socket: Duplex, raw: string): void {
    this.options.slots.dismiss(socket, raw);
  }

  opened(t: Tunnel): void {
    this.open.add(t);
    this.options.tunnels.open++;
  }

  closed(t: Tunnel, idle: boolean): void {
    this.open.delete(t);
    this.options.tunnels.open--;
    if (idle) this.options.tunnels.idleClosed++;
  }
}
