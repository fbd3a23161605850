// The upstream app of the benchmark: plain node:http, no dependencies, one process for the
// whole run (every system under test forwards to it). `node bench/app.mjs` listens on
// 127.0.0.1:$BENCH_APP_PORT (0 = a free port) and prints one JSON line with the port.
//
//   GET  /                 100-byte text body (the pass-through and fixed-rate scenarios)
//   GET  /bytes?n=N        N bytes from one preallocated buffer (1 MiB responses)
//   POST /upload           reads the body (10 MiB uploads), answers {"bytes":n}
//   GET  /work?n=N&ms=M    overload mode: serves N requests at once well; see work() below
//   GET  /reject           503 with a reject-sized body: what a proxy's reject path costs at best
//   GET  /__bench/stats    {inflight, peak, served, rssBytes, hwmBytes}; ?reset=1 resets the
//                          counters first; &gc=1 also frees the last run's memory and resets
//                          the kernel's RSS high-water mark (VmHWM), ~0.5 s
//
// Run it as the harness does: `MALLOC_MMAP_THRESHOLD_=131072 node --expose-gc bench/app.mjs`.
//
// Only /work counts towards `inflight`/`peak`: that is the app's own view of how many requests
// reached it at once, which the overload scenario compares with the proxy's cap.
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';

const host = '127.0.0.1';
const port = Number(process.env.BENCH_APP_PORT || 0);

const SMALL = Buffer.from('x'.repeat(99) + '\n'); // 100 bytes
const BIG = Buffer.alloc(1024 * 1024, 'y'); // the largest /bytes answer; shared, never copied
const REJECT = Buffer.from('{"error":"overloaded"}');
const WORK_BYTES = 2 * 1024 * 1024;
const MAX_HOLD_MS = 30_000;

let inflight = 0;
let peak = 0;
let served = 0;

function query(url, name, dflt) {
  const m = new RegExp(`[?&]${name}=(\\d+)`).exec(url);
  return m ? Number(m[1]) : dflt;
}

/**
 * Overload mode. Each request allocates ~2 MiB (written, so the pages are really resident) and
 * holds it for `ms` (default 50). Up to `n` (default 16) concurrent requests that is all; beyond,
 * the hold grows with the square of the overcommit, ms * (c/n)^2 for c requests in the app at
 * arrival (a stand-in for lock convoys, GC pressure and swapping: throughput c/hold falls as c
 * grows, so an unprotected app collapses instead of plateauing). A client that goes away frees
 * its request at once.
 */
function work(req, res) {
  const url = req.url;
  const n = query(url, 'n', 16);
  const ms = query(url, 'ms', 50);
  inflight++;
  if (inflight > peak) peak = inflight;
  const over = inflight / Math.max(1, n);
  const hold = Math.min(MAX_HOLD_MS, over > 1 ? ms * over * over : ms);
  let buf = Buffer.allocUnsafeSlow(WORK_BYTES);
  buf.fill(inflight & 0xff);
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    inflight--;
    clearTimeout(timer);
    buf = undefined;
  };
  const timer = setTimeout(() => {
    const body = `held ${Math.round(hold)}ms sum ${buf ? buf[WORK_BYTES - 1] : 0}\n`;
    finish();
    served++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }, hold);
  res.on('close', finish);
}

function upload(req, res) {
  let bytes = 0;
  req.on('data', (chunk) => {
    bytes += chunk.length;
  });
  req.on('end', () => {
    const body = `{"bytes":${bytes}}\n`;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  req.on('error', () => res.destroy());
}

function memory() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
}

function stats(req, res) {
  const answer = () => {
    const body = JSON.stringify({ inflight, peak, served, ...memory(), pid: process.pid });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (!/[?&]reset=1/.test(req.url)) return answer();
  peak = inflight;
  served = 0;
  if (!/[?&]gc=1/.test(req.url)) return answer();
  // Give back what the last run left (its 2 MiB buffers) so each run's RSS is its own: a full
  // GC frees them (V8 releases the backing stores a little later, on another thread), and with a
  // fixed mmap threshold (MALLOC_MMAP_THRESHOLD_, set by the harness) glibc returns them to the
  // kernel instead of keeping them in its heap.
  globalThis.gc?.();
  setTimeout(() => {
    globalThis.gc?.();
    setTimeout(() => {
      try {
        writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
      } catch {
        /* older kernels or no permission: the high-water mark then covers the whole run */
      }
      answer();
    }, 250);
  }, 250);
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length });
    return res.end(SMALL);
  }
  if (url.startsWith('/work')) return work(req, res);
  if (url.startsWith('/bytes')) {
    const n = Math.min(query(url, 'n', 1024), BIG.length);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    return res.end(n === BIG.length ? BIG : BIG.subarray(0, n));
  }
  if (url.startsWith('/upload')) return upload(req, res);
  if (url === '/reject') {
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': REJECT.length, 'retry-after': '1' });
    return res.end(REJECT);
  }
  if (url.startsWith('/__bench/stats')) return stats(req, res);
  res.writeHead(404, { 'content-length': 0 });
  res.end();
});
// Sockets of a flood or of timed-out clients must not pile up forever; generous for the rest.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 60_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

server.listen(port, host, 4096, () => {
  const addr = server.address();
  process.stdout.write(JSON.stringify({ msg: 'bench app started', port: addr.port, pid: process.pid }) + '\n');
});

const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
