// Scenario 5, telemetry cost: the pass-through load of scenario 1 (wrk -c64, ~100-byte answers)
// through portcullis only, three times: tracing off (OTEL_TRACES_EXPORTER=none), every request
// sampled (OTEL_TRACES_SAMPLER=always_on, so every request's span is exported to the harness's
// OTLP sink), and the default (1% of traces started here, rejects always). Metrics stay on in all
// three (they are always on: /metrics); the difference between the parts is the cost of tracing.
import { wrk } from '../lib/load.mjs';

const PORTCULLIS = ['portcullis-node', 'portcullis-deno'];

const MODES = [
  { key: '5off', label: 'tracing off', env: { OTEL_TRACES_EXPORTER: 'none' } },
  { key: '5all', label: 'every request sampled', env: { OTEL_TRACES_SAMPLER: 'always_on' } },
  { key: '5default', label: 'default sampling (1%, rejects always)', env: {} },
];

export default {
  id: 5,
  title: 'Telemetry cost',
  parts: MODES.map((mode) => ({
    key: mode.key,
    limits: true,
    title: `5 · telemetry cost: ${mode.label}`,
    note: (o) =>
      `wrk -c64, ~100-byte answers, ${o.durationS} s per run, portcullis only. Environment: ` +
      (Object.keys(mode.env).length ? Object.entries(mode.env).map(([k, v]) => `${k}=${v}`).join(' ') : 'none (the defaults)') +
      '; spans go to the harness\'s local OTLP sink.',
    profile: () => ({ cap: 10_000, queueSize: 0, queueTimeoutMs: 1000, connectionsMax: 4096, headerTimeoutMs: 10_000, env: mode.env }),
    loads: (o) => [
      {
        key: 'c64',
        label: `100 B, 64 conns, ${mode.label}`,
        only: PORTCULLIS,
        run: (ctx, sys) => wrk(ctx, ctx.url(sys, '/'), { connections: 64, durationS: o.durationS }),
      },
    ],
    columns: [
      { key: 'rps', title: 'req/s', digits: 0 },
      { key: 'p50', title: 'p50 ms', digits: 2 },
      { key: 'p99', title: 'p99 ms', digits: 2 },
      { key: 'cpuUsPerReq', title: 'CPU µs/req', digits: 1 },
      { key: 'rssPeakMiB', title: 'RSS MiB', digits: 0 },
      { key: 'failPerS', title: 'non-2xx+err/s', digits: 0 },
    ],
  })),
};
