/**
 * The data path's own answers when a request cannot be served as the app meant: a small JSON
 * error (src/core/wire.ts) with `x-portcullis-error`, or a cut once the app's head is on the wire.
 * Never throws: it is what a failure is answered with, so it must not be one.
 */
import type { ServerResponse } from 'node:http';
import { jsonError, statusText, type Answer } from '../core/wire.ts';

/** Answers `status` with `{"error": error}` and closes the connection; cuts the response if its head was sent. */
export function answerError(res: ServerResponse, status: number, error: string): void {
  answerOwn(res, jsonError(status, error, { close: true }));
}

/** Writes one of our own answers if the head is still ours to write; otherwise cuts the response. */
export function answerOwn(res: ServerResponse, a: Answer): void {
  try {
    if (!res.headersSent && !res.destroyed) {
      // A head that failed to write may have left headers (or a reason phrase) node refuses.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.writeHead(a.status, statusText(a.status), a.headers);
      res.end(a.body);
      return;
    }
  } catch {
    // Fall through: the only honest signal left is the cut.
  }
  res.destroy();
}
