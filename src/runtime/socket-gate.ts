/**
 * The socket cap. It sees every socket first (a 'connection' listener put ahead of the HTTP
 * server's own), counts it, and turns the excess away with a short raw write before any request
 * is answered. The HTTP server still attaches its parser to a turned-away socket (on Deno an
 * injected socket loses keep-alive, so the server must own the listener), so such sockets are
 * marked and the request handler ignores whatever it parses from them.
 *
 * Idle sockets (never spoke, or keep-alive between requests) are evictable: at the cap, with
 * `connections.evictIdle`, the longest-idle one is closed to make room for the new socket, the
 * way nginx reuses connections, so a flood of idle sockets cannot lock real clients out. Only when
 * every socket has a request in progress does `onLimit` apply. The request handler reports when a
 * request starts and ends on a socket (`begin` / `end`).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../core/config-schema.ts';
import type { Reason } from '../core/admission.ts';
import type { RejectCatalogue } from '../core/reject-response.ts';
import type { ClientIdentity } from '../core/client-key.ts';
import type { Configurable } from '../core/running-config.ts';

export interface SocketGateOptions {
  connections: Config['connections'];
  /** The rejects in force (their precomputed socket-layer answers). */
  rejects: RejectCatalogue;
  /** Called for each socket turned away, with the limit it hit and the sockets open. */
  onReject: (reason: Reason, client: string, limit: number, open: number) => void;
  /** Called for each idle socket closed to make room for a new one, with the cap. */
  onEvict: (client: string, max: number) => void;
  /** Keys sockets by their address (IPv6 grouped by clientKey.ipv6Prefix), never by headers. */
  identity: ClientIdentity;
}

/** An accepted socket: its client and how many requests are in progress on it (pipelining). */
interface Slot {
  readonly client: string;
  busy: number;
}

/** How long a turned-away socket may stay: for its request to arrive and be answered, and read out so the client sees the answer, not a reset. */
const LINGER_MS = 1000;

export class SocketGate implements Configurable {
  private settings: Config['connections'];
  private readonly perClient = new Map<string, number>();
  private readonly slots = new Map<net.Socket, Slot>();
  /** Accepted sockets with no request in progress, longest idle first (a Set keeps insertion order). */
  private readonly idle = new Set<net.Socket>();
  /** Turned-away sockets, with the reason they get once they speak (deleted once answered). */
  private readonly turnedAway = new WeakMap<net.Socket, Reason | undefined>();
  open = 0;
  /** Requests in progress on open sockets (a pipelining socket counts each); 0 once every exchange ended. */
  busy = 0;
  peak = 0;
  rejected = 0;
  evicted = 0;

  constructor(private readonly options: SocketGateOptions) {
    this.settings = options.connections;
  }

  /** Puts the gate in front of the server's own connection handling. */
  attach(server: net.Server): void {
    server.prependListener('connection', (socket: net.Socket) => this.onSocket(socket));
  }

  /** True for a socket the gate turned away: nothing parsed from it may be served. */
  isTurnedAway(socket: net.Socket): boolean {
    return this.turnedAway.has(socket);
  }

  /**
   * A request (or an Upgrade) starts on `socket`: it is busy until `end`. Returns whether the
   * request may be served: false when the socket was turned away (it gets the reject instead).
   */
  begin(socket: net.Socket): boolean {
    const slot = this.slots.get(socket);
    if (slot !== undefined) {
      this.busy++;
      if (slot.busy++ === 0) this.idle.delete(socket);
      return true;
    }
    if (this.turnedAway.has(socket)) {
      this.answer(socket);
      return false;
    }
    return true;
  }

  /** The response to a request on `socket` is done (or the client went away). */
  end(socket: net.Socket): void {
    const slot = this.slots.get(socket);
    if (slot === undefined || slot.busy === 0) return;
    this.busy--;
    if (--slot.busy === 0) this.idle.add(socket);
  }

  /**
   * Writes the reject to a turned-away socket once, when the client has sent something: from a
   * 'data' event, or from the HTTP server when its parser took the bytes first (node feeds the
   * parser without 'data' events).
   */
  answer(socket: net.Socket): void {
    const reason = this.turnedAway.get(socket);
    if (reason === undefined) return;
    this.turnedAway.set(socket, undefined);
    socket.end(this.options.rejects.of(reason).raw);
  }

  /**
   * Ends a socket with a last answer and frees its slot shortly after, even when the client keeps
   * its side open: a refused or failed upgrade has left HTTP, so no idle or header timeout of the
   * server applies to it any more, and eviction never picks it (it is busy).
   */
  dismiss(socket: Duplex, raw: string): void {
    socket.on('error', () => socket.destroy());
    socket.end(raw);
    lingerThenDestroy(socket);
  }

  /** Live reload of the connections block; existing sockets stay, new limits apply to new sockets. */
  apply(config: Config): void {
    this.settings = config.connections;
  }

  /** Ends every socket still open (last step of a drain). */
  destroyAll(): void {
    for (const s of this.slots.keys()) s.destroy();
  }

  private onSocket(socket: net.Socket): void {
    const client = this.options.identity.socketKey(socket.remoteAddress);
    const { max, perClient, evictIdle } = this.settings;
    let reason: Reason | undefined;
    const clientFull = perClient > 0 && (this.perClient.get(client) ?? 0) >= perClient;
    if (this.open >= max) reason = evictIdle && !clientFull && this.evictOne() ? undefined : 'connection_limit';
    if (reason === undefined && clientFull) reason = 'client_connection_limit';
    if (reason !== undefined) {
      this.turnAway(socket, reason);
      this.rejected++;
      this.options.onReject(reason, client, reason === 'connection_limit' ? max : perClient, this.open);
      return;
    }
    this.open++;
    if (this.open > this.peak) this.peak = this.open;
    // Counted even while perClient is off, so a reload that turns it on sees the sockets already open.
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    this.slots.set(socket, { client, busy: 0 });
    this.idle.add(socket);
    socket.once('close', () => this.release(socket));
  }

  /** Gives up a socket's place: on close, or at once when it is evicted (its 'close' comes later). */
  private release(socket: net.Socket): void {
    const slot = this.slots.get(socket);
    if (slot === undefined) return;
    this.slots.delete(socket);
    this.idle.delete(socket);
    this.open--;
    this.busy -= slot.busy;
    const n = this.perClient.get(slot.client);
    if (n !== undefined) {
      if (n <= 1) this.perClient.delete(slot.client);
      else this.perClient.set(slot.client, n - 1);
    }
  }

  /** Closes the longest-idle socket that has nothing left to write; false when there is none. */
  private evictOne(): boolean {
    for (const socket of this.idle) {
      if (socket.writableLength > 0) continue;
      const client = this.slots.get(socket)?.client ?? 'unknown';
      this.release(socket);
      socket.destroy();
      this.evicted++;
      this.options.onEvict(client, this.settings.max);
      return true;
    }
    return false;
  }

  private turnAway(socket: net.Socket, reason: Reason): void {
    this.turnedAway.set(socket, reason);
    socket.on('error', () => socket.destroy());
    if (this.settings.onLimit === 'close') {
      socket.destroy();
      return;
    }
    // Answer once the client has spoken: a response written on accept reaches clients that open
    // connections ahead of use (Go's, for one) as an unsolicited response on an idle connection,
    // not as a 503. What the client sends is read and dropped; a silent socket is just closed.
    socket.once('data', () => this.answer(socket));
    lingerThenDestroy(socket);
  }
}

/** Reads and drops what the client still sends (so it sees our answer, not a reset), then destroys the socket after LINGER_MS. */
function lingerThenDestroy(socket: Duplex): void {
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref?.();
  socket.once('close', () => clearTimeout(timer));
}
