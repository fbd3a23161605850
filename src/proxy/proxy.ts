/**
 * The data path: one request in, one admission decision, one forward to the app. Bodies stream
 * both ways with backpressure (nothing is buffered whole). A permit is released exactly once,
 * when the response is done or the client went away, whichever comes first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Admission, Decision, Grant, PendingDecision, Reason, RequestInfo } from '../core/admission.ts';
import type { RejectResponse } from '../core/reject-response.ts';
import type { DecisionTotals } from '../core/totals.ts';
import type { Logger, SampledLog } from '../core/log.ts';
import type { Span } from '@opentelemetry/api';
import { finish, type SpanRequest, type Telemetry } from '../telemetry/telemetry.ts';
import { forwardRequestHeaders, forwardResponseHeaders, normalizeAddress, rawHeader } from './headers.ts';
import type { CutCause, CutTarget, SlowClients, Watch } from './slow-clients.ts';

export interface ProxyOptions {
  admission: Admission;
  pool: Dispatcher;
  totals: DecisionTotals;
  rejectLog: SampledLog;
  logger: Logger;
  rejects: Readonly<Record<Reason, RejectResponse>>;
  telemetry: Telemetry;
  /** Cuts clients too slow with their body or at reading the response (src/proxy/slow-clients.ts). */
  slowClients: SlowClients;
  /**
   * The socket cap: a request starts on this socket. True when the socket was turned away:
   * whatever was parsed from it is not served (the cap has answered it with its reject).
   */
  arrive: (socket: Socket) => boolean;
  /** The socket cap: the request's response is done, the socket may be idle again. */
  leave: (socket: Socket) => void;
}

/** A request as the data path sees it: what admission matches on and what a span describes. */
type Info = RequestInfo & SpanRequest;

type UpstreamFailure = { status: 502 | 504; error: string };

/** Maps undici's errors to what the client is told. Refused or reset: 502 at once; no head in time: 504. */
export function upstreamFailure(err: unknown): UpstreamFailure {
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { status: 504, error: 'upstream_timeout' };
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { status: 504, error: 'upstream_connect_timeout' };
    case 'ECONNREFUSED':
    case 'ENOENT':
      return { status: 502, error: 'upstream_refused' };
    default:
      return { status: 502, error: 'upstream_reset' };
  }
}

export class Proxy {
  private rejects: Readonly<Record<Reason, RejectResponse>>;
  /** Requests between arrival and their response's end: queued, forwarding, streaming. */
  active = 0;
  /** Once set, new requests are refused with `draining` and every response closes its connection. */
  closing = false;
  readonly slowClients: SlowClients;

  constructor(private readonly options: ProxyOptions) {
    this.rejects = options.rejects;
    this.slowClients = options.slowClients;
  }

  setRejects(rejects: Readonly<Record<Reason, RejectResponse>>): void {
    this.rejects = rejects;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.options.arrive(req.socket)) return;
    const info = requestInfo(req);
    // Wall-clock arrival for the span; only read when spans are made.
    const startedAt = this.options.telemetry.tracing ? performance.timeOrigin + performance.now() : 0;
    if (this.closing) {
      this.reject(req, res, info, startedAt, 'draining', undefined, false);
      return;
    }
    const outcome = this.options.admission.admit(info);
    if ('pending' in outcome) this.wait(req, res, info, startedAt, outcome);
    else this.decided(req, res, info, startedAt, outcome, undefined);
  };

  /** Starts tracking a request that will outlive this call (queued or forwarded): one 'close' listener. */
  private track(req: IncomingMessage, res: ServerResponse): Exchange {
    const exchange = new Exchange(this, req.socket, res, this.options.telemetry);
    this.active++;
    res.on('close', exchange.onClientClose);
    return exchange;
  }

  /** Called by an exchange when its response is closed. */
  untrack(socket: Socket): void {
    this.active--;
    this.options.leave(socket);
  }

  private wait(req: IncomingMessage, res: ServerResponse, info: Info, startedAt: number, pending: PendingDecision): void {
    const exchange = this.track(req, res);
    exchange.pending = pending;
    pending.promise.then(
      (decision) => {
        exchange.pending = undefined;
        if (decision === null) {
          this.options.totals.abandoned++;
          return;
        }
        if (res.destroyed) {
          decision.grant?.release();
          this.options.totals.abandoned++;
          return;
        }
        this.decided(req, res, info, startedAt, decision, exchange);
      },
      (err: unknown) => {
        exchange.pending = undefined;
        this.options.logger.error('admission failed', { error: String(err) });
        res.destroy();
      },
    );
  }

  private decided(req: IncomingMessage, res: ServerResponse, info: Info, startedAt: number, d: Decision, exchange: Exchange | undefined): void {
    const { totals, telemetry } = this.options;
    switch (d.decision) {
      case 'rejected':
        if (d.dryRun) {
          totals.wouldReject++;
          this.options.rejectLog.reject(d.reason as Reason, { dryRun: true, limiter: d.limiter, route: d.route });
          this.forward(req, res, info, d.grant, telemetry.decision(info, startedAt, d, 0), exchange);
          return;
        }
        this.reject(req, res, info, startedAt, d.reason as Reason, d, exchange !== undefined);
        return;
      case 'bypassed':
        totals.bypassed++;
        this.forward(req, res, info, undefined, telemetry.decision(info, startedAt, d, 0), exchange);
        return;
      case 'admitted':
        totals.admitted++;
        this.forward(req, res, info, d.grant, telemetry.decision(info, startedAt, d, 0), exchange);
        return;
    }
  }

  /** A reject is written at once; it is not tracked as active (its bytes are already on the socket). */
  private reject(req: IncomingMessage, res: ServerResponse, info: Info, startedAt: number, reason: Reason, d: Decision | undefined, tracked: boolean): void {
    const r = this.rejects[reason];
    this.options.totals.reject(reason);
    if (d === undefined) this.options.telemetry.draining(info, startedAt, r.status);
    else this.options.telemetry.decision(info, startedAt, d, r.status);
    this.options.rejectLog.reject(reason, { limiter: d?.limiter, route: d?.route, limit: d?.limit, client: info.client });
    // The request body is not wanted; node reads it out (or closes) before the next request.
    if (this.closing) res.setHeader('connection', 'close');
    res.writeHead(r.status, r.headers);
    res.end(r.body);
    // A tracked request (it waited in a queue) leaves when its response closes.
    if (!tracked) this.options.leave(req.socket);
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    info: Info,
    grant: Grant | undefined,
    span: Span | undefined,
    tracked: Exchange | undefined,
  ): void {
    const exchange = tracked ?? this.track(req, res);
    exchange.grant = grant;
    exchange.span = span;
    const { headers, hasBody } = forwardRequestHeaders(req.rawHeaders, { client: info.client, proto: 'http' });
    if (span !== undefined) this.options.telemetry.inject(span, headers);
    exchange.forwardedAt = performance.now();
    // From here on, not before: time queued in admission is not the client's to answer for.
    if (hasBody) exchange.watch().body(req);
    try {
      this.options.pool.dispatch(
        {
          origin: undefined,
          method: req.method as Dispatcher.HttpMethod,
          path: req.url ?? '/',
          headers,
          body: hasBody ? req : null,
        } as Dispatcher.DispatchOptions,
        exchange,
      );
    } catch (err) {
      // undici validates synchronously (e.g. a header value it will not send): answer, never crash.
      exchange.fail(err, 400, 'bad_request');
    }
  }

  /** Logged at most once per second per kind, like rejects. */
  upstreamError(error: string, err: unknown): void {
    this.options.rejectLog.note('upstream error', error, { error, detail: String((err as Error)?.message ?? err) });
  }
}

/**
 * What admission and telemetry need of a request: the path without its query, the client without
 * the IPv4-mapped prefix. Host and headers are read only when a route or the tracer asks: node
 * builds its lower-cased `req.headers` object on first access, and most requests never need it.
 */
export function requestInfo(req: IncomingMessage): Info {
  return new NodeRequestInfo(req);
}

class NodeRequestInfo implements RequestInfo, SpanRequest {
  readonly method: string;
  readonly path: string;
  readonly client: string;
  /** The Host header once read (null: not read yet); a route matcher may ask for it per route. */
  private hostValue: string | undefined | null = null;

  constructor(private readonly req: IncomingMessage) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    this.method = req.method ?? 'GET';
    this.path = q === -1 ? url : url.slice(0, q);
    this.client = normalizeAddress(req.socket.remoteAddress);
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

/**
 * One request that outlives its arrival: queued, then forwarded. Its one 'close' listener on the
 * response cancels the wait, releases the permit, ends the span and aborts the forward; and it is
 * undici's dispatch handler, writing straight into the client's response.
 */
class Exchange implements Dispatcher.DispatchHandler, CutTarget {
  /** While queued: the pending decision, cancelled if the client goes away. */
  pending: PendingDecision | undefined;
  grant: Grant | undefined;
  span: Span | undefined;
  /** When the forward started, for portcullis_upstream_duration_seconds. */
  forwardedAt = 0;
  /** Judges the client's pace with its body and with the response; made only when there is a body or backpressure. */
  private slow: Watch | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private done = false;
  private clientGone = false;

  constructor(
    private readonly proxy: Proxy,
    private readonly socket: Socket,
    private readonly res: ServerResponse,
    private readonly telemetry: Telemetry,
  ) {}

  private release(): void {
    const g = this.grant;
    if (g !== undefined) {
      this.grant = undefined;
      g.release();
    }
  }

  watch(): Watch {
    return (this.slow ??= this.proxy.slowClients.watch(this.socket, this.res, this));
  }

  /** A slow client is being cut (its socket is destroyed next, and 'close' ends the rest). */
  onCut(cause: CutCause): void {
    this.span?.setAttribute('portcullis.cut', cause);
  }

  readonly onClientClose = (): void => {
    this.proxy.untrack(this.socket);
    this.slow?.stop();
    if (this.pending !== undefined) {
      this.pending.cancel();
      this.pending = undefined;
    }
    this.release();
    const span = this.span;
    if (span !== undefined) {
      this.span = undefined;
      finish(span, this.res.headersSent ? this.res.statusCode : 0);
    }
    if (!this.done) {
      this.clientGone = true;
      this.controller?.abort(new Error('client went away'));
    }
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.clientGone) controller.abort(new Error('client went away'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    const res = this.res;
    if (res.destroyed) return;
    if (this.proxy.closing) res.setHeader('connection', 'close');
    res.writeHead(statusCode, statusMessage, forwardResponseHeaders(headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      // Bytes now wait for the client: from here its reading pace is judged.
      this.watch().send();
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.done = true;
    this.telemetry.recordUpstream((performance.now() - this.forwardedAt) / 1000);
    this.res.end();
    // What the socket could not take yet waits for the client, also after the app is done.
    if (this.res.writableLength > 0) this.watch().send();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.done = true;
    if (this.clientGone) {
      this.release();
      return;
    }
    const f = upstreamFailure(err);
    this.telemetry.recordUpstream((performance.now() - this.forwardedAt) / 1000);
    this.span?.setAttribute('portcullis.upstream.error', f.error);
    this.proxy.upstreamError(f.error, err);
    this.fail(err, f.status, f.error);
  }

  fail(_err: unknown, status: number, error: string): void {
    this.done = true;
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      // Mid-body: the only honest signal left is to cut the response.
      res.destroy();
      this.release();
      return;
    }
    const body = `{"error":"${error}"}`;
    res.setHeader('connection', 'close');
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'x-portcullis-error': error,
    });
    res.end(body);
  }
}
