/**
 * One upgrade handshake as an inbound exchange of the data path, and undici's dispatch handler
 * for its forward. It ends exactly once: 101 (a tunnel), a normal response (passed to the client,
 * who learns why: 401, 426...), an error, a reject, or the client gone (the socket's close). The
 * permit is released when it ends; the span covers the handshake only.
 */
import type { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RejectResponse } from '../core/reject-response.ts';
import { rawHead, rawMessage, statusText, type HeaderValues } from '../core/wire.ts';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.ts';
import { NodeExchange } from './node-request.ts';
import { upstreamFailure, type Failure } from './outcome.ts';
import { handshakeError, type Upgrades } from './upgrade.ts';

export class Handshake extends NodeExchange implements Dispatcher.DispatchHandler {
  override readonly upgrade = true as const;
  /** The allowed protocols the client asked for: all the app is offered. */
  offered = '';
  private controller: Dispatcher.DispatchController | undefined;
  /** What the span ends with: 101, the app's status, our error's, or 0 (the client went first). */
  private spanCode = 0;

  constructor(
    private readonly owner: Upgrades,
    req: IncomingMessage,
    private readonly clientSocket: Duplex,
    private readonly head: Buffer,
    target: string,
  ) {
    super(owner.options.path, req, target, owner.options.identity);
  }

  reject(r: RejectResponse): void {
    this.owner.refused();
    this.owner.dismiss(this.clientSocket, rawMessage(r));
    // Nothing more will happen on this socket: a queued handshake ends now, not at the linger's close.
    this.end();
  }

  forward(): void {
    const { req } = this;
    const { headers } = forwardRequestHeaders(req.rawHeaders, { client: this.peer, proto: 'http', trusted: this.trustedPeer });
    if (this.span !== undefined) this.dataPath.telemetry.inject(this.span, headers);
    try {
      this.owner.options.pool.dispatch(
        { origin: undefined, method: this.method as Dispatcher.HttpMethod, path: this.target, headers, upgrade: this.offered } as Dispatcher.DispatchOptions,
        this,
      );
    } catch (err) {
      // undici validates synchronously (e.g. a header value it will not send): answer, never crash.
      this.fail(err, 400, 'bad_request', 'ours');
    }
  }

  answerInternal(): void {
    if (this.ended) {
      this.clientSocket.destroy();
      return;
    }
    this.failure = 'ours';
    this.spanCode = 500;
    this.end();
    this.owner.dismiss(this.clientSocket, handshakeError(500, 'internal_error'));
  }

  protected watchEnd(): void {
    // A socket already closed emits nothing more: end on the next turn, after the caller's setup.
    if ((this.clientSocket as { closed?: boolean }).closed === true) queueMicrotask(this.end);
    else this.clientSocket.once('close', this.end);
  }

  protected spanStatus(): number {
    return this.spanCode;
  }

  protected closed(): void {
    this.clientSocket.off('close', this.end);
    // Ended before the app was done and not by a failure: the client went away, stop the forward.
    if (!this.completed && this.failure === undefined) this.controller?.abort(new Error('client went away'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.ended) controller.abort(new Error('client went away'));
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderValues, upstream: Duplex): void {
    if (this.ended) {
      upstream.destroy();
      return;
    }
    const accepted = this.owner.accepts(headers);
    this.spanCode = statusCode;
    this.status = statusCode;
    if (accepted) this.completed = true;
    else this.failure = 'upstream';
    this.end();
    if (this.clientSocket.destroyed) {
      upstream.destroy();
      return;
    }
    if (accepted) return this.owner.splice(this.clientSocket, upstream, this.head, headers);
    upstream.destroy();
    this.owner.failed('upstream_bad_upgrade', new Error(`the app switched to ${String(headers['upgrade'])}, which was not offered`));
    this.owner.dismiss(this.clientSocket, handshakeError(502, 'upstream_bad_upgrade'));
  }

  /** The app answered without switching: the client gets that answer, then the socket is dismissed. */
  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: HeaderValues, statusMessage?: string): void {
    if (this.ended) return;
    this.status = statusCode;
    this.clientSocket.write(rawHead(statusCode, statusMessage || statusText(statusCode), forwardResponseHeaders(headers), true));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.ended) return;
    if (!this.clientSocket.write(chunk)) {
      controller.pause();
      this.clientSocket.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.ended) return;
    this.completed = true;
    this.spanCode = this.status;
    this.end();
    this.owner.failed(undefined, undefined);
    // The body, if it had no length, is delimited by our close.
    this.owner.dismiss(this.clientSocket, '');
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.ended) return;
    const f = upstreamFailure(err);
    this.fail(err, f.status, f.error, 'upstream');
  }

  private fail(err: unknown, status: number, error: string, failure: Failure): void {
    if (this.ended) return;
    const midBody = this.status !== 0;
    this.failure = failure;
    this.spanCode = status;
    this.end();
    this.owner.failed(error, err);
    if (midBody) this.clientSocket.destroy(); // mid-body: cutting is the only honest signal left
    else this.owner.dismiss(this.clientSocket, handshakeError(status, error));
  }
}
