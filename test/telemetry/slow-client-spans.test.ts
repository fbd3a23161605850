/**
 * A slow client's cut is on its request's span (issue 10, item 4): the sidecar runs in this
 * process with real sockets and a real upstream, spans go to an in-memory exporter. A trickled
 * body and a response nobody reads each end their span with `portcullis.cut` set to the cause.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { tracing } from '@opentelemetry/sdk-node';
import { loadConfig } from '../../src/core/config-load.ts';
import { silentLogger } from '../../src/core/log.ts';
import { startSidecar, type Sidecar } from '../../src/sidecar.ts';
import { connect, get } from '../helpers/raw-http.ts';
import { cleanup, configFor, onCleanup, waitFor } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

const exporter = new tracing.InMemorySpanExporter();

beforeAll(() => {
  trace.setGlobalTracerProvider(
    new tracing.BasicTracerProvider({ sampler: new tracing.AlwaysOnSampler(), spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }),
  );
});
afterAll(() => trace.disable());
afterEach(async () => {
  await cleanup();
  exporter.reset();
});

const QUICK = {
  bodyTimeout: '1s',
  bodyMinRate: { bytesPerSecond: 1000, grace: '500ms' },
  sendTimeout: '1s',
  sendMinRate: { bytesPerSecond: 1000, grace: '500ms' },
};

async function start(): Promise<Sidecar> {
  const up = await startUpstream();
  const { config, version } = loadConfig(JSON.stringify(configFor(up.url, { connections: QUICK })), 'slow-client-spans.test');
  const sc = await startSidecar({
    loaded: { config, version, source: 'slow-client-spans.test', loadedAt: new Date() },
    logger: silentLogger,
    runtime: 'node',
    sdk: { tracing: true, metricsText: async () => undefined },
  });
  onCleanup(() => sc.drain());
  return sc;
}

const cutSpan = () =>
  waitFor('a finished span with portcullis.cut', () => exporter.getFinishedSpans().find((s) => s.attributes['portcullis.cut'] !== undefined), {
    timeoutMs: 10_000,
  });

describe('slow-client cuts on spans', () => {
  it('issue 10: a trickled body ends its span with portcullis.cut=body_min_rate', async () => {
    const sc = await start();
    const c = await connect(sc.port, { send: 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\na' });
    const timer = setInterval(() => void c.write('a'), 1000);
    onCleanup(() => clearInterval(timer));
    const s = await cutSpan();
    expect(s.attributes).toMatchObject({ 'portcullis.cut': 'body_min_rate', 'portcullis.decision': 'admitted', 'url.path': '/upload' });
  });

  it('issue 10: a response nobody reads ends its span with portcullis.cut=send_timeout or send_min_rate', async () => {
    const sc = await start();
    const c = await connect(sc.port);
    c.socket.pause();
    await c.write(get(`/download?bytes=${16 * 1024 * 1024}`));
    const s = await cutSpan();
    // Both limits are on with the same grace; whichever the ticker sees first.
    expect(['send_timeout', 'send_min_rate']).toContain(s.attributes['portcullis.cut']);
    expect(s.attributes['http.response.status_code']).toBe(200);
  });
});
