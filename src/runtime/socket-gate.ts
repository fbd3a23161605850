/**
 * The socket cap. It sees every socket first (a 'connection' listener put ahead of the HTTP
 * server's own), counts it, and turns the excess away with a short raw write before any request
 * is answered. The HTTP server still attaches its parser to a turned-away socket (on Deno an
 * injected socket loses keep-alive, so the server must own the listener), so such sockets are
 * marked and the request handler ignores whatever it parses from them.
 */
import net from 'node:net';
import type { Config } from '../core/config-schema.ts';
import type { Reason } from '../core/admission.ts';
import type { RejectResponse } from '../core/reject-response.ts';
import { normalizeAddress } from '../proxy/headers.ts';

export interface SocketGateOptions {
  connections: Config['connections'];
  /** Precomputed socket-layer rejects. */
  rejects: Readonly<Record<Reason, RejectResponse>>;
  /** Called for each socket turned away. */
  onReject: (reason: Reason, client: string) => void;
}

/** How long a turned-away socket may stay: for its request to arrive and be answered, and read out so the client sees the answer, not a reset. */
const LINGER_MS = 1000;

export class SocketGate {
  private settings: Config['connections'];
  private rejects: Readonly<Record<Reason, RejectResponse>>;
  private readonly perClient = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();
  /** Turned-away sockets, with the reason they get once they speak (deleted once answered). */
  private readonly turnedAway = new WeakMap<net.Socket, Reason | undefined>();
  open = 0;
  peak = 0;
  rejected = 0;

  constructor(private readonly options: SocketGateOptions) {
    this.settings = options.connections;
    this.rejects = options.rejects;
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
   * Writes the reject to a turned-away socket once, when the client has sent something: from a
   * 'data' event, or from the HTTP server when its parser took the bytes first (node feeds the
   * parser without 'data' events).
   */
  answer(socket: net.Socket): void {
    const reason = this.turnedAway.get(socket);
    if (reason === undefined) return;
    this.turnedAway.set(socket, undefined);
    socket.end(this.rejects[reason].raw);
  }

  /** Live reload of the connections block; existing sockets stay, new limits apply to new sockets. */
  update(connections: Config['connections'], rejects: Readonly<Record<Reason, RejectResponse>>): void {
    this.settings = connections;
    this.rejects = rejects;
  }

  /** Ends every socket still open (last step of a drain). */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private onSocket(socket: net.Socket): void {
    const client = normalizeAddress(socket.remoteAddress);
    const { max, perClient } = this.settings;
    let reason: Reason | undefined;
    if (this.open >= max) reason = 'connection_limit';
    else if (perClient > 0 && (this.perClient.get(client) ?? 0) >= perClient) reason = 'client_connection_limit';
    if (reason !== undefined) {
      this.turnAway(socket, reason);
      this.rejected++;
      this.options.onReject(reason, client);
      return;
    }
    this.open++;
    if (this.open > this.peak) this.peak = this.open;
    // Counted even while perClient is off, so a reload that turns it on sees the sockets already open.
    this.perClient.set(client, (this.perClient.get(client) ?? 0) + 1);
    this.sockets.add(socket);
    socket.once('close', () => {
      this.open--;
      this.sockets.delete(socket);
      const n = this.perClient.get(client);
      if (n !== undefined) {
        if (n <= 1) this.perClient.delete(client);
        else this.perClient.set(client, n - 1);
      }
    });
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
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref?.();
    socket.once('close', () => clearTimeout(timer));
  }
}
