/**
 * The OpenTelemetry SDK, set up once by the entry point (everything else uses the API only).
 * Standard environment: OTEL_SDK_DISABLED, OTEL_SERVICE_NAME (default `portcullis`),
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER (`otlp` default, `none`), OTEL_METRICS_EXPORTER,
 * OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT / _PROTOCOL (`http/protobuf` default,
 * `http/json`, `grpc`), OTEL_TRACES_SAMPLER / _ARG, OTEL_BSP_MAX_QUEUE_SIZE and friends.
 *
 * Two things are ours: rejects are sampled even when the configured sampler would drop the
 * request (`telemetry.alwaysSampleRejects`), and every span that is not exported (export queue
 * full, export failed) is counted in `portcullis_spans_dropped_total`. The export queue is
 * bounded, so an unreachable collector costs bounded memory and never blocks traffic.
 */
import { NodeSDK, metrics as sdkMetrics, tracing } from '@opentelemetry/sdk-node';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { ROOT_CONTEXT, type Attributes, type Context, type ContextManager, type Link, type SpanKind } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { Logger } from '../core/log.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface TelemetrySdkOptions {
  env: Env;
  logger: Logger;
  /** Read at every sampling decision, so a reload applies at once. */
  alwaysSampleRejects: () => boolean;
  /** Spans that will not be exported. */
  onDropped: (n: number) => void;
}

export interface TelemetrySdk {
  /** Traces are exported: spans are worth creating. */
  tracing: boolean;
  /** Prometheus text of every metric, for the admin /metrics; undefined when the SDK is disabled. */
  metricsText(): Promise<string | undefined>;
  shutdown(): Promise<void>;
}

const DEFAULT_SAMPLER = 'parentbased_traceidratio';
const DEFAULT_SAMPLER_ARG = '0.01';

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/**
 * The sampler named by OTEL_TRACES_SAMPLER. Our default differs from the SDK's (always on):
 * a sidecar sees every request of its pod, so by default it samples 1% of the traces it starts
 * and follows the caller's decision otherwise; rejects are sampled regardless (see below).
 */
export function samplerFromEnv(env: Env): tracing.Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? DEFAULT_SAMPLER).trim().toLowerCase();
  const argText = env.OTEL_TRACES_SAMPLER_ARG ?? (env.OTEL_TRACES_SAMPLER === undefined ? DEFAULT_SAMPLER_ARG : '1');
  const ratio = Number(argText);
  const r = Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : 1;
  switch (name) {
    case 'always_on':
      return new tracing.AlwaysOnSampler();
    case 'always_off':
      return new tracing.AlwaysOffSampler();
    case 'traceidratio':
      return new tracing.TraceIdRatioBasedSampler(r);
    case 'parentbased_always_off':
      return new tracing.ParentBasedSampler({ root: new tracing.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new tracing.ParentBasedSampler({ root: new tracing.TraceIdRatioBasedSampler(r) });
    default:
      return new tracing.ParentBasedSampler({ root: new tracing.AlwaysOnSampler() });
  }
}

/** Samples a reject even when the wrapped sampler would not (the reject span cap is applied before). */
export class RejectAwareSampler implements tracing.Sampler {
  constructor(
    private readonly delegate: tracing.Sampler,
    private readonly alwaysSampleRejects: () => boolean,
  ) {}

  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): tracing.SamplingResult {
    const r = this.delegate.shouldSample(ctx, traceId, name, kind, attributes, links);
    if (r.decision !== tracing.SamplingDecision.RECORD_AND_SAMPLED && attributes['portcullis.decision'] === 'rejected' && this.alwaysSampleRejects()) {
      return { decision: tracing.SamplingDecision.RECORD_AND_SAMPLED };
    }
    return r;
  }

  toString(): string {
    return `RejectAwareSampler{${this.delegate.toString()}}`;
  }
}

/**
 * A BatchSpanProcessor that counts what it loses: spans refused because the export queue is full
 * (it drops them silently otherwise) and spans whose export failed.
 */
export class CountingBatchSpanProcessor implements tracing.SpanProcessor {
  private readonly inner: tracing.BatchSpanProcessor;
  private readonly maxQueueSize: number;
  private queued = 0;

  constructor(exporter: tracing.SpanExporter, config: tracing.BufferConfig, onDropped: (n: number) => void) {
    this.maxQueueSize = config.maxQueueSize ?? 2048;
    const counting: tracing.SpanExporter = {
      export: (spans, done) => {
        this.queued -= spans.length;
        exporter.export(spans, (result: ExportResult) => {
          if (result.code !== 0) onDropped(spans.length);
          done(result);
        });
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    };
    this.inner = new tracing.BatchSpanProcessor(counting, config);
    this.onDropped = onDropped;
  }

  private readonly onDropped: (n: number) => void;

  onStart(span: tracing.Span, ctx: Context): void {
    this.inner.onStart(span, ctx);
  }

  onEnd(span: tracing.ReadableSpan): void {
    if ((span.spanContext().traceFlags & 1) === 0) return;
    if (this.queued >= this.maxQueueSize) {
      this.onDropped(1);
      return;
    }
    this.queued++;
    this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** A context manager without async context: `active()` is always the root context. */
export class NoContextManager implements ContextManager {
  active(): Context {
    return ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(_ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return fn.call(thisArg, ...args);
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

function protocol(env: Env, signal: 'TRACES' | 'METRICS'): string {
  return (env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
}

async function traceExporter(env: Env): Promise<tracing.SpanExporter> {
  switch (protocol(env, 'TRACES')) {
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    default:
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
  }
}

async function metricExporter(env: Env): Promise<sdkMetrics.PushMetricExporter> {
  switch (protocol(env, 'METRICS')) {
    case 'grpc':
      return new (await import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter();
    default:
      return new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
  }
}

function intEnv(env: Env, name: string, dflt: number): number {
  const n = Number(env[name]);
  return Number.isInteger(n) && n > 0 ? n : dflt;
}

/** The batch span processor over the configured OTLP trace exporter, counting what it drops. */
async function spanProcessor(env: Env, onDropped: TelemetrySdkOptions['onDropped']): Promise<tracing.SpanProcessor> {
  return new CountingBatchSpanProcessor(
    await traceExporter(env),
    {
      maxQueueSize: intEnv(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048),
      maxExportBatchSize: intEnv(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512),
      scheduledDelayMillis: intEnv(env, 'OTEL_BSP_SCHEDULE_DELAY', 1000),
      exportTimeoutMillis: intEnv(env, 'OTEL_BSP_EXPORT_TIMEOUT', 10_000),
    },
    onDropped,
  );
}

/** OTLP metrics when asked for by name, or when an OTLP endpoint is set and OTEL_METRICS_EXPORTER is not. */
async function otlpMetricReader(env: Env): Promise<sdkMetrics.IMetricReader | undefined> {
  const metricExporters = list(env.OTEL_METRICS_EXPORTER);
  const otlpEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
  if (!metricExporters.includes('otlp') && !(metricExporters.length === 0 && otlpEndpoint !== undefined)) return undefined;
  return new sdkMetrics.PeriodicExportingMetricReader({
    exporter: await metricExporter(env),
    exportIntervalMillis: intEnv(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000),
  });
}

export async function startTelemetrySdk(options: TelemetrySdkOptions): Promise<TelemetrySdk> {
  const { env, logger } = options;
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') {
    logger.info('telemetry disabled', { reason: 'OTEL_SDK_DISABLED' });
    return { tracing: false, metricsText: async () => undefined, shutdown: async () => {} };
  }

  const tracingOn = list(env.OTEL_TRACES_EXPORTER ?? 'otlp').includes('otlp');
  const spanProcessors = tracingOn ? [await spanProcessor(env, options.onDropped)] : [];
  // Prometheus text on the admin port always; OTLP metrics when asked for (otlpMetricReader).
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const otlpMetrics = await otlpMetricReader(env);
  const metricReaders: sdkMetrics.IMetricReader[] = otlpMetrics === undefined ? [prometheus] : [prometheus, otlpMetrics];

  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'portcullis',
    sampler: new RejectAwareSampler(samplerFromEnv(env), options.alwaysSampleRejects),
    spanProcessors,
    metricReaders,
    instrumentations: [],
    // portcullis passes parent contexts explicitly and never reads the active one. The SDK's
    // default (AsyncLocalStorage) would run async hooks on every socket, timer and promise of the
    // data path once anything enters a context (the batch exporter does).
    contextManager: new NoContextManager(),
  });
  sdk.start();
  const serializer = new PrometheusSerializer();
  logger.info('telemetry started', {
    traces: tracingOn ? protocol(env, 'TRACES') : 'none',
    endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://localhost:4318',
    sampler: env.OTEL_TRACES_SAMPLER ?? `${DEFAULT_SAMPLER} ${DEFAULT_SAMPLER_ARG} (default)`,
    otlpMetrics: metricReaders.length > 1,
  });
  return {
    tracing: tracingOn,
    metricsText: async () => {
      const { resourceMetrics, errors } = await prometheus.collect();
      if (errors.length > 0) logger.warn('metrics collection errors', { errors: errors.map(String) });
      return serializer.serialize(resourceMetrics);
    },
    shutdown: () => sdk.shutdown(),
  };
}
