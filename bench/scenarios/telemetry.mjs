// Scenario 5, telemetry cost: a placeholder until tracing exists.
// TODO(issue 4): three parts with the pass-through load of scenario 1 (wrk -c64, 100 B) against
// portcullis only: tracing off, tracing with every request sampled, default sampling; the
// profile will carry the OTEL_* settings and a local OTLP receiver started by the harness.
export default {
  id: 5,
  title: 'Telemetry cost',
  pending: 'waits for issue 4 (tracing): tracing off / every request sampled / default sampling',
  parts: [],
};
