/**
 * Every admission decision as a span and a metric, through @opentelemetry/api only (the SDK is
 * set up by the entry point, src/telemetry/sdk.ts). Without an SDK everything here is a cheap
 * no-op: spans are not even started, headers pass through untouched.
 *
 * Spans: one SERVER span per request that reaches admission (started at arrival, after the
 * decision is known so the sampler can see it), ended when the response is done; one per
 * socket-cap reject. Reject spans are capped at `telemetry.rejectSpansPerSecond` before they are
 * started; what the cap refuses is counted in `portcullis_spans_dropped_total`.
 */
import {
  isSpanContextValid,
  metrics,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { Config } from '../core/config-schema.ts';
import type { Decision, Reason } from '../core/admission.ts';
import type { StatsSnapshot } from '../core/stats.ts';
import type { Configurable, ReloadResult } from '../core/running-config.ts';
import { TokenBucket } from '../core/token-bucket.ts';

export const SCOPE = 'portcullis';

/** What metrics observe at collection: the one stats snapshot (src/core/stats.ts). */
export interface TelemetrySource {
  snapshot(): StatsSnapshot;
}

export interface TelemetryOptions {
  /** A tracer provider is installed and traces are exported. */
  tracing: boolean;
  settings: Config['telemetry'];
  configVersion: string;
}

/** What the data path needs to know about a request to describe it. */
export interface SpanRequest {
  method: string;
  path: string;
  /** Lower-case names; read only when a traceparent came in. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The incoming W3C traceparent, if any. */
  traceparent: string | undefined;
  /** The per-client key. */
  client: string;
  /** The client's address when it is not the key (clientKey.from: header, IPv6 grouping). */
  clientAddress?: string;
}

const REJECTED: Attributes = Object.freeze({ 'portcullis.decision': 'rejected' });
const ADMITTED: Attributes = Object.freeze({ 'portcullis.decision': 'admitted' });
const BYPASSED: Attributes = Object.freeze({ 'portcullis.decision': 'bypassed' });

const HEADER_GETTER = {
  get: (carrier: Readonly<Record<string, string | string[] | undefined>>, key: string) => carrier[key],
  keys: (carrier: Readonly<Record<string, string | string[] | undefined>>) => Object.keys(carrier),
};

export class Telemetry implements Configurable {
  readonly tracing: boolean;
  private readonly tracer: Tracer;
  private readonly queueWait: Histogram;
  private readonly upstreamDuration: Histogram;
  private readonly reloads: Counter;
  private readonly spansDropped: Counter;
  private readonly internalErrors: Counter;
  private readonly rejectBudget: TokenBucket;
  /** One entry per (decision, reason, limiter): its attributes and how often it happened. */
  private readonly decisionCounts = new Map<string, DecisionCount>();
  private settings: Config['telemetry'];
  private configVersion: string;

  constructor(options: TelemetryOptions) {
    this.tracing = options.tracing;
    this.settings = options.settings;
    this.configVersion = options.configVersion;
    this.rejectBudget = new TokenBucket(options.settings.rejectSpansPerSecond);
    this.tracer = trace.getTracer(SCOPE);
    const meter = metrics.getMeter(SCOPE);
    // Counted here and observed at collection: a synchronous counter would hash the attribute set
    // on every request, which is most of what metrics cost in the data path.
    const decisions = meter.createObservableCounter('portcullis_decisions', {
      description: 'Admission decisions by decision, reason and limiter',
    });
    decisions.addCallback((r) => {
      for (const c of this.decisionCounts.values()) r.observe(c.count, c.attributes);
    });
    this.queueWait = meter.createHistogram('portcullis_queue_wait_seconds', {
      description: 'Time requests spent queued (admitted or timed out)',
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
    });
    this.upstreamDuration = meter.createHistogram('portcullis_upstream_duration_seconds', {
      description: 'Time from forwarding a request to the end of the app response',
      advice: { explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
    });
    this.reloads = meter.createCounter('portcullis_config_reloads', { description: 'Config reload attempts by result' });
    this.spansDropped = meter.createCounter('portcullis_spans_dropped', {
      description: 'Spans not exported: over the reject span cap, export queue full, or export failed',
    });

    this.internalErrors = meter.createCounter('portcullis_internal_errors', {
      description: 'Throws while serving one request (answered 500 or cut) and uncaught errors, by where',
    });

  }

  /**
   * Registers the observable metrics, read from one stats snapshot per collection. Called once the
   * sidecar is assembled (the snapshot reads the socket gate, which reports its rejects here).
   */
  observe(source: TelemetrySource): void {
    const meter = metrics.getMeter(SCOPE);
    const evicted = meter.createObservableCounter('portcullis_connections_evicted', { description: 'Idle client sockets closed at the socket cap to make room for new ones' });
    const tunnels = meter.createObservableGauge('portcullis_tunnels', { description: 'Open Upgrade (WebSocket) tunnels' });
    const upgrades = meter.createObservableCounter('portcullis_upgrades', {
      description: 'Upgrade handshakes by outcome: tunnelled, not_allowed (token not in upgrade.allow), refused (a limit or draining), failed (the app did not switch)',
    });
    const idleClosed = meter.createObservableCounter('portcullis_tunnels_idle_closed', { description: 'Tunnels closed after upgrade.idleTimeout without a byte either way' });
    const cuts = meter.createObservableCounter('portcullis_client_cuts', {
      description: 'Clients cut for slowness, by cause: body_timeout, body_min_rate, send_timeout, send_min_rate',
    });
    const connections = meter.createObservableGauge('portcullis_connections', { description: 'Open client sockets' });
    const inflight = meter.createObservableGauge('portcullis_inflight', { description: 'In-flight requests per limiter' });
    const limit = meter.createObservableGauge('portcullis_limit', { description: 'In-flight requests allowed per limiter now: the fixed max, or where an adaptive limit stands' });
    const queueDepth = meter.createObservableGauge('portcullis_queue_depth', { description: 'Queued requests per limiter' });
    meter.addBatchObservableCallback(
      (r) => {
        const s = source.snapshot();
        r.observe(evicted, s.connections.evicted);
        r.observe(tunnels, s.tunnels.open);
        r.observe(upgrades, s.tunnels.opened, { outcome: 'tunnelled' });
        r.observe(upgrades, s.tunnels.notAllowed, { outcome: 'not_allowed' });
        r.observe(upgrades, s.tunnels.refused - s.tunnels.notAllowed, { outcome: 'refused' });
        r.observe(upgrades, s.tunnels.failed, { outcome: 'failed' });
        r.observe(idleClosed, s.tunnels.idleClosed);
        for (const cause in s.cuts) r.observe(cuts, s.cuts[cause] as number, { cause });
        r.observe(connections, s.connections.open);
        for (const l of s.limiters) {
          const attrs = { limiter: l.name };
          r.observe(inflight, l.inflight, attrs);
          r.observe(limit, l.max, attrs);
          r.observe(queueDepth, l.queued, attrs);
        }
      },
      [evicted, tunnels, upgrades, idleClosed, cuts, connections, inflight, limit, queueDepth],
    );
  }

  apply(config: Config, version: string): void {
    this.settings = config.telemetry;
    this.configVersion = version;
    this.rejectBudget.setRate(config.telemetry.rejectSpansPerSecond);
  }

  /** A reload listener: attempts counted by result (`unchanged` is not an attempt that did anything). */
  readonly onReload = (r: ReloadResult): void => {
    if (r.result !== 'unchanged') this.reloads.add(1, { result: r.result });
  };

  /** For the sampler: rejects are recorded even when the sampler would drop the request. */
  alwaysSampleRejects(): boolean {
    return this.settings.alwaysSampleRejects;
  }

  countDropped(n: number): void {
    this.spansDropped.add(n);
  }

  countInternalError(where: string): void {
    this.internalErrors.add(1, { where });
  }

  recordUpstream(seconds: number): void {
    this.upstreamDuration.record(seconds);
  }

  /**
   * Counts an HTTP-layer decision and, when tracing, starts its span. Reject spans end here; the
   * span of an admitted or bypassed request is returned for the data path to finish.
   */
  decision(req: SpanRequest, startedAt: number, d: Decision, status: number): Span | undefined {
    this.count(d.decision, d.reason, d.limiter);
    // Only requests that really waited: a queue_full reject never entered the queue.
    if (d.queueWaitMs > 0 || d.reason === 'queue_timeout') this.queueWait.record(d.queueWaitMs / 1000);
    if (!this.tracing) return undefined;
    const rejected = d.decision === 'rejected';
    if (rejected && !this.rejectBudget.take()) {
      this.spansDropped.add(1);
      return undefined;
    }
    // The sampler sees only the decision; everything else is set once we know the span records
    // (at the default 1% sampling most spans do not, and building their attributes is wasted work).
    const parent = req.traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, req.headers, HEADER_GETTER);
    const span = this.tracer.startSpan(
      d.route === undefined ? req.method : `${req.method} ${d.route}`,
      { kind: SpanKind.SERVER, attributes: d.decision === 'rejected' ? REJECTED : d.decision === 'admitted' ? ADMITTED : BYPASSED, startTime: startedAt },
      parent,
    );
    if (span.isRecording()) {
      const attributes: Attributes = {
        'http.request.method': req.method,
        'url.path': req.path,
        'client.address': req.clientAddress ?? req.client,
        'portcullis.dry_run': d.dryRun,
        'portcullis.config.version': this.configVersion,
        'portcullis.queue.depth': d.queueDepth,
        'portcullis.queue.wait_ms': d.queueWaitMs,
      };
      if (d.route !== undefined) {
        attributes['portcullis.route'] = d.route;
        attributes['http.route'] = d.route;
      }
      if (d.limiter !== undefined) {
        attributes['portcullis.limiter'] = d.limiter;
        // The limit in force when deciding (an adaptive one moves); what an adaptive one has learnt, once known.
        attributes['portcullis.limit'] = d.limit;
        attributes['portcullis.inflight'] = d.inflight;
        if (d.minRttMs !== undefined) attributes['portcullis.limit.min_rtt_ms'] = d.minRttMs;
        if (d.sampleRttMs !== undefined) attributes['portcullis.limit.sample_rtt_ms'] = d.sampleRttMs;
      }
      if (d.reason !== undefined) attributes['portcullis.reason'] = d.reason;
      span.setAttributes(attributes);
    }
    if (rejected && !d.dryRun) {
      finish(span, status);
      return undefined;
    }
    return span;
  }

  /** The `draining` reject of a request that arrived after the listener closed. */
  draining(req: SpanRequest, startedAt: number, status: number): void {
    this.count('rejected', 'draining', undefined);
    this.rejectSpan(req.method, req, startedAt, 'draining', undefined, status, undefined);
  }

  /** A socket turned away by the socket cap: no HTTP was parsed, but the decision gets a span. */
  socketReject(reason: Reason, client: string, limit: number, open: number, status: number): void {
    const limiter = reason === 'connection_limit' ? 'connections' : 'connections:client';
    this.count('rejected', reason, limiter);
    this.rejectSpan('portcullis connection', { client }, Date.now(), reason, limiter, status, { limit, open });
  }

  private rejectSpan(
    name: string,
    req: Pick<SpanRequest, 'client'> & Partial<SpanRequest>,
    startedAt: number,
    reason: Reason,
    limiter: string | undefined,
    status: number,
    counts: { limit: number; open: number } | undefined,
  ): void {
    if (!this.tracing) return;
    if (!this.rejectBudget.take()) {
      this.spansDropped.add(1);
      return;
    }
    const attributes: Attributes = {
      'client.address': req.clientAddress ?? req.client,
      'portcullis.decision': 'rejected',
      'portcullis.reason': reason,
      'portcullis.dry_run': false,
      'portcullis.config.version': this.configVersion,
    };
    if (req.method !== undefined) attributes['http.request.method'] = req.method;
    if (req.path !== undefined) attributes['url.path'] = req.path;
    if (limiter !== undefined) attributes['portcullis.limiter'] = limiter;
    if (counts !== undefined) {
      attributes['portcullis.limit'] = counts.limit;
      attributes['portcullis.inflight'] = counts.open;
    }
    const parent = req.traceparent !== undefined && req.headers ? propagation.extract(ROOT_CONTEXT, req.headers, HEADER_GETTER) : ROOT_CONTEXT;
    finish(this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, startTime: startedAt }, parent), status);
  }

  /**
   * Puts this span's `traceparent` (and `tracestate`) into the headers forwarded to the app,
   * replacing the caller's, so the app's spans become children of ours.
   */
  inject(span: Span, headers: string[]): void {
    // W3C trace context, written directly: the one propagator portcullis speaks, without a
    // carrier object per request. An incoming tracestate passes through untouched.
    const sc = span.spanContext();
    if (!isSpanContextValid(sc)) return;
    const value = `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
    for (let i = 0; i < headers.length; i += 2) {
      if ((headers[i] as string).length === 11 && (headers[i] as string).toLowerCase() === 'traceparent') {
        headers[i + 1] = value;
        return;
      }
    }
    headers.push('traceparent', value);
  }

  private count(decision: string, reason: string | undefined, limiter: string | undefined): void {
    const key = reason === undefined && limiter === undefined ? decision : `${decision}|${reason ?? ''}|${limiter ?? ''}`;
    const c = this.decisionCounts.get(key);
    if (c !== undefined) {
      c.count++;
      return;
    }
    const attributes: Attributes = { decision };
    if (reason !== undefined) attributes.reason = reason;
    if (limiter !== undefined) attributes.limiter = limiter;
    // Client limiters are folded by name already; the map stays as small as the set of names.
    this.decisionCounts.set(key, { attributes, count: 1 });
  }
}

interface DecisionCount {
  readonly attributes: Attributes;
  count: number;
}

/** Ends a SERVER span with its status code; 5xx is an error (HTTP semantic conventions). */
export function finish(span: Span, status: number): void {
  if (status > 0) span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
