// Scenario 1, pass-through: caps far above the load, so every system only forwards. wrk keeps
// 64 and 256 connections busy with ~100-byte answers; then 1 MiB answers and 10 MiB uploads
// (throughput in MB/s and the proxy's RSS while bodies stream through it).
import { wrk } from '../lib/load.mjs';

const UPLOAD_BYTES = 10 * 1024 * 1024;
const DOWNLOAD_BYTES = 1024 * 1024;

export default {
  id: 1,
  title: 'Pass-through',
  parts: [
    {
      key: '1',
      title: '1 · pass-through (caps far above the load)',
      note: (o) =>
        `wrk, one thread, keep-alive connections, ${o.durationS} s per run (transfers ${o.transferS} s); closed loop, so req/s is the ` +
        `most each system does with that many connections. MB/s counts bodies (answers for GET, requests for POST). ` +
        `Caps: 10,000 in flight, 4,096 sockets.`,
      profile: () => ({ cap: 10_000, queueSize: 0, queueTimeoutMs: 1000, connectionsMax: 4096, headerTimeoutMs: 10_000 }),
      loads: (o) => [
        { key: 'c64', label: '100 B, 64 conns', run: (ctx, sys) => wrk(ctx, ctx.url(sys, '/'), { connections: 64, durationS: o.durationS }) },
        { key: 'c256', label: '100 B, 256 conns', run: (ctx, sys) => wrk(ctx, ctx.url(sys, '/'), { connections: 256, durationS: o.durationS }) },
        {
          key: 'get1MiB',
          label: '1 MiB GET, 8 conns',
          run: async (ctx, sys) => {
            const r = await wrk(ctx, ctx.url(sys, `/bytes?n=${DOWNLOAD_BYTES}`), { connections: 8, durationS: o.transferS });
            return { ...r, mbPerS: (r.ok * DOWNLOAD_BYTES) / r.seconds / 1e6 };
          },
        },
        {
          key: 'post10MiB',
          label: '10 MiB POST, 4 conns',
          run: async (ctx, sys) => {
            const r = await wrk(ctx, ctx.url(sys, '/upload'), {
              connections: 4,
              durationS: o.transferS,
              script: 'upload.lua',
              env: { WRK_BODY_BYTES: String(UPLOAD_BYTES) },
              timeoutS: 10,
            });
            return { ...r, mbPerS: (r.ok * UPLOAD_BYTES) / r.seconds / 1e6 };
          },
        },
      ],
      columns: [
        { key: 'rps', title: 'req/s', digits: 0 },
        { key: 'mbPerS', title: 'MB/s', digits: 0 },
        { key: 'p50', title: 'p50 ms', digits: 2 },
        { key: 'p99', title: 'p99 ms', digits: 2 },
        { key: 'p999', title: 'p99.9 ms', digits: 2 },
        { key: 'cpuUsPerReq', title: 'CPU µs/req', digits: 1 },
        { key: 'rssPeakMiB', title: 'RSS MiB', digits: 0 },
        { key: 'failPerS', title: 'non-2xx+err/s', digits: 0 },
      ],
    },
  ],
};
