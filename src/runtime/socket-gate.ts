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

/** How long a turned-away socket may linger to read its request out, so the client sees our answer and not a reset. */
const LINGER_MS = 1000;

export class SocketGate {
  private settings: Config['connections'];
  private rejects: Readonly<Record<Reason, RejectResponse>>;
  private readonly perClient = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();
  private readonly turnedAway = new WeakSet<net.Socket>();
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
    this.turnedAway.add(socket);
    socket.on('error', () => socket.destroy());
    if (this.settings.onLimit === 'close') {
      socket.destroy();
      return;
    }
    socket.end(this.rejects[reason].raw);
    // Read and drop whatever the client sends meanwhile; then make sure the socket goes.
    socket.resume();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref?.();
    socket.once('close', () => clearTimeout(timer));
  }
}
