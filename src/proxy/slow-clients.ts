/**
 * Slow clients (R.U.D.Y., slow read): a client that trickles or stops its request body, or reads
 * its response slowly or not at all, is cut, so it cannot keep a permit as long as it likes.
 * `connections.bodyTimeout` / `bodyMinRate` judge the request body, `sendTimeout` / `sendMinRate`
 * the response (see src/core/data-rate.ts for what counts).
 *
 * One coarse ticker (1 s at the defaults, unref'd, running only while something is watched) samples
 * every watched exchange; nothing is timed per request. An exchange is watched only while there is
 * something to blame a client for: a request body still coming (from the forward on, so time
 * queued in admission does not count), and a response from its first backpressure on.
 *
 * What is measured, per sample:
 * - body: the client is waited for when the body is being read (flowing) and nothing of it is
 *   buffered; paused means the app's backpressure, buffered means the reader is behind. Bytes
 *   are the socket's `bytesRead`.
 * - response: the client is waited for when bytes wait in the socket (`writableLength > 0`), like
 *   Kestrel's MinResponseDataRate; none waiting means the app is what we wait for. Bytes are what
 *   left the socket for the kernel (`bytesWritten - writableLength`).
 *
 * A cut destroys the socket, so the response's 'close' ends the exchange (permit, socket slot,
 * span, forward) at once; a body cut before any response was sent first writes a best-effort 408.
 * Cuts are counted by cause for /stats and /metrics and logged sampled.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../core/config-schema.ts';
import type { Configurable } from '../core/running-config.ts';
import { DataRateMeter, type DataRateLimits } from '../core/data-rate.ts';
import type { SampledLog } from '../core/log.ts';
import { normalizeAddress } from './headers.ts';
import { bodyTimeoutAnswer } from '../core/wire.ts';

export const CUT_CAUSES = ['body_timeout', 'body_min_rate', 'send_timeout', 'send_min_rate'] as const;
export type CutCause = (typeof CUT_CAUSES)[number];

export type SlowClientSettings = Pick<Config['connections'], 'bodyTimeout' | 'bodyMinRate' | 'sendTimeout' | 'sendMinRate'>;

/** The exchange a watch belongs to: told of a cut before the socket is destroyed (to mark its span). */
export interface CutTarget {
  onCut(cause: CutCause): void;
}

export interface SlowClientsOptions {
  settings: SlowClientSettings;
  /** Where cuts are logged, at most once a second per cause. */
  log: SampledLog;
}

/** Ticker period: a quarter of the shortest limit in force, between 50 ms and 1 s (1 s at the defaults). */
export function tickInterval(s: SlowClientSettings): number {
  const limits = [s.bodyTimeout, s.sendTimeout];
  if (s.bodyMinRate.bytesPerSecond > 0) limits.push(s.bodyMinRate.grace);
  if (s.sendMinRate.bytesPerSecond > 0) limits.push(s.sendMinRate.grace);
  const shortest = Math.min(...limits.filter((ms) => ms > 0));
  return Number.isFinite(shortest) ? Math.max(50, Math.min(1000, Math.floor(shortest / 4))) : 1000;
}

const bodyLimits = (s: SlowClientSettings): DataRateLimits => ({ timeout: s.bodyTimeout, bytesPerSecond: s.bodyMinRate.bytesPerSecond, grace: s.bodyMinRate.grace });
const sendLimits = (s: SlowClientSettings): DataRateLimits => ({ timeout: s.sendTimeout, bytesPerSecond: s.sendMinRate.bytesPerSecond, grace: s.sendMinRate.grace });

export class SlowClients implements Configurable {
  /** Cuts since start, by cause (for /stats and portcullis_client_cuts_total). */
  readonly cuts: Record<CutCause, number> = { body_timeout: 0, body_min_rate: 0, send_timeout: 0, send_min_rate: 0 };
  /** The limits in force, read by every watch at each tick. */
  body: DataRateLimits;
  send: DataRateLimits;
  private interval: number;
  private readonly watched = new Set<Watch>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: SlowClientsOptions) {
    const s = options.settings;
    this.body = bodyLimits(s);
    this.send = sendLimits(s);
    this.interval = tickInterval(s);
  }

  /** Live reload: watched exchanges are judged by the new limits from the next tick on. */
  apply(config: Config): void {
    const s = config.connections;
    this.body = bodyLimits(s);
    this.send = sendLimits(s);
    const interval = tickInterval(s);
    if (interval !== this.interval && this.timer !== undefined) {
      this.stopTicker();
      this.interval = interval;
      this.startTicker();
    } else this.interval = interval;
  }

  /** A handle for one exchange; it is sampled only once `body()` or `send()` says there is something to watch. */
  watch(socket: Socket, res: ServerResponse, target: CutTarget): Watch {
    return new Watch(this, socket, res, target);
  }

  /** Cuts so far, copied. */
  snapshot(): Record<CutCause, number> {
    return { ...this.cuts };
  }

  /** Stops the ticker (shutdown); watches are left to their exchanges' ends. */
  close(): void {
    this.watched.clear();
    this.stopTicker();
  }

  add(w: Watch): void {
    this.watched.add(w);
    this.startTicker();
  }

  remove(w: Watch): void {
    this.watched.delete(w);
    if (this.watched.size === 0) this.stopTicker();
  }

  cut(w: Watch, cause: CutCause, waited: { ms: number; bytes: number }): void {
    this.cuts[cause]++;
    this.options.log.note('slow client cut', cause, { cause, client: normalizeAddress(w.socket.remoteAddress), waitedMs: waited.ms, bytes: waited.bytes });
  }

  private startTicker(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(this.tick, this.interval);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private stopTicker(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private readonly tick = (): void => {
    const now = performance.now();
    // A starved event loop is not the client's fault: a late tick counts as one period at most (as Kestrel does).
    const max = this.interval;
    for (const w of this.watched) w.check(now, max);
  };
}

/** One exchange as the slow-client ticker sees it. */
export class Watch {
  private req: IncomingMessage | undefined;
  private bodyMeter: DataRateMeter | undefined;
  private sendMeter: DataRateMeter | undefined;
  private lastAt = 0;
  private stopped = false;

  constructor(
    private readonly owner: SlowClients,
    readonly socket: Socket,
    private readonly res: ServerResponse,
    private readonly target: CutTarget,
  ) {}

  /** The request body is forwarded from now on; watch it until it is complete. */
  body(req: IncomingMessage): void {
    // Watched even with the limits off, so that a reload switching them on reaches it too.
    if (this.stopped || this.bodyMeter !== undefined || req.complete) return;
    this.req = req;
    this.bodyMeter = new DataRateMeter();
    this.bodyMeter.sample(this.socket.bytesRead, false, 0, this.owner.body);
    this.start();
  }

  /** The response met backpressure (or ended with bytes still waiting): watch it until the exchange ends. */
  send(): void {
    if (this.stopped || this.sendMeter !== undefined) return;
    this.sendMeter = new DataRateMeter();
    this.start();
  }

  /** The exchange ended. */
  stop(): void {
    this.stopped = true;
    this.owner.remove(this);
  }

  private start(): void {
    if (this.lastAt === 0) this.lastAt = performance.now();
    this.owner.add(this);
  }

  check(now: number, maxStep: number): void {
    const dt = Math.min(now - this.lastAt, maxStep);
    this.lastAt = now;
    const socket = this.socket;
    // Gone: nothing left to judge, and its exchange ends on its own.
    if (socket.destroyed) return this.stop();
    const body = this.bodyMeter;
    if (body !== undefined) {
      const req = this.req as IncomingMessage;
      if (req.complete) {
        this.bodyMeter = undefined;
        this.req = undefined;
      } else {
        const waiting = req.readableFlowing === true && req.readableLength === 0;
        const v = body.sample(socket.bytesRead, waiting, dt, this.owner.body);
        if (v !== undefined) return this.cut(v === 'timeout' ? 'body_timeout' : 'body_min_rate', body);
      }
    }
    const send = this.sendMeter;
    if (send !== undefined) {
      // Until the response is on the socket (pipelining) it waits for an earlier response, not for the client.
      const attached = this.res.socket != null;
      const pending = attached ? socket.writableLength : 0;
      const v = send.sample(attached ? socket.bytesWritten - pending : undefined, pending > 0, dt, this.owner.send);
      if (v !== undefined) return this.cut(v === 'timeout' ? 'send_timeout' : 'send_min_rate', send);
    }
    if (this.bodyMeter === undefined && this.sendMeter === undefined) this.owner.remove(this);
  }

  private cut(cause: CutCause, meter: DataRateMeter): void {
    this.stop();
    this.owner.cut(this, cause, meter.waited);
    this.target.onCut(cause);
    const res = this.res;
    if (!res.headersSent && !res.destroyed) {
      // nginx and Kestrel answer a too slow body with 408; best effort, the socket goes right after.
      try {
        const a = bodyTimeoutAnswer(cause);
        res.writeHead(a.status, a.headers);
        res.end(a.body);
      } catch {
        /* the socket is going anyway */
      }
    }
    res.destroy();
  }
}
