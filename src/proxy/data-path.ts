/**
 * The one data path every protocol adapter feeds (HTTP/1.1 in http1.ts, upgrades in upgrade.ts;
 * HTTP/2 will be one more). It sees an inbound exchange only: what admission needs of the request,
 * a way to reject, a way to forward, and the exchange's one "ended" signal. Admission, the
 * decision's accounting (totals, span, sampled reject log), reject-or-forward and the release of
 * the permit with its outcome are written here once.
 *
 * Per request on the common path (admitted at once, no body) nothing is allocated here beyond the
 * adapter's exchange object itself and what admission and telemetry return.
 */
import type { Span } from '@opentelemetry/api';
import type { Admission, Decision, Grant, PendingDecision, Reason, RequestInfo } from '../core/admission.ts';
import type { RejectCatalogue, RejectResponse } from '../core/reject-response.ts';
import type { DecisionTotals } from '../core/totals.ts';
import type { SampledLog } from '../core/log.ts';
import { finish, type SpanRequest, type Telemetry } from '../telemetry/telemetry.ts';
import { releaseOutcome, type ExchangeEnd, type Failure } from './outcome.ts';

/** What the data path reads of a request: admission's match fields, a span's, and whom X-Forwarded-* name. */
export interface InboundRequest extends RequestInfo, SpanRequest {
  /** Origin-form, normalized: what routes matched is what is forwarded. */
  readonly target: string;
  /** The socket peer, and whether it is a trusted proxy. */
  readonly peer: string;
  readonly trustedPeer: boolean;
}

/**
 * One inbound exchange, as an adapter implements it. The adapter sets what it learns of the end
 * (`status`, `completed`, `failure`) as it happens; the data path ends it exactly once.
 */
export abstract class InboundExchange implements InboundRequest, ExchangeEnd {
  abstract readonly method: string;
  abstract readonly path: string;
  abstract readonly host: string | undefined;
  abstract readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  abstract readonly client: string;
  abstract readonly clientAddress: string;
  abstract readonly traceparent: string | undefined;
  abstract readonly target: string;
  abstract readonly peer: string;
  abstract readonly trustedPeer: boolean;
  /** Logged with a reject: an upgrade says so. */
  readonly upgrade: true | undefined = undefined;

  /** While queued: cancelled if the exchange ends first. */
  pending: PendingDecision | undefined = undefined;
  grant: Grant | undefined = undefined;
  span: Span | undefined = undefined;
  /** Wall-clock arrival for the span; only read when spans are made. */
  startedAt = 0;
  /** Counted in `active` and listening for its end (queued or forwarded). */
  tracked = false;
  /** Over, however it ended: nothing more is written, everything is released. */
  ended = false;
  status = 0;
  completed = false;
  failure: Failure | undefined = undefined;
  /**
   * `performance.now()` (the core's system clock) when the app's answer was over (its body
   * complete, or the forward failed); undefined while it is not. The permits' RTT ends here,
   * not when the client has read the answer (ReleaseTiming).
   */
  appDoneAt: number | undefined = undefined;
  /** The same clock when the request body was all in; undefined without a body. The RTT starts here. */
  bodyDoneAt: number | undefined = undefined;
  /**
   * The app's answer had to wait for the client to read it (backpressure) before the app was
   * done: the RTT measured the client too, so a success teaches the limit nothing.
   */
  clientPaced = false;

  constructor(protected readonly dataPath: DataPath) {}

  /** Writes the reject. Untracked, the adapter frees what the request held of the connection itself. */
  abstract reject(r: RejectResponse): void;
  /** Sends the request on to the app; `grant` and `span` are set. */
  abstract forward(): void;
  /** Answers a throw while serving it (500, or a cut once the head is out). */
  abstract answerInternal(): void;
  /** Starts listening for the end signal, which must then call `end` (once tracked). */
  protected abstract watchEnd(): void;
  /** The adapter's part of the end: stop watches, abort the forward, free the connection. */
  protected abstract closed(): void;

  /** The one end signal: called once however the exchange ends (later calls do nothing). */
  readonly end = (): void => {
    if (this.ended) return;
    this.ended = true;
    if (this.tracked) this.dataPath.untrack();
    const p = this.pending;
    if (p !== undefined) {
      this.pending = undefined;
      p.cancel();
    }
    const g = this.grant;
    if (g !== undefined) {
      this.grant = undefined;
      g.release(releaseOutcome(this), this);
    }
    const span = this.span;
    if (span !== undefined) {
      this.span = undefined;
      finish(span, this.spanStatus());
    }
    this.closed();
  };

  /** The status the span ends with: what the client got, 0 for nothing. */
  protected abstract spanStatus(): number;

  /** Called by the data path once, when the exchange will outlive its arrival. */
  track(): void {
    this.tracked = true;
    this.watchEnd();
  }
}

export interface DataPathOptions {
  admission: Admission;
  telemetry: Telemetry;
  totals: DecisionTotals;
  rejectLog: SampledLog;
  rejects: RejectCatalogue;
}

export class DataPath {
  /** Exchanges between arrival and their end: queued, forwarding, streaming. */
  active = 0;
  /** Once set, new requests are refused with `draining` and every response closes its connection. */
  closing = false;
  private idleWaiters: Array<() => void> = [];
  /** While draining: closes connections gone idle, run (coalesced) after exchanges end. */
  private sweep: (() => void) | undefined;
  private sweepScheduled = false;

  constructor(private readonly options: DataPathOptions) {}

  get telemetry(): Telemetry {
    return this.options.telemetry;
  }

  /** An exchange arrives: refused while draining, else admitted, queued or rejected. */
  begin(x: InboundExchange): void {
    if (this.options.telemetry.tracing) x.startedAt = performance.timeOrigin + performance.now();
    if (this.closing) return this.refuse(x, 'draining', undefined);
    const outcome = this.options.admission.admit(x);
    if ('pending' in outcome) this.wait(x, outcome);
    else this.decided(x, outcome);
  }

  /** Resolves once no exchange is active (at once when none is). */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Drain: refuse new exchanges, run `sweep` (close idle connections) now and after exchanges end,
   * and wait until none is active, at most `timeout` ms. Returns how many are still active.
   */
  async drain(timeout: number, sweep: () => void): Promise<number> {
    this.closing = true;
    this.sweep = sweep;
    sweep();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout);
    });
    await Promise.race([this.idle(), timedOut]);
    clearTimeout(timer);
    this.sweep = undefined;
    return this.active;
  }

  private readonly runSweep = (): void => {
    this.sweepScheduled = false;
    this.sweep?.();
  };

  /** Called by an exchange's end (once). */
  untrack(): void {
    // Its connection goes idle once node is done with the response: closed on the next turn.
    if (this.sweep !== undefined && !this.sweepScheduled) {
      this.sweepScheduled = true;
      setImmediate(this.runSweep);
    }
    if (--this.active === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Anything thrown while serving one exchange: answered (500, or a cut once the head is out),
   * counted in /stats and metrics, logged (sampled). Its end signal still releases what it held.
   */
  internalError(where: string, err: unknown, x: { answerInternal(): void } | undefined): void {
    this.options.totals.internalError++;
    this.options.telemetry.countInternalError(where);
    const e = err as Error | undefined;
    this.options.rejectLog.note('internal error', where, { where, error: String(e?.message ?? err), code: (e as { code?: string } | undefined)?.code, stack: e?.stack }, 'error');
    x?.answerInternal();
  }

  /** A throw nothing caught (the entry point's last resort): logged (sampled) and counted like an internal error. */
  readonly uncaught = (err: unknown): void => {
    this.options.totals.internalError++;
    this.options.telemetry.countInternalError('uncaught');
    const e = err as Error | undefined;
    this.options.rejectLog.note('uncaught error', 'uncaught', { error: String(e?.message ?? err), stack: e?.stack }, 'error');
  };

  /** A socket the socket cap turned away (no HTTP parsed): counted, given a span, logged like any reject. */
  readonly socketRejected = (reason: Reason, client: string, limit: number, open: number): void => {
    this.options.totals.reject(reason);
    this.options.telemetry.socketReject(reason, client, limit, open, this.options.rejects.of(reason).status);
    this.options.rejectLog.reject(reason, { client, limit });
  };

  /** Logged at most once per second per kind, like rejects. */
  upstreamError(error: string, err: unknown): void {
    this.options.rejectLog.note('upstream error', error, { error, detail: String((err as Error)?.message ?? err) });
  }

  private track(x: InboundExchange): void {
    if (x.tracked) return;
    this.active++;
    x.track();
  }

  private wait(x: InboundExchange, pending: PendingDecision): void {
    this.track(x);
    x.pending = pending;
    pending.promise.then(
      (d) => this.queued(x, d),
      (err: unknown) => {
        x.pending = undefined;
        this.internalError('admission', err, x);
      },
    );
  }

  private queued(x: InboundExchange, d: Decision | null): void {
    x.pending = undefined;
    if (d === null) {
      this.options.totals.abandoned++;
      return;
    }
    // Gone while queued (pipelined responses never attached included): never forwarded.
    if (x.ended) {
      d.grant?.release('ignored');
      this.options.totals.abandoned++;
      return;
    }
    try {
      this.decided(x, d);
    } catch (err) {
      this.internalError('queued request', err, x);
    }
  }

  private decided(x: InboundExchange, d: Decision): void {
    const { totals } = this.options;
    switch (d.decision) {
      case 'rejected':
        if (!d.dryRun) return this.refuse(x, d.reason as Reason, d);
        totals.wouldReject++;
        this.options.rejectLog.reject(d.reason as Reason, { dryRun: true, limiter: d.limiter, route: d.route, upgrade: x.upgrade });
        break;
      case 'bypassed':
        totals.bypassed++;
        break;
      case 'admitted':
        totals.admitted++;
        break;
    }
    this.track(x);
    x.grant = d.decision === 'bypassed' ? undefined : d.grant;
    x.span = this.options.telemetry.decision(x, x.startedAt, d, 0);
    x.forward();
  }

  /** A reject is written at once; an untracked one is never counted as active (its bytes are already out). */
  private refuse(x: InboundExchange, reason: Reason, d: Decision | undefined): void {
    const r = this.options.rejects.of(reason);
    this.options.totals.reject(reason);
    if (d === undefined) this.options.telemetry.draining(x, x.startedAt, r.status);
    else this.options.telemetry.decision(x, x.startedAt, d, r.status);
    this.options.rejectLog.reject(reason, { limiter: d?.limiter, route: d?.route, limit: d?.limit, client: x.client, upgrade: x.upgrade });
    x.reject(r);
  }
}
