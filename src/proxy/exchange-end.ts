/**
 * "Ended exactly once" for one inbound HTTP/1 exchange: the single signal its permit, socket slot,
 * span and upstream forward are released on, however the exchange ends.
 *
 * A response's 'close' alone does not cover it: node (and Deno's node:http) attach a pipelined
 * response to the socket only when the responses before it are done, and a response never
 * attached gets no 'close' when the socket goes first. So the socket's 'close' is watched too,
 * but only while the response is not yet on the socket (from then on the response's own 'close'
 * follows the socket's), which keeps the common, unpipelined case at one listener.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Calls `ended` once, on the first of: the response closed, or its socket closed. */
export function onExchangeEnd(res: ServerResponse, socket: Socket, ended: () => void): void {
  let fired = false;
  // Not yet attached: queued behind another response on a pipelined socket.
  const watching = res.socket == null;
  const end = (): void => {
    if (fired) return;
    fired = true;
    if (watching) socket.off('close', end);
    ended();
  };
  res.once('close', end);
  if (!watching) return;
  // A socket already closed emits nothing more: end on the next turn, after the caller's setup.
  if ((socket as { closed?: boolean }).closed === true) {
    queueMicrotask(end);
    return;
  }
  socket.once('close', end);
}
