/**
 * Every decision as a span, checked against an in-memory exporter (issue 5): the sidecar runs
 * in this process with real sockets on 127.0.0.1 and a real upstream; the OpenTelemetry SDK
 * records into memory. For each decision and reason: span name, kind, the portcullis.* and HTTP
 * attributes, status, the parent from an incoming traceparent, and the traceparent the app gets.
 * Also: rejects are sampled when the sampler drops the request (and not when that is switched
 * off), and the reject span cap counts what it refuses.
 */
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metrics, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { metrics as sdkMetrics, tracing } from '@opentelemetry/sdk-node';
import { loadConfig } from '../../src/core/config-load.ts';
import { silentLogger } from '../../src/core/log.ts';
import { startSidecar, type Sidecar } from '../../src/sidecar.ts';
import { RejectAwareSampler } from '../../src/telemetry/sdk.ts';
import { fire, request } from '../helpers/http-client.ts';
import { exchange } from '../helpers/raw-http.ts';
import { configFor, sleep, waitFor } from '../helpers/sidecar.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

/** The sampler the configured one stands for; each test picks it. */
let rootSampler: tracing.Sampler = new tracing.AlwaysOnSampler();
const delegate: tracing.Sampler = {
  shouldSample: (ctx: Context, id: string, name: string, kind: SpanKind, attrs: Attributes, links: Link[]) =>
    new tracing.ParentBasedSampler({ root: rootSampler }).shouldSample(ctx, id, name, kind, attrs, links),
};
let alwaysSampleRejects = true;
const exporter = new tracing.InMemorySpanExporter();
const metricReader = new sdkMetrics.PeriodicExportingMetricReader({
  exporter: new sdkMetrics.InMemoryMetricExporter(sdkMetrics.AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
});

beforeAll(() => {
  trace.setGlobalTracerProvider(
    new tracing.BasicTracerProvider({
      sampler: new RejectAwareSampler(delegate, () => alwaysSampleRejects),
      spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
    }),
  );
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  metrics.setGlobalMeterProvider(new sdkMetrics.MeterProvider({ readers: [metricReader] }));
});
afterAll(() => {
  trace.disable();
  propagation.disable();
  metrics.disable();
});

const running: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (running.length > 0) await (running.pop() as () => Promise<unknown>)();
  exporter.reset();
  rootSampler = new tracing.AlwaysOnSampler();
  alwaysSampleRejects = true;
});

async function start(patch: Record<string, unknown>): Promise<{ sc: Sidecar; up: Upstream }> {
  const up = await startUpstream();
  running.push(() => up.close());
  const { config, version } = loadConfig(JSON.stringify(configFor(up.url, patch)), 'spans.test');
  const sc = await startSidecar({
    loaded: { config, version, source: 'spans.test', loadedAt: new Date() },
    logger: silentLogger,
    runtime: 'node',
    sdk: { tracing: true, metricsText: async () => undefined },
  });
  running.push(() => sc.drain());
  return { sc, up };
}

/** Finished spans whose portcullis.decision / reason match. */
function spans(filter: { decision?: string; reason?: string } = {}) {
  return exporter.getFinishedSpans().filter(
    (s) =>
      (filter.decision === undefined || s.attributes['portcullis.decision'] === filter.decision) &&
      (filter.reason === undefined || s.attributes['portcullis.reason'] === filter.reason),
  );
}

async function oneSpan(filter: { decision?: string; reason?: string }) {
  return waitFor(`a span ${JSON.stringify(filter)}`, () => (spans(filter).length === 1 ? spans(filter)[0] : undefined));
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

describe('spans for every decision', () => {
  it('admitted: SERVER span continuing the incoming traceparent; the app gets ours', async () => {
    const { sc, up } = await start({ inflight: { max: 5 } });
    const r = await request(sc.port, { path: '/echo?x=1', headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, tracestate: 'a=b' } });
    expect(r.status).toBe(200);
    const s = await oneSpan({ decision: 'admitted' });
    expect(s.name).toBe('GET');
    expect(s.kind).toBe(SpanKind.SERVER);
    expect(s.spanContext().traceId).toBe(TRACE_ID);
    expect(s.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
    expect(s.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/echo',
      'http.response.status_code': 200,
      'client.address': '127.0.0.1',
      'portcullis.decision': 'admitted',
      'portcullis.limiter': 'global',
      'portcullis.limit': 5,
      'portcullis.inflight': 1,
      'portcullis.queue.depth': 0,
      'portcullis.queue.wait_ms': 0,
      'portcullis.dry_run': false,
    });
    expect(s.attributes['portcullis.config.version']).toMatch(/^[0-9a-f]{12}$/);
    expect(s.attributes['portcullis.reason']).toBeUndefined();
    // A fixed limiter has learnt nothing to show.
    expect(s.attributes['portcullis.limit.min_rtt_ms']).toBeUndefined();
    expect(s.attributes['portcullis.limit.sample_rtt_ms']).toBeUndefined();
    // The app sees exactly one traceparent: ours, same trace, our span as parent.
    const seen = up.requests.find((q) => q.path === '/echo');
    expect(seen?.headers.traceparent).toBe(`00-${TRACE_ID}-${s.spanContext().spanId}-01`);
    expect(seen?.rawHeaders.filter((h) => h.toLowerCase() === 'traceparent')).toHaveLength(1);
    expect(seen?.headers.tracestate).toBe('a=b');
  });

  it('issue 12: an adaptive reporter adds what it has learnt; portcullis.limit is the limit in force at the decision', async () => {
    const { sc } = await start({ routes: [{ name: 'a', match: { prefix: '/a' }, inflight: { adaptive: { algorithm: 'gradient', min: 7, max: 7 } } }] });
    // The first request at light load gives the limit its minRTT, the first decision (after ten
    // answers) its sample RTT; the ones after that report both.
    for (let i = 0; i < 15; i++) expect((await request(sc.port, { path: `/a/${i}?ms=5` })).status).toBe(200);
    const all = await waitFor('15 admitted spans', () => (spans({ decision: 'admitted' }).length === 15 ? spans({ decision: 'admitted' }) : undefined));
    const last = all.find((x) => x.attributes['url.path'] === '/a/14');
    expect(last?.attributes).toMatchObject({ 'portcullis.limiter': 'route:a', 'portcullis.limit': 7, 'portcullis.inflight': 1 });
    for (const key of ['portcullis.limit.min_rtt_ms', 'portcullis.limit.sample_rtt_ms']) {
      const v = last?.attributes[key];
      expect(typeof v, key).toBe('number');
      // The app took 5 ms or more; the RTT is the forward's round trip, bounded by the test's own time.
      expect(v as number, key).toBeGreaterThan(0);
      expect(v as number, key).toBeLessThan(5000);
    }
  });

  it('issue 10: url.path is the normalized path, the one the route matched and the app received', async () => {
    const { sc, up } = await start({ routes: [{ name: 'echo', match: { exact: '/echo' }, inflight: { max: 5 } }] });
    const r = await exchange(sc.port, 'GET /x/../%65cho?x=%2e HTTP/1.1\r\nHost: portcullis.test\r\nConnection: close\r\n\r\n', { responses: 1 });
    expect(r.responses[0]?.status).toBe(200);
    const s = await oneSpan({ decision: 'admitted' });
    expect(s.attributes).toMatchObject({ 'url.path': '/echo', 'portcullis.route': 'echo' });
    expect(up.requests.map((q) => q.url)).toEqual(['/echo?x=%2e']);
  });

  it('admitted without a traceparent: a new trace, and the app still gets its traceparent', async () => {
    const { sc, up } = await start({});
    await request(sc.port, { path: '/ok' });
    const s = await oneSpan({ decision: 'admitted' });
    expect(s.parentSpanContext).toBeUndefined();
    expect(up.requests[0]?.headers.traceparent).toBe(`00-${s.spanContext().traceId}-${s.spanContext().spanId}-01`);
  });

  it('bypassed: the route is named, nothing is limited', async () => {
    const { sc } = await start({ inflight: { max: 0 }, routes: [{ name: 'probes', match: { exact: '/healthz' }, bypass: true }] });
    expect((await request(sc.port, { path: '/healthz' })).status).toBe(200);
    const s = await oneSpan({ decision: 'bypassed' });
    expect(s.name).toBe('GET probes');
    expect(s.attributes).toMatchObject({ 'portcullis.route': 'probes', 'http.route': 'probes', 'http.response.status_code': 200 });
    expect(s.attributes['portcullis.limiter']).toBeUndefined();
  });

  it('inflight_limit: an ERROR span with the limiter, its limit and count; never reaches the app', async () => {
    const { sc, up } = await start({ inflight: { max: 1 } });
    const held = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('held', () => up.current() === 1);
    const r = await request(sc.port, { path: '/x', headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
    expect(r.status).toBe(503);
    const s = await oneSpan({ reason: 'inflight_limit' });
    expect(s.kind).toBe(SpanKind.SERVER);
    expect(s.status.code).toBe(SpanStatusCode.ERROR);
    expect(s.spanContext().traceId).toBe(TRACE_ID);
    expect(s.attributes).toMatchObject({
      'portcullis.decision': 'rejected',
      'portcullis.reason': 'inflight_limit',
      'portcullis.limiter': 'global',
      'portcullis.limit': 1,
      'portcullis.inflight': 1,
      'http.response.status_code': 503,
      'url.path': '/x',
    });
    expect(up.count('/x')).toBe(0);
    up.release();
    await held;
  });

  it('queue_full and queue_timeout: queue depth and the time waited', async () => {
    const { sc, up } = await start({ routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 1, queue: { size: 1, timeout: '150ms' } } }] });
    const held = request(sc.port, { path: '/r/hold?gate=1' });
    await waitFor('held', () => up.current() === 1);
    const queued = request(sc.port, { path: '/r/q' });
    await sleep(30);
    const full = await request(sc.port, { path: '/r/full' });
    expect(full.status).toBe(503);
    expect((await queued).status).toBe(503);
    const f = await oneSpan({ reason: 'queue_full' });
    expect(f.attributes).toMatchObject({ 'portcullis.limiter': 'route:r', 'portcullis.queue.depth': 1, 'portcullis.route': 'r', 'portcullis.queue.wait_ms': 0 });
    const t = await oneSpan({ reason: 'queue_timeout' });
    expect(t.attributes['portcullis.limiter']).toBe('route:r');
    expect(t.attributes['portcullis.queue.wait_ms'] as number).toBeGreaterThanOrEqual(140);
    up.release();
    await held;
  });

  it('client_inflight_limit: 429, not an error span', async () => {
    const { sc, up } = await start({ inflight: { max: 10, perClient: 1 } });
    const held = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('held', () => up.current() === 1);
    expect((await request(sc.port, { path: '/y' })).status).toBe(429);
    const s = await oneSpan({ reason: 'client_inflight_limit' });
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
    expect(s.attributes).toMatchObject({ 'portcullis.limiter': 'client', 'portcullis.limit': 1, 'http.response.status_code': 429 });
    up.release();
    await held;
  });

  it('connection_limit and client_connection_limit: a span for a socket that never sent HTTP', async () => {
    const { sc } = await start({ connections: { max: 1, evictIdle: false } });
    const a = net.connect(sc.port, '127.0.0.1');
    await new Promise((r) => a.once('connect', r));
    await sleep(50);
    const b = net.connect(sc.port, '127.0.0.1').resume();
    await new Promise((r) => b.once('close', r));
    a.destroy();
    const s = await oneSpan({ reason: 'connection_limit' });
    expect(s.name).toBe('portcullis connection');
    expect(s.kind).toBe(SpanKind.SERVER);
    expect(s.attributes).toMatchObject({ 'portcullis.limiter': 'connections', 'portcullis.limit': 1, 'portcullis.inflight': 1, 'http.response.status_code': 503 });

    const { sc: sc2 } = await start({ connections: { max: 10, perClient: 1 } });
    const c = net.connect(sc2.port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    await sleep(50);
    const d = net.connect(sc2.port, '127.0.0.1').resume();
    await new Promise((r) => d.once('close', r));
    c.destroy();
    const s2 = await oneSpan({ reason: 'client_connection_limit' });
    expect(s2.attributes).toMatchObject({ 'portcullis.limiter': 'connections:client', 'http.response.status_code': 429 });
  });

  it('draining: a request that arrives after the listener closed gets a draining span', async () => {
    const { sc, up } = await start({ drain: { delay: '100ms', timeout: '2s' } });
    // A held request keeps the drain waiting; a second connection completes its head after the delay.
    const sock = net.connect(sc.port, '127.0.0.1');
    let received = '';
    sock.on('data', (d) => (received += String(d)));
    const closed = new Promise((r) => sock.once('close', r));
    const held = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('held', () => up.current() === 1);
    // A head that is still arriving when the delay ends: its connection is not idle.
    sock.write('GET /b HTTP/1.1\r\nHost: t\r\n');
    await sleep(20);
    const drained = sc.drain();
    await sleep(250);
    sock.write('\r\n');
    await closed;
    up.release();
    await held;
    await drained;
    expect(received).toMatch(/^HTTP\/1\.1 503 [\s\S]*connection: close[\s\S]*x-portcullis-reason: draining/i);
    expect(up.count('/b')).toBe(0);
    const s = await oneSpan({ reason: 'draining' });
    expect(s.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/b', 'http.response.status_code': 503 });
  });

  it('dryRun: the would-be reject is a span with dry_run true, and the request is served', async () => {
    const { sc, up } = await start({ dryRun: true, inflight: { max: 1 } });
    const held = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('held', () => up.current() === 1);
    expect((await request(sc.port, { path: '/z' })).status).toBe(200);
    const s = await oneSpan({ decision: 'rejected' });
    expect(s.attributes).toMatchObject({ 'portcullis.reason': 'inflight_limit', 'portcullis.dry_run': true, 'http.response.status_code': 200 });
    expect(up.requests.find((q) => q.path === '/z')?.headers.traceparent).toContain(s.spanContext().spanId);
    up.release();
    await held;
  });

  it('an upstream failure marks the admitted span as an error', async () => {
    const { sc, up } = await start({});
    await up.close();
    expect((await request(sc.port, { path: '/down' })).status).toBe(502);
    const s = await oneSpan({ decision: 'admitted' });
    expect(s.status.code).toBe(SpanStatusCode.ERROR);
    expect(s.attributes).toMatchObject({ 'http.response.status_code': 502, 'portcullis.upstream.error': 'upstream_refused' });
  });
});

describe('sampling and the reject span cap', () => {
  it('rejects are recorded when the sampler drops the request; admitted ones are not', async () => {
    rootSampler = new tracing.AlwaysOffSampler();
    const { sc, up } = await start({ inflight: { max: 1 } });
    const held = request(sc.port, { path: '/hold?gate=1' });
    await waitFor('held', () => up.current() === 1);
    await request(sc.port, { path: '/r1' });
    // An incoming unsampled parent: the reject is still recorded.
    await request(sc.port, { path: '/r2', headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` } });
    up.release();
    await held;
    await request(sc.port, { path: '/ok' });
    await waitFor('2 reject spans', () => spans({ decision: 'rejected' }).length === 2);
    expect(spans({ decision: 'admitted' })).toHaveLength(0);
    // Unsampled requests still carry a traceparent to the app (flag 00), so the app follows the decision.
    expect(up.requests.find((q) => q.path === '/ok')?.headers.traceparent).toMatch(/-00$/);
  });

  it('with alwaysSampleRejects off, the sampler decides for rejects too', async () => {
    rootSampler = new tracing.AlwaysOffSampler();
    alwaysSampleRejects = false;
    const { sc } = await start({ inflight: { max: 0 } });
    await fire(sc.port, 5, { path: '/n' });
    await sleep(100);
    expect(spans()).toHaveLength(0);
  });

  it('rejectSpansPerSecond caps reject spans; the rest are counted as dropped', async () => {
    const { sc } = await start({ inflight: { max: 0 }, telemetry: { rejectSpansPerSecond: 5 } });
    const results = await fire(sc.port, 40, { path: '/flood' });
    expect(results.every((r) => r.status === 503)).toBe(true);
    const recorded = spans({ decision: 'rejected' }).length;
    // 5 up front, plus what refills while 40 requests are answered (well under a second).
    expect(recorded).toBeGreaterThanOrEqual(5);
    expect(recorded).toBeLessThan(15);
    const { resourceMetrics } = await metricReader.collect();
    const dropped = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === 'portcullis_spans_dropped');
    const total = (dropped?.dataPoints ?? []).reduce((n, p) => n + (p.value as number), 0);
    expect(total).toBeGreaterThanOrEqual(40 - recorded);
  });
});
