/**
 * The data path's own answers when a request cannot be served as the app meant: a small JSON
 * error with `x-portcullis-error`, or a cut once the app's head is on the wire. Never throws: it
 * is what a failure is answered with, so it must not be one.
 */
import type { ServerResponse } from 'node:http';
import { statusText } from '../core/reject-response.ts';

/** Answers `status` with `{"error": error}` and closes the connection; cuts the response if its head was sent. */
export function answerError(res: ServerResponse, status: number, error: string): void {
  try {
    if (!res.headersSent && !res.destroyed) {
      // A head that failed to write may have left headers (or a reason phrase) node refuses.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      const body = `{"error":"${error}"}`;
      res.writeHead(status, statusText(status), {
        connection: 'close',
        'content-type': 'application/json',
        'content-length': String(body.length),
        'x-portcullis-error': error,
      });
      res.end(body);
      return;
    }
  } catch {
    // Fall through: the only honest signal left is the cut.
  }
  res.destroy();
}
