// Scenario 4, the reject path.
// 4a: cap 0, every request is turned away (portcullis inflight.max 0, nginx `return 503`,
//     HAProxy `http-request return status 503`); wrk -c64 measures rejects/s and the CPU per
//     reject. "direct" is the app answering 503 itself: the floor for a node:http server.
// 4b: a flood of idle sockets (10,000 by default, from bench/flood.mjs, a process of its own)
//     against a socket cap of 4,096 with a 10 s header timeout: the proxy's RSS while they are
//     held, whether a normal request gets through meanwhile, and how long after the flood lets go
//     until a normal request is served again.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { wrk } from '../lib/load.mjs';
import { startPiped, sleep, memory } from '../lib/procs.mjs';
import { probe } from '../lib/http.mjs';

const MiB = 1024 * 1024;

export default {
  id: 4,
  title: 'Reject path',
  parts: [
    {
      key: '4a',
      limits: true,
      title: '4a · reject path (cap 0, every request rejected)',
      note: 'wrk -c64 against a cap of 0: every answer is a 503. "direct" is the app answering 503 itself (the floor for node:http).',
      profile: () => ({ cap: 0, queueSize: 0, queueTimeoutMs: 1000, connectionsMax: 4096, headerTimeoutMs: 10_000 }),
      pathFor: (sys, path) => (sys.name === 'direct' ? '/reject' : path),
      loads: (o) => [
        {
          key: 'c64',
          label: 'all rejected, 64 conns',
          run: (ctx, sys) => wrk(ctx, ctx.url(sys, '/'), { connections: 64, durationS: o.durationS }),
        },
      ],
      columns: [
        { key: 'rejectsPerS', title: 'rejects/s', digits: 0 },
        { key: 'p50', title: 'p50 ms', digits: 2 },
        { key: 'p99', title: 'p99 ms', digits: 2 },
        { key: 'cpuUsPerReq', title: 'CPU µs/reject', digits: 1 },
        { key: 'rssPeakMiB', title: 'RSS MiB', digits: 0 },
        { key: 'okPerS', title: '2xx/s', digits: 0 },
      ],
    },
    {
      key: '4b',
      limits: true,
      title: '4b · socket flood (idle sockets against a cap of 4,096)',
      profile: () => ({ cap: 10_000, queueSize: 0, queueTimeoutMs: 1000, connectionsMax: 4096, headerTimeoutMs: 10_000 }),
      warmup: false,
      note: (o) =>
        `${o.floodSockets.toLocaleString('en-US')} sockets that never send a byte, opened from a helper process and held ${o.floodHoldMs / 1000} s ` +
        `(socket cap 4,096, header timeout 10 s). sockets held: still open when the flood lets go (accepted, or waiting in the listen backlog); ` +
        `closed by proxy: closed by the proxy while held (portcullis: idle sockets evicted to make room, or turned away past its cap; nginx: idle connections reused); not connected: never got through the backlog in 5 s. ` +
        `served during flood: normal requests (fresh connection, 500 ms timeout, one each 100 ms) answered 200 while the flood held; ` +
        `recovery: from letting go until a normal request is answered 200; RSS after: 1 s after letting go.`,
      loads: (o) => [
        {
          key: `flood${o.floodSockets}`,
          label: `${o.floodSockets.toLocaleString('en-US')} idle sockets`,
          run: (ctx, sys) => flood(ctx, sys, o),
        },
      ],
      columns: [
        { key: 'floodHeld', title: 'sockets held', digits: 0 },
        { key: 'floodClosedByPeer', title: 'closed by proxy', digits: 0 },
        { key: 'floodNotConnected', title: 'not connected', digits: 0 },
        { key: 'okDuringPct', title: 'served during flood %', digits: 0 },
        { key: 'recoveryMs', title: 'recovery ms', digits: 0 },
        { key: 'rssPeakMiB', title: 'RSS peak MiB', digits: 0 },
        { key: 'rssAfterMiB', title: 'RSS after MiB', digits: 0 },
      ],
    },
  ],
};

/**
 * One flood: open the sockets, probe with normal requests while they are held, let go, probe
 * until a normal request is served again. Bounded: the helper gives up connecting after 5 s and
 * lets go by itself after a minute; recovery is given up after 15 s.
 */
async function flood(ctx, sys, o) {
  const url = ctx.url(sys, '/');
  const helper = startPiped(
    'flood',
    process.execPath,
    [join(ctx.benchDir, 'flood.mjs'), '--port', String(sys.port), '--count', String(o.floodSockets), '--connect-timeout-ms', '5000', '--max-hold-ms', '60000'],
    { cpu: ctx.cpuLoad },
  );
  const lines = createInterface({ input: helper.stdout })[Symbol.asyncIterator]();
  const next = async (event) => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`flood helper ended before "${event}"`);
      const o = JSON.parse(value);
      if (o.event === event) return o;
    }
  };
  try {
    const connected = await next('connected');
    let ok = 0;
    let probes = 0;
    const holdUntil = Date.now() + o.floodHoldMs;
    while (Date.now() < holdUntil) {
      probes++;
      if ((await probe(url, 500)) === 200) ok++;
      await sleep(100);
    }
    helper.stdin.write('release\n');
    const released = await next('released');
    const t0 = Date.now();
    let recoveryMs;
    while (Date.now() - t0 < 15_000) {
      if ((await probe(url, 500)) === 200) {
        recoveryMs = Date.now() - t0;
        break;
      }
      await sleep(10);
    }
    await sleep(1000);
    const rssAfter = sys.pids().reduce((s, p) => s + memory(p).rss, 0);
    return {
      tool: 'flood',
      requests: probes,
      ok,
      seconds: o.floodHoldMs / 1000,
      floodHeld: released.open,
      floodClosedByPeer: released.closedByPeer,
      floodNotConnected: connected.failed + connected.pending,
      floodConnectMs: connected.ms,
      okDuringPct: probes ? (100 * ok) / probes : undefined,
      recoveryMs,
      rssAfterMiB: sys.pids().length ? rssAfter / MiB : undefined,
    };
  } finally {
    helper.stdin.end();
    await new Promise((r) => (helper.exitCode !== null ? r() : helper.once('exit', r)));
  }
}
