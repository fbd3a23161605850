/**
 * "Ended exactly once" for one inbound HTTP/1 exchange: the single signal its permit, socket slot,
 * span and upstream forward are released on, however the exchange ends.
 *
 * A response's 'close' alone does not cover it: node (and Deno's node:http) attach a pipelined
 * response to the socket only when the responses before it are done, and a response never
 * attached gets no 'close' when the socket goes first. So the socket's 'close' ends those too.
 * The common, unpipelined case stays at one listener (the response's); a socket with pipelined
 * responses waiting gets one more listener, however many are waiting.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Per socket: the end callbacks of its responses not yet attached to it. */
const unattached = new WeakMap<Socket, Set<() => void>>();

/** Calls `ended` once, on the first of: the response closed, or its socket closed. */
export function onExchangeEnd(res: ServerResponse, socket: Socket, ended: () => void): void {
  // Attached: the response's own 'close' follows the socket's; one listener, no closure of ours.
  if (res.socket != null) {
    res.once('close', ended);
    return;
  }
  let fired = false;
  let waiting: Set<() => void> | undefined;
  const end = (): void => {
    if (fired) return;
    fired = true;
    waiting?.delete(end);
    ended();
  };
  res.once('close', end);
  // A socket already closed emits nothing more: end on the next turn, after the caller's setup.
  if ((socket as { closed?: boolean }).closed === true) {
    queueMicrotask(end);
    return;
  }
  waiting = unattached.get(socket);
  if (waiting === undefined) {
    const set = new Set<() => void>();
    unattached.set(socket, set);
    socket.once('close', () => {
      unattached.delete(socket);
      for (const f of set) f();
    });
    waiting = set;
  }
  waiting.add(end);
}
