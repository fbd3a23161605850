/**
 * The data path: one request in, one admission decision, one forward to the app. Bodies stream
 * both ways with backpressure (nothing is buffered whole). A permit is released exactly once,
 * on the exchange's one "ended" signal (exchange-end.ts), however the exchange ends. Anything
 * thrown while serving one request is answered (500, or a cut), counted and logged: one request
 * never ends the process.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Admission, Decision, Grant, PendingDecision, Reason, RequestInfo } from '../core/admission.ts';
import type { RejectResponse } from '../core/reject-response.ts';
import type { ClientIdentity } from '../core/client-key.ts';
import type { DecisionTotals } from '../core/totals.ts';
import type { Logger, SampledLog } from '../core/log.ts';
import type { Span } from '@opentelemetry/api';
import { finish, type SpanRequest, type Telemetry } from '../telemetry/telemetry.ts';
import { forwardRequestHeaders, forwardResponseHeaders, normalizeAddress, rawHeader } from './headers.ts';
import type { PathNormalizer } from '../core/path-normalize.ts';
import { checkTarget, type OwnAnswer } from './request-target.ts';
import { onExchangeEnd } from './exchange-end.ts';
import { answerError } from './error-answer.ts';
import type { CutCause, CutTarget, SlowClients, Watch } from './slow-clients.ts';

export interface ProxyOptions {
  admission: Admission;
  pool: Dispatcher;
  totals: DecisionTotals;
  rejectLog: SampledLog;
  logger: Logger;
  rejects: Readonly<Record<Reason, RejectResponse>>;
  telemetry: Telemetry;
  /** Who the client is (clientKey), updated in place on reload. */
  identity: ClientIdentity;
  /** Cuts clients too slow with their body or at reading the response (src/proxy/slow-clients.ts). */
  slowClients: SlowClients;
  /**
   * The socket cap: a request starts on this socket. True when the socket was turned away:
   * whatever was parsed from it is not served (the cap has answered it with its reject).
   */
  arrive: (socket: Socket) => boolean;
  /** The socket cap: the request's response is done, the socket may be idle again. */
  leave: (socket: Socket) => void;
  /** The path rules in force (config `paths`). */
  paths: () => PathNormalizer;
}

/** A request as the data path sees it: what admission matches on, what a span describes, whom X-Forwarded-* name. */
type Info = RequestInfo & SpanRequest & { readonly target: string; expectContinue: boolean; readonly peer: string; readonly trustedPeer: boolean };

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
    this.serve(req, res, false);
  };

  /** node's 'checkContinue': the same, and `100 Continue` only once the request is admitted. */
  readonly handleExpectContinue = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res, true);
  };

  private serve(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    if (this.options.arrive(req.socket)) return;
    try {
      const target = checkTarget(req, this.options.paths());
      if (typeof target !== 'string') return this.answerOwn(req, res, target);
      const info = requestInfo(req, target, this.options.identity);
      info.expectContinue = expectContinue;
      // Wall-clock arrival for the span; only read when spans are made.
      const startedAt = this.options.telemetry.tracing ? performance.timeOrigin + performance.now() : 0;
      if (this.closing) {
        this.reject(req, res, info, startedAt, 'draining', undefined, false);
        return;
      }
      const outcome = this.options.admission.admit(info);
      if ('pending' in outcome) this.wait(req, res, info, startedAt, outcome);
      else this.decided(req, res, info, startedAt, outcome, undefined);
    } catch (err) {
      this.internalError('request', err, res);
    }
  }

  /**
   * Anything thrown while serving one request: answered (500, or a cut once the head is out, with
   * the connection closed so the socket's slot goes too), counted in /stats and metrics, logged
   * (sampled). The exchange's end signal still releases whatever it held.
   */
  internalError(where: string, err: unknown, res: ServerResponse): void {
    this.options.totals.internalError++;
    this.options.telemetry.countInternalError(where);
    const e = err as Error | undefined;
    this.options.rejectLog.note('internal error', where, { where, error: String(e?.message ?? err), code: (e as { code?: string } | undefined)?.code, stack: e?.stack }, 'error');
    answerError(res, 500, 'internal_error');
  }

  /** Starts tracking a request that will outlive this call (queued or forwarded), until its one end signal. */
  private track(req: IncomingMessage, res: ServerResponse): Exchange {
    const exchange = new Exchange(this, req, res, this.options.telemetry);
    this.active++;
    onExchangeEnd(res, req.socket, exchange.end);
    return exchange;
  }

  /** Called by an exchange when it ended (once). */
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
        // Gone while queued (pipelined responses never attached included): never forwarded.
        if (exchange.ended) {
          decision.grant?.release();
          this.options.totals.abandoned++;
          return;
        }
        try {
          this.decided(req, res, info, startedAt, decision, exchange);
        } catch (err) {
          this.internalError('queued request', err, res);
        }
      },
      (err: unknown) => {
        exchange.pending = undefined;
        this.internalError('admission', err, res);
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

  /** Answered by portcullis before admission (bad target or Host, OPTIONS *): no permit, not the app's fault. */
  private answerOwn(req: IncomingMessage, res: ServerResponse, a: OwnAnswer): void {
    if (a.error !== undefined) {
      const fields = { status: a.status, error: a.error, target: req.url?.slice(0, 200), client: normalizeAddress(req.socket.remoteAddress) };
      this.options.rejectLog.note('bad request', a.error, fields);
    }
    if (a.close || this.closing) res.setHeader('connection', 'close');
    res.writeHead(a.status, a.headers);
    res.end(a.body);
    this.options.leave(req.socket);
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
    const { headers, hasBody } = forwardRequestHeaders(req.rawHeaders, { client: info.peer, proto: 'http', trusted: info.trustedPeer });
    if (span !== undefined) this.options.telemetry.inject(span, headers);
    exchange.forwardedAt = performance.now();
    // Admitted: only now may the client send the body it held back.
    if (info.expectContinue) res.writeContinue();
    // From here on, not before: time queued in admission is not the client's to answer for.
    if (hasBody) exchange.watch().body(req);
    try {
      this.options.pool.dispatch(
        {
          origin: undefined,
          method: req.method as Dispatcher.HttpMethod,
          path: info.target,
          headers,
          body: hasBody ? req : null,
        } as Dispatcher.DispatchOptions,
        exchange,
      );
    } catch (err) {
      // undici validates synchronously (e.g. a header value it will not send): answer, never crash.
      exchange.fail(400, 'bad_request');
    }
  }

  /** Logged at most once per second per kind, like rejects. */
  upstreamError(error: string, err: unknown): void {
    this.options.rejectLog.note('upstream error', error, { error, detail: String((err as Error)?.message ?? err) });
  }
}

/**
 * What admission and telemetry need of a request: the normalized target (checkTarget) and its path
 * without the query, the peer without the IPv4-mapped prefix, the client's address and key
 * (core/client-key.ts). Host and headers are read only when a route or the tracer asks: node
 * builds its lower-cased `req.headers` object on first access, and most requests never need it.
 */
export function requestInfo(req: IncomingMessage, target: string, identity: ClientIdentity): Info {
  return new NodeRequestInfo(req, target, identity);
}

class NodeRequestInfo implements RequestInfo, SpanRequest {
  readonly method: string;
  readonly path: string;
  /** The per-client key (clientKey.from). */
  readonly client: string;
  /** Origin-form, normalized: what routes matched is what is forwarded. */
  readonly target: string;
  /** The client sent `Expect: 100-continue` and node left the answer to us (after admission). */
  expectContinue = false;
  /** The client's address: the peer, or behind a trusted proxy the one X-Forwarded-For names. */
  readonly clientAddress: string;
  /** The socket peer, and whether it is a trusted proxy: what X-Forwarded-* are built from. */
  readonly peer: string;
  readonly trustedPeer: boolean;
  /** The Host header once read (null: not read yet); a route matcher may ask for it per route. */
  private hostValue: string | undefined | null = null;

  constructor(
    private readonly req: IncomingMessage,
    target: string,
    identity: ClientIdentity,
  ) {
    const q = target.indexOf('?');
    this.method = req.method ?? 'GET';
    this.target = target;
    this.path = q === -1 ? target : target.slice(0, q);
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

/**
 * One request that outlives its arrival: queued, then forwarded. Its one end signal (see
 * exchange-end.ts) cancels the wait, releases the permit, ends the span and aborts the forward;
 * and it is undici's dispatch handler, writing straight into the client's response. Every
 * callback is guarded: a throw while writing the app's answer is an internal error of this one
 * exchange, never the process's.
 */
class Exchange implements Dispatcher.DispatchHandler, CutTarget {
  /** While queued: the pending decision, cancelled if the client goes away. */
  pending: PendingDecision | undefined;
  grant: Grant | undefined;
  span: Span | undefined;
  /** When the forward started, for portcullis_upstream_duration_seconds. */
  forwardedAt = 0;
  /** The exchange is over, however it ended: nothing more is written, everything is released. */
  ended = false;
  /** Judges the client's pace with its body and with the response; made only when there is a body or backpressure. */
  private slow: Watch | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  /** The app's response is over (ended, failed, or given up on): nothing left to abort. */
  private forwardDone = false;
  /** We answered ourselves (an error); what the app still sends is dropped. */
  private answered = false;
  /** Kept from the start: node may clear `req.socket` before the exchange ends. */
  private readonly socket: Socket;

  constructor(
    private readonly proxy: Proxy,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly telemetry: Telemetry,
  ) {
    this.socket = req.socket;
  }

  watch(): Watch {
    return (this.slow ??= this.proxy.slowClients.watch(this.socket, this.res, this));
  }

  /** A slow client is being cut (its socket is destroyed next, and 'close' ends the rest). */
  onCut(cause: CutCause): void {
    this.span?.setAttribute('portcullis.cut', cause);
  }

  /** The one release path: called once by the end signal. */
  readonly end = (): void => {
    this.ended = true;
    this.proxy.untrack(this.socket);
    this.slow?.stop();
    if (this.pending !== undefined) {
      this.pending.cancel();
      this.pending = undefined;
    }
    const g = this.grant;
    if (g !== undefined) {
      this.grant = undefined;
      g.release();
    }
    const span = this.span;
    if (span !== undefined) {
      this.span = undefined;
      finish(span, this.res.headersSent ? this.res.statusCode : 0);
    }
    if (!this.forwardDone) {
      this.forwardDone = true;
      this.controller?.abort(new Error('client went away'));
    }
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.ended) controller.abort(new Error('client went away'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    const res = this.res;
    if (this.ended || this.answered || res.destroyed) return;
    if (statusCode < 200) return this.informational(statusCode, headers);
    try {
      if (this.proxy.closing) res.setHeader('connection', 'close');
      res.writeHead(statusCode, statusMessage, forwardResponseHeaders(headers));
    } catch (err) {
      this.internal('response head', err, controller);
    }
  }

  /**
   * A 1xx before the final answer: a 103 Early Hints goes on to an HTTP/1.1 client, any other
   * (102, or a hint node refuses) is dropped. Never fatal: the final response follows.
   */
  private informational(statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    const { req, res } = this;
    if (statusCode !== 103 || res.headersSent || (req.httpVersionMajor === 1 && req.httpVersionMinor === 0)) return;
    try {
      res.writeEarlyHints(forwardResponseHeaders(headers));
    } catch {
      // A Link value node will not write: the hint is dropped, the response goes on.
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.ended || this.answered) return;
    try {
      if (!this.res.write(chunk)) {
        // Bytes now wait for the client: from here its reading pace is judged.
        this.watch().send();
        controller.pause();
        this.res.once('drain', () => controller.resume());
      }
    } catch (err) {
      this.internal('response body', err, controller);
    }
  }

  onResponseEnd(): void {
    this.forwardDone = true;
    this.telemetry.recordUpstream((performance.now() - this.forwardedAt) / 1000);
    if (this.ended || this.answered) return;
    try {
      this.res.end();
      // What the socket could not take yet waits for the client, also after the app is done.
      if (this.res.writableLength > 0) this.watch().send();
    } catch (err) {
      this.proxy.internalError('response end', err, this.res);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.forwardDone = true;
    // Gone, or already answered: the end signal releases what is held.
    if (this.ended || this.answered) return;
    try {
      const f = upstreamFailure(err);
      this.telemetry.recordUpstream((performance.now() - this.forwardedAt) / 1000);
      this.span?.setAttribute('portcullis.upstream.error', f.error);
      this.proxy.upstreamError(f.error, err);
      this.fail(f.status, f.error);
    } catch (e) {
      this.proxy.internalError('upstream error', e, this.res);
    }
  }

  /** Answers an error of ours (or cuts mid-body); the response's end then ends the exchange. */
  fail(status: number, error: string): void {
    this.forwardDone = true;
    this.answered = true;
    answerError(this.res, status, error);
  }

  /** A throw while relaying the app's answer: answer it as ours and stop the forward. */
  private internal(where: string, err: unknown, controller: Dispatcher.DispatchController): void {
    this.answered = true;
    this.proxy.internalError(where, err, this.res);
    if (!this.forwardDone) {
      this.forwardDone = true;
      controller.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
