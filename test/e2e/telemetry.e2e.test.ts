/**
 * Telemetry end to end, on Node and on Deno (issue 5): a real Jaeger (v2, in-memory storage)
 * receives portcullis's spans over OTLP/HTTP protobuf; a burst through portcullis in front of
 * the traced example app leaves every reject findable with `portcullis.decision=rejected` and its
 * attributes, and an admitted request's trace holds the app's span as a child of portcullis's.
 * /metrics is read by the Prometheus project's own parser and its counters match what was sent.
 * With the exporter pointed at a closed port, traffic is unaffected and the spans are counted
 * as dropped.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fire, request } from '../helpers/http-client.ts';
import { connect } from '../helpers/raw-http.ts';
import { startJaeger, tagsOf, type Jaeger } from '../helpers/jaeger.ts';
import { parsePrometheus, sum } from '../helpers/prometheus.ts';
import { RUNTIMES, cleanup, configFor, startSidecar, waitFor, type Runtime } from '../helpers/sidecar.ts';
import { freePort, startExampleApp, startUpstream } from '../helpers/upstream.ts';

/** Telemetry on, as a user would run it (the other e2e files switch it off). */
function otelEnv(endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTEL_SDK_DISABLED: 'false',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    ...extra,
  };
}

let jaeger: Jaeger;
beforeAll(async () => {
  jaeger = await startJaeger();
  // The Jaeger process lives for the whole file: afterEach's cleanup must not take it.
}, 60_000);
afterAll(cleanup);

describe.each(RUNTIMES)('telemetry on %s', (runtime: Runtime) => {
  const pending: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (pending.length > 0) await (pending.pop() as () => Promise<unknown>)();
  });

  it('rejects are in Jaeger with their attributes; the app span is a child of the portcullis span', async () => {
    const app = await startExampleApp({ OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlp, OTEL_SERVICE_NAME: `example-app-${runtime}`, OTEL_BSP_SCHEDULE_DELAY: '100' });
    pending.push(() => app.stop());
    // The runtime in the config makes the version (content hash) unique to this test.
    const sc = await startSidecar({
      runtime,
      config: configFor(app.url, { inflight: { max: 2 }, telemetry: { rejectSpansPerSecond: 1000 }, $schema: `test-${runtime}` }),
      env: otelEnv(jaeger.otlp),
    });
    pending.push(() => sc.stop('SIGTERM'));
    const version = (await sc.config()).version;

    const results = await fire(sc.port, 40, { path: '/slow?ms=400' });
    const rejected = results.filter((r) => r.status === 503);
    expect(results.filter((r) => r.status === 200).length + rejected.length).toBe(40);
    expect(rejected.length).toBeGreaterThanOrEqual(30);

    // Exactly the query an operator types: service=portcullis, portcullis.decision=rejected.
    const tags = { 'portcullis.decision': 'rejected', 'portcullis.config.version': version };
    const traces = await waitFor(
      `${rejected.length} reject traces in Jaeger`,
      async () => {
        const t = await jaeger.traces('portcullis', tags);
        return t.length === rejected.length ? t : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    for (const t of traces) {
      expect(t.spans).toHaveLength(1);
      const span = t.spans[0]!;
      expect(t.processes[span.processID]?.serviceName).toBe('portcullis');
      expect(tagsOf(span)).toMatchObject({
        'span.kind': 'server',
        'portcullis.decision': 'rejected',
        'portcullis.reason': 'inflight_limit',
        'portcullis.limiter': 'global',
        'portcullis.limit': 2,
        'portcullis.inflight': 2,
        'portcullis.queue.wait_ms': 0,
        'portcullis.dry_run': false,
        'http.request.method': 'GET',
        'url.path': '/slow',
        'http.response.status_code': 503,
        'otel.status_code': 'ERROR',
      });
    }

    // An admitted request the caller samples: portcullis continues its trace, the app's span hangs below.
    const traceId = `${runtime === 'node' ? 'a' : 'b'}${'1'.repeat(31)}`;
    const ok = await request(sc.port, { path: '/?traced=1', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(ok.status).toBe(200);
    const trace = await waitFor(
      'the admitted trace with both spans',
      async () => {
        const t = await jaeger.trace(traceId);
        return t && t.spans.length === 2 ? t : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    const mine = trace.spans.find((s) => trace.processes[s.processID]?.serviceName === 'portcullis')!;
    const theirs = trace.spans.find((s) => trace.processes[s.processID]?.serviceName === `example-app-${runtime}`)!;
    expect(tagsOf(mine)).toMatchObject({ 'portcullis.decision': 'admitted', 'http.response.status_code': 200 });
    expect(mine.references).toEqual([{ refType: 'CHILD_OF', traceID: traceId, spanID: '00f067aa0ba902b7' }]);
    expect(theirs.references).toEqual([{ refType: 'CHILD_OF', traceID: traceId, spanID: mine.spanID }]);
  });

  it('/metrics, read by the Prometheus parser, counts exactly what was sent', async () => {
    const up = await startUpstream();
    pending.push(() => up.close());
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, {
        connections: { max: 40 },
        inflight: { max: 3 },
        routes: [{ name: 'probe', match: { exact: '/healthz' }, bypass: true }],
      }),
      env: otelEnv('http://127.0.0.1:9', { OTEL_TRACES_EXPORTER: 'none' }),
    });
    pending.push(() => sc.stop('SIGTERM'));
    const results = await fire(sc.port, 30, { path: '/hold?ms=300' });
    for (let i = 0; i < 4; i++) expect((await request(sc.port, { path: '/healthz' })).status).toBe(200);
    const ok = results.filter((r) => r.status === 200).length;
    const rejected = results.filter((r) => r.status === 503).length;
    expect(ok + rejected).toBe(30);
    // 45 silent sockets against a socket cap of 40: idle ones are evicted to make room.
    const silent = await Promise.all(Array.from({ length: 45 }, () => connect(sc.port)));
    pending.push(async () => silent.forEach((c) => c.destroy()));
    await waitFor('evictions', async () => (await sc.stats()).connections.evicted >= 5);
    const evicted = (await sc.stats()).connections.evicted;

    const res = await sc.admin('/metrics');
    expect(res.status).toBe(200);
    const samples = parsePrometheus(res.text);
    expect(sum(samples, 'portcullis_decisions_total', { decision: 'admitted' })).toBe(ok);
    expect(sum(samples, 'portcullis_decisions_total', { decision: 'rejected', reason: 'inflight_limit', limiter: 'global' })).toBe(rejected);
    expect(sum(samples, 'portcullis_decisions_total', { decision: 'bypassed' })).toBe(4);
    expect(sum(samples, 'portcullis_limit', { limiter: 'global' })).toBe(3);
    expect(sum(samples, 'portcullis_inflight', { limiter: 'global' })).toBe(0);
    expect(sum(samples, 'portcullis_queue_depth', { limiter: 'global' })).toBe(0);
    expect(samples.some((s) => s.name === 'portcullis_connections')).toBe(true);
    expect(sum(samples, 'portcullis_upstream_duration_seconds_count')).toBe(ok + 4);
    expect(sum(samples, 'portcullis_connections_evicted_total')).toBe(evicted);
  });

  it('exporter at a closed port: traffic is unaffected, every span is counted as dropped', async () => {
    const up = await startUpstream();
    pending.push(() => up.close());
    const closed = `http://127.0.0.1:${await freePort()}`;
    const sc = await startSidecar({
      runtime,
      config: configFor(up.url, { inflight: { max: 1000 } }),
      env: otelEnv(closed, {
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_BSP_MAX_QUEUE_SIZE: '50',
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '25',
        // The exporter retries a refused connection until its timeout: keep that short here.
        OTEL_EXPORTER_OTLP_TIMEOUT: '300',
        OTEL_BSP_EXPORT_TIMEOUT: '300',
      }),
    });
    pending.push(() => sc.stop('SIGTERM'));
    const results = await fire(sc.port, 200, { path: '/ok' });
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(up.count()).toBe(200);
    // Every one of the 200 spans is lost (queue full or export refused), and every loss is counted.
    const dropped = await waitFor(
      'all 200 spans counted as dropped',
      async () => {
        const n = sum(parsePrometheus((await sc.admin('/metrics')).text), 'portcullis_spans_dropped_total');
        return n >= 200 ? n : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(dropped).toBe(200);
    expect(sc.stderr()).not.toMatch(/Unhandled|TypeError/);
  });

  it('SIGTERM with the collector unreachable: the exit is not held by the exporter\'s retries', async () => {
    const up = await startUpstream();
    pending.push(() => up.close());
    const closed = `http://127.0.0.1:${await freePort()}`;
    // The exporter's own timeouts left at their defaults (10 s, with retries).
    const sc = await startSidecar({ runtime, config: configFor(up.url, {}), env: otelEnv(closed, { OTEL_TRACES_SAMPLER: 'always_on' }) });
    const results = await fire(sc.port, 20, { path: '/ok' });
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const t0 = Date.now();
    const exit = await sc.stop('SIGTERM', 15_000);
    const ms = Date.now() - t0;
    expect(exit.code).toBe(0);
    // drain.delay is 0 in the test config and nothing is in flight; the span flush gets at most 2 s.
    expect(ms, `exit took ${ms} ms`).toBeLessThan(5000);
    expect(sc.logs().some((l) => l.msg === 'portcullis stopped')).toBe(true);
  });
});
