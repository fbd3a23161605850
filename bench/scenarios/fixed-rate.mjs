// Scenario 2, fixed moderate load: vegeta sends 1,000 and 5,000 requests/s at a constant rate
// (open loop, so a slow answer does not slow the sender and queueing shows up in the latency)
// for ~100-byte answers. The interesting number is the latency each proxy adds over direct.
import { vegeta } from '../lib/load.mjs';

export default {
  id: 2,
  title: 'Fixed moderate load',
  parts: [
    {
      key: '2',
      title: '2 · fixed rate, open loop (latency added over direct)',
      note: (o) =>
        `vegeta at a constant rate for ${o.durationS} s (open loop: a slow answer does not slow the sender). ` +
        `+p50/+p99: latency added over direct, taken per round against the direct run of the same round, median of the rounds.`,
      profile: () => ({ cap: 10_000, queueSize: 0, queueTimeoutMs: 1000, connectionsMax: 4096, headerTimeoutMs: 10_000 }),
      loads: (o) =>
        [1000, 5000].map((rate) => ({
          key: `r${rate}`,
          label: `${rate.toLocaleString('en-US')} req/s`,
          run: (ctx, sys) => vegeta(ctx, ctx.url(sys, '/'), { rate, durationS: o.durationS, timeoutS: 5, maxWorkers: 1024 }),
        })),
      /** Latency added over direct, paired per round (direct ran in the same round), then the median. */
      derive(summary, runs, { median }) {
        for (const row of summary) {
          if (row.system === 'direct') continue;
          for (const p of ['p50', 'p99']) {
            const diffs = runs
              .filter((r) => r.load === row.load && r.system === row.system)
              .map((r) => {
                const d = runs.find((x) => x.load === r.load && x.system === 'direct' && x.round === r.round);
                return d ? r[p] - d[p] : undefined;
              });
            row[`added_${p}`] = median(diffs);
          }
        }
      },
      columns: [
        { key: 'rps', title: 'sent/s', digits: 0 },
        { key: 'p50', title: 'p50 ms', digits: 2 },
        { key: 'p99', title: 'p99 ms', digits: 2 },
        { key: 'p999', title: 'p99.9 ms', digits: 2 },
        { key: 'added_p50', title: '+p50 ms', digits: 2 },
        { key: 'added_p99', title: '+p99 ms', digits: 2 },
        { key: 'cpuUsPerReq', title: 'CPU µs/req', digits: 1 },
        { key: 'rssPeakMiB', title: 'RSS MiB', digits: 0 },
        { key: 'failPerS', title: 'non-2xx+err/s', digits: 1 },
      ],
    },
  ],
};
