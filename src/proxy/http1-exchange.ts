/**
 * One HTTP/1.1 request as an inbound exchange of the data path: queued, then forwarded, as
 * undici's dispatch handler writing straight into the client's response. Its one end signal
 * (exchange-end.ts: the response's or the socket's close) ends it in the data path, which
 * releases the permit with its outcome and ends the span; here it stops the slow-client watch,
 * aborts the forward and frees the socket's slot. Bodies stream both ways with backpressure.
 * Every callback is guarded: a throw while writing the app's answer is an internal error of this
 * one exchange, never the process's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { RejectResponse } from '../core/reject-response.ts';
import type { HeaderValues } from '../core/wire.ts';
import { answerError } from './error-answer.ts';
import { onExchangeEnd } from './exchange-end.ts';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.ts';
import type { Http1 } from './http1.ts';
import { NodeExchange } from './node-request.ts';
import { upstreamFailure } from './outcome.ts';
import type { CutCause, CutTarget, Watch } from './slow-clients.ts';

export class Http1Exchange extends NodeExchange implements Dispatcher.DispatchHandler, CutTarget {
  /** When the forward started, for portcullis_upstream_duration_seconds. */
  private forwardedAt = 0;
  /** Judges the client's pace with its body and with the response; made only when there is a body or backpressure. */
  private slow: Watch | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  /** The app's response is over (ended, failed, or given up on): nothing left to abort. */
  private forwardDone = false;
  /** We answered ourselves (an error); what the app still sends is dropped. */
  private answered = false;

  constructor(
    private readonly owner: Http1,
    req: IncomingMessage,
    private readonly res: ServerResponse,
    target: string,
    /** The client sent `Expect: 100-continue` and node left the answer to us (after admission). */
    private readonly expectContinue: boolean,
  ) {
    super(owner.options.path, req, target, owner.options.identity);
  }

  reject(r: RejectResponse): void {
    const res = this.res;
    // The request body is not wanted; node reads it out (or closes) before the next request.
    if (this.dataPath.closing) res.setHeader('connection', 'close');
    res.writeHead(r.status, r.headers);
    res.end(r.body);
    // A tracked request (it waited in a queue) leaves when its response closes.
    if (!this.tracked) this.owner.options.slots.end(this.socket);
  }

  forward(): void {
    const { req } = this;
    const { headers, hasBody } = forwardRequestHeaders(req.rawHeaders, { client: this.peer, proto: 'http', trusted: this.trustedPeer });
    if (this.span !== undefined) this.dataPath.telemetry.inject(this.span, headers);
    this.forwardedAt = performance.now();
    // Admitted: only now may the client send the body it held back.
    if (this.expectContinue) this.res.writeContinue();
    // From here on, not before: time queued in admission is not the client's to answer for.
    if (hasBody) {
      this.watch().body(req);
      // The adaptive limit's RTT starts once the body is in: its pace is the client's.
      req.once('end', () => (this.bodyDoneAt = performance.now()));
    }
    try {
      this.owner.options.pool.dispatch(
        { origin: undefined, method: req.method as Dispatcher.HttpMethod, path: this.target, headers, body: hasBody ? req : null } as Dispatcher.DispatchOptions,
        this,
      );
    } catch {
      // undici validates synchronously (e.g. a header value it will not send): answer, never crash.
      this.fail(400, 'bad_request', 'ours');
    }
  }

  answerInternal(): void {
    this.answered = true;
    this.failure ??= 'ours';
    answerError(this.res, 500, 'internal_error');
  }

  protected watchEnd(): void {
    onExchangeEnd(this.res, this.socket, this.end);
  }

  protected spanStatus(): number {
    return this.res.headersSent ? this.res.statusCode : 0;
  }

  protected closed(): void {
    this.owner.options.slots.end(this.socket);
    this.slow?.stop();
    if (!this.forwardDone) {
      this.forwardDone = true;
      this.controller?.abort(new Error('client went away'));
    }
  }

  private watch(): Watch {
    return (this.slow ??= this.owner.options.slowClients.watch(this.socket, this.res, this));
  }

  /** A slow client is being cut (its socket is destroyed next, and 'close' ends the rest). */
  onCut(cause: CutCause): void {
    this.failure ??= 'ours';
    this.span?.setAttribute('portcullis.cut', cause);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.ended) controller.abort(new Error('client went away'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderValues, statusMessage?: string): void {
    const res = this.res;
    if (this.ended || this.answered || res.destroyed) return;
    if (statusCode < 200) return this.informational(statusCode, headers);
    this.status = statusCode;
    try {
      if (this.dataPath.closing) res.setHeader('connection', 'close');
      res.writeHead(statusCode, statusMessage, forwardResponseHeaders(headers));
    } catch (err) {
      this.internal('response head', err, controller);
    }
  }

  /**
   * A 1xx before the final answer: a 103 Early Hints goes on to an HTTP/1.1 client, any other
   * (102, or a hint node refuses) is dropped. Never fatal: the final response follows.
   */
  private informational(statusCode: number, headers: HeaderValues): void {
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
        // Bytes now wait for the client: from here its reading pace is judged, and the app's
        // answer is paced by it, so its RTT says nothing about the app.
        this.clientPaced = true;
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
    // One clock read for both: the upstream histogram and the end of the limiters' RTT sample.
    const now = performance.now();
    this.appDoneAt = now;
    this.dataPath.telemetry.recordUpstream((now - this.forwardedAt) / 1000);
    if (this.ended || this.answered) return;
    try {
      this.completed = true;
      this.res.end();
      // What the socket could not take yet waits for the client, also after the app is done.
      if (this.res.writableLength > 0) this.watch().send();
    } catch (err) {
      this.dataPath.internalError('response end', err, this);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.forwardDone = true;
    // Gone, or already answered: the end signal releases what is held.
    if (this.ended || this.answered) return;
    try {
      const f = upstreamFailure(err);
      const now = performance.now();
      this.appDoneAt = now;
      this.dataPath.telemetry.recordUpstream((now - this.forwardedAt) / 1000);
      this.span?.setAttribute('portcullis.upstream.error', f.error);
      this.dataPath.upstreamError(f.error, err);
      this.fail(f.status, f.error, 'upstream');
    } catch (e) {
      this.dataPath.internalError('upstream error', e, this);
    }
  }

  /** Answers an error (or cuts mid-body); the response's end then ends the exchange. */
  private fail(status: number, error: string, failure: 'upstream' | 'ours'): void {
    this.forwardDone = true;
    this.answered = true;
    this.failure ??= failure;
    answerError(this.res, status, error);
  }

  /** A throw while relaying the app's answer: answer it as ours and stop the forward. */
  private internal(where: string, err: unknown, controller: Dispatcher.DispatchController): void {
    this.dataPath.internalError(where, err, this);
    if (!this.forwardDone) {
      this.forwardDone = true;
      controller.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
