/**
 * The HTTP/1.1 adapter of the data path: node:http's request events become inbound exchanges
 * (http1-exchange.ts) fed to the one data path. What it answers itself, before admission: a head
 * node could not parse (400, 408, 431, bare: src/core/wire.ts), a bad target or Host, `OPTIONS *`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Config } from '../core/config-schema.ts';
import type { ClientIdentity } from '../core/client-key.ts';
import type { SampledLog } from '../core/log.ts';
import type { Configurable } from '../core/running-config.ts';
import { bareMessage, parseErrorStatus } from '../core/wire.ts';
import type { DataPath } from './data-path.ts';
import { answerError } from './error-answer.ts';
import { normalizeAddress } from './headers.ts';
import type { OwnAnswer, RequestTargets } from './request-target.ts';
import type { SlowClients } from './slow-clients.ts';
import { Http1Exchange } from './http1-exchange.ts';

/** The socket cap as one request on a socket sees it (src/runtime/socket-gate.ts). */
export interface RequestSlots {
  /** A request starts on `socket`: true when it may be served; false when the socket was turned away (and got its reject). */
  begin(socket: Socket): boolean;
  /** The request's response is done: the socket may be idle again. */
  end(socket: Socket): void;
}

/** What the parse-error answer needs of the socket cap: a turned-away socket gets its reject, not a 400. */
export interface TurnedAway {
  isTurnedAway(socket: Socket): boolean;
  answer(socket: Socket): void;
}

export interface Http1Options {
  path: DataPath;
  slots: RequestSlots;
  targets: RequestTargets;
  /** Who the client is (clientKey), updated in place on reload. */
  identity: ClientIdentity;
  pool: Dispatcher;
  /** Cuts clients too slow with their body or at reading the response. */
  slowClients: SlowClients;
  rejectLog: SampledLog;
}

export class Http1 {
  constructor(readonly options: Http1Options) {}

  get path(): DataPath {
    return this.options.path;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, false);
  };

  /** node's 'checkContinue': the same, and `100 Continue` only once the request is admitted. */
  readonly handleExpectContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, true);
  };

  private serve(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const o = this.options;
    if (!o.slots.begin(req.socket)) return;
    try {
      const target = o.targets.check(req);
      if (typeof target !== 'string') return this.answerOwn(req, res, target);
      o.path.begin(new Http1Exchange(this, req, res, target, expectContinue));
    } catch (err) {
      o.path.internalError('request', err, undefined);
      answerError(res, 500, 'internal_error');
    }
  }

  /** Answered by portcullis before admission (bad target or Host, OPTIONS *): no permit, not the app's fault. */
  private answerOwn(req: IncomingMessage, res: ServerResponse, a: OwnAnswer): void {
    if (a.error !== undefined) {
      const fields = { status: a.status, error: a.error, target: req.url?.slice(0, 200), client: normalizeAddress(req.socket.remoteAddress) };
      this.options.rejectLog.note('bad request', a.error, fields);
    }
    if (a.close || this.options.path.closing) res.setHeader('connection', 'close');
    res.writeHead(a.status, a.headers);
    res.end(a.body);
    this.options.slots.end(req.socket);
  }
}

/** Node checks header and keep-alive timeouts on this interval; slowloris is cut at most this late. */
function checkingInterval(c: Config['connections']): number {
  return Math.max(50, Math.min(1000, Math.floor(c.headerTimeout / 4)));
}

/**
 * The node:http server for the adapter, and its timeouts as a Configurable: new connections get
 * the new values (node reads them when a connection starts).
 */
export function createHttp1Server(options: { http1: Http1; connections: Config['connections']; gate: TurnedAway; rejectLog: SampledLog }): {
  server: http.Server;
  settings: Configurable;
} {
  const c = options.connections;
  const { http1 } = options;
  const server = http.createServer(
    {
      maxHeaderSize: c.maxHeaderSize,
      headersTimeout: c.headerTimeout,
      requestTimeout: 0, // bodies may take long (a 1 GiB upload); the head is what slowloris abuses
      keepAliveTimeout: c.idleTimeout,
      connectionsCheckingInterval: checkingInterval(c),
    },
    http1.handle,
  );
  // With a listener, node leaves `Expect: 100-continue` to us: answered once admitted.
  server.on('checkContinue', http1.handleExpectContinue);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerParseError(err, socket, options));
  const settings: Configurable = {
    apply(config) {
      server.headersTimeout = config.connections.headerTimeout;
      server.keepAliveTimeout = config.connections.idleTimeout;
      (server as { maxHeaderSize?: number }).maxHeaderSize = config.connections.maxHeaderSize;
    },
  };
  return { server, settings };
}

/** A head node could not parse: a bare 400/408/431 (or the socket cap's reject for a turned-away socket). */
function answerParseError(err: NodeJS.ErrnoException, socket: Socket, o: { gate: TurnedAway; rejectLog: SampledLog }): void {
  if (o.gate.isTurnedAway(socket)) {
    o.gate.answer(socket);
    return;
  }
  if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') {
    socket.destroy();
    return;
  }
  const status = parseErrorStatus(err.code);
  o.rejectLog.note('bad request', String(status), { status, code: err.code, error: err.message });
  socket.end(bareMessage(status));
}
