/**
 * A real Jaeger (v2, built from the Go module proxy into .tools/bin by scripts/test) on 127.0.0.1
 * with in-memory storage: OTLP/HTTP in, the query HTTP API out. Killed by its PID on cleanup.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, onCleanup, tempDir, waitFor } from './sidecar.ts';
import { freePort } from './upstream.ts';

export const JAEGER = join(ROOT, '.tools', 'bin', 'jaeger');

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: string; traceID: string; spanID: string }>;
  tags: Array<{ key: string; type: string; value: unknown }>;
  processID: string;
}
export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

export interface Jaeger {
  /** OTLP/HTTP endpoint for OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlp: string;
  query: string;
  traces(service: string, tags: Record<string, string>, limit?: number): Promise<JaegerTrace[]>;
  trace(traceId: string): Promise<JaegerTrace | undefined>;
}

export function tagsOf(span: JaegerSpan): Record<string, unknown> {
  return Object.fromEntries(span.tags.map((t) => [t.key, t.value]));
}

export async function startJaeger(): Promise<Jaeger> {
  if (!existsSync(JAEGER)) throw new Error(`${JAEGER} is missing: run the README's test command (npm test), which builds it`);
  const [otlp, http, grpc] = [await freePort(), await freePort(), await freePort()];
  const file = join(tempDir(), 'jaeger.yaml');
  writeFileSync(
    file,
    `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter] }
  telemetry:
    metrics: { level: none }
    logs: { level: warn }
extensions:
  jaeger_query:
    storage: { traces: mem }
    http: { endpoint: 127.0.0.1:${http} }
    grpc: { endpoint: 127.0.0.1:${grpc} }
  jaeger_storage:
    backends:
      mem: { memory: { max_traces: 100000 } }
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:${otlp} }
processors:
  batch: { timeout: 100ms }
exporters:
  jaeger_storage_exporter: { trace_storage: mem }
`,
  );
  const child = spawn(JAEGER, ['--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  onCleanup(async () => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    await exited;
  });
  const query = `http://127.0.0.1:${http}`;
  await waitFor(`jaeger query API (stderr: ${stderr})`, async () => (await fetch(`${query}/api/services`)).ok, { timeoutMs: 20_000, intervalMs: 100 });
  const get = async (path: string) => {
    const r = await fetch(`${query}${path}`);
    if (r.status === 404) return { data: [] };
    if (!r.ok) throw new Error(`jaeger ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as { data: JaegerTrace[] };
  };
  return {
    otlp: `http://127.0.0.1:${otlp}`,
    query,
    traces: async (service, tags, limit = 1000) =>
      (await get(`/api/traces?service=${encodeURIComponent(service)}&tags=${encodeURIComponent(JSON.stringify(tags))}&limit=${limit}&lookback=1h`)).data,
    trace: async (traceId) => (await get(`/api/traces/${traceId}`)).data[0],
  };
}
