// Scenario 3, overload: the app's /work mode serves N requests at once well (each holds ~50 ms
// and ~2 MiB) and degrades beyond N (see bench/app.mjs). vegeta offers 1x, 2x, 5x and 10x of
// what N requests at a time can serve (N / 50 ms), open loop, with a 2 s client deadline. The
// proxies cap the app at N in flight; direct shows the app on its own collapsing.
import { vegeta, wrk } from '../lib/load.mjs';

export const HOLD_MS = 50;
export const CLIENT_TIMEOUT_S = 2;

export default {
  id: 3,
  title: 'Overload',
  parts: [
    {
      key: '3',
      limits: true,
      title: '3 · overload (app serves N at once; cap N)',
      profile: (o) => ({
        cap: o.overloadN,
        queueSize: o.queueSize,
        queueTimeoutMs: o.queueTimeoutMs,
        connectionsMax: 4096,
        headerTimeoutMs: 10_000,
      }),
      loads: (o) => [
        {
          // The app at its best: exactly N requests at a time, closed loop, no proxy. Its goodput
          // is the 100% of "goodput %".
          key: 'best',
          label: `app best (wrk -c${o.overloadN})`,
          only: ['direct'],
          run: (ctx, sys) =>
            wrk(ctx, ctx.url(sys, `/work?n=${o.overloadN}&ms=${HOLD_MS}`), { connections: o.overloadN, durationS: o.overloadS, timeoutS: CLIENT_TIMEOUT_S }),
        },
        ...o.overloadLevels.map((k) => {
          const rate = (k * o.overloadN * 1000) / HOLD_MS;
          return {
            key: `x${k}`,
            label: `${k}x (${Math.round(rate)} req/s)`,
            chartLabel: `${k}x`,
            multiple: k,
            run: (ctx, sys) =>
              vegeta(ctx, ctx.url(sys, `/work?n=${o.overloadN}&ms=${HOLD_MS}`), {
                rate,
                durationS: o.overloadS,
                timeoutS: CLIENT_TIMEOUT_S,
                // Bounds the app's memory when direct collapses: at most 20 N requests open.
                maxWorkers: 20 * o.overloadN,
              }),
          };
        }),
      ],
      /** The app waits until every /work request of the last run is gone before the next. */
      quiesce: true,
      /** Goodput as a share of the app's best (the closed-loop run at exactly N; N/50 ms if absent). */
      derive(summary, _runs, _helpers, o) {
        const best = summary.find((r) => r.load === 'best')?.okPerS ?? (o.overloadN * 1000) / HOLD_MS;
        for (const row of summary) row.goodputPct = (100 * row.okPerS) / best;
      },
      note: (o) =>
        `The app serves ${o.overloadN} requests at once in ${HOLD_MS} ms each (at most ${(o.overloadN * 1000) / HOLD_MS} req/s); ` +
        `beyond ${o.overloadN} at once each request takes ${HOLD_MS} ms x (c/${o.overloadN})^2. "app best" is the app alone with exactly ` +
        `${o.overloadN} connections (closed loop): its goodput is the 100% of "goodput %". The other loads are vegeta at a constant rate ` +
        `for ${o.overloadS} s, k times ${(o.overloadN * 1000) / HOLD_MS} req/s; the 0.5x direct row is the unloaded latency. ` +
        `Clients give up after ${CLIENT_TIMEOUT_S} s (errors/s). Queue: ${o.queueSize > 0 ? `${o.queueSize} for ${o.queueTimeoutMs} ms (portcullis, HAProxy)` : 'none (HAProxy: timeout queue 1 ms)'}; nginx limit_conn never queues.`,
      columns: [
        { key: 'rps', title: 'sent/s', digits: 0 },
        { key: 'okPerS', title: 'goodput 2xx/s', digits: 0 },
        { key: 'goodputPct', title: 'goodput %', digits: 0 },
        { key: 'rejectsPerS', title: 'rejects/s', digits: 0 },
        { key: 'errorsPerS', title: 'errors/s', digits: 0 },
        { key: 'okP50', title: 'admitted p50 ms', digits: 1 },
        { key: 'okP99', title: 'admitted p99 ms', digits: 1 },
        { key: 'appPeak', title: 'app peak conc', digits: 0 },
        { key: 'appRssPeakMiB', title: 'app RSS MiB', digits: 0 },
        { key: 'cpuUsPerReq', title: 'CPU µs/req', digits: 1 },
        { key: 'rssPeakMiB', title: 'RSS MiB', digits: 0 },
      ],
    },
  ],
};
