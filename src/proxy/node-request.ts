/**
 * The request half of an exchange parsed by node:http (HTTP/1.1 requests and upgrade handshakes):
 * the normalized target and its path without the query, the peer without the IPv4-mapped prefix,
 * the client's address and key (core/client-key.ts). Host and headers are read only when a route
 * or the tracer asks: node builds its lower-cased `req.headers` object on first access, and most
 * requests never need it.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientIdentity } from '../core/client-key.ts';
import { InboundExchange, type DataPath } from './data-path.ts';
import { normalizeAddress, rawHeader } from './headers.ts';

export abstract class NodeExchange extends InboundExchange {
  readonly method: string;
  readonly path: string;
  readonly target: string;
  /** The per-client key (clientKey.from). */
  readonly client: string;
  /** The client's address: the peer, or behind a trusted proxy the one X-Forwarded-For names. */
  readonly clientAddress: string;
  readonly peer: string;
  readonly trustedPeer: boolean;
  /** Kept from the start: node may clear `req.socket` before the exchange ends. */
  readonly socket: Socket;
  /** The Host header once read (null: not read yet); a route matcher may ask for it per route. */
  private hostValue: string | undefined | null = null;

  constructor(
    dataPath: DataPath,
    readonly req: IncomingMessage,
    target: string,
    identity: ClientIdentity,
  ) {
    super(dataPath);
    const q = target.indexOf('?');
    this.method = req.method ?? 'GET';
    this.target = target;
    this.path = q === -1 ? target : target.slice(0, q);
    this.socket = req.socket;
    this.peer = normalizeAddress(req.socket.remoteAddress);
    this.trustedPeer = identity.trusts(this.peer);
    this.clientAddress = identity.address(this.peer, this.trustedPeer, req.rawHeaders);
    this.client = identity.key(this.clientAddress, req.rawHeaders);
  }

  get host(): string | undefined {
    if (this.hostValue === null) this.hostValue = rawHeader(this.req.rawHeaders, 'host');
    return this.hostValue;
  }

  get headers(): IncomingMessage['headers'] {
    return this.req.headers;
  }

  get traceparent(): string | undefined {
    return rawHeader(this.req.rawHeaders, 'traceparent');
  }
}
