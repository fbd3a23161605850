// Tracing for the example app, loaded only when an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT): one SERVER span per request, continuing the caller's W3C
// traceparent, so behind portcullis the app's span is a child of portcullis's span.
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';

const sdk = new NodeSDK({ serviceName: process.env.OTEL_SERVICE_NAME || 'example-app', instrumentations: [] });
sdk.start();
const tracer = trace.getTracer('example-app');

/** Starts the request's span; it ends with the response. */
export function traceRequest(req, res, pathname) {
  const parent = propagation.extract(context.active(), req.headers);
  const span = tracer.startSpan(
    `${req.method} ${pathname}`,
    { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': pathname } },
    parent,
  );
  res.once('close', () => {
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
}

export function shutdown() {
  return sdk.shutdown();
}
