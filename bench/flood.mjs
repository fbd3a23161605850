// Socket flood helper of the reject-path scenario, run by the harness as its own process (so its
// 10,000 file descriptors and its event loop are not the harness's). It opens `--count` TCP
// connections to 127.0.0.1:`--port` that never send a byte, reports, holds them until the
// harness writes "release" on stdin (or `--max-hold-ms` passes), then resets them all (RST, so
// no TIME_WAIT is left behind to exhaust ports for the next round) and exits.
//
// stdout, one JSON line each:
//   {"event":"connected","attempted":N,"open":N,"closedByPeer":N,"failed":N,"pending":N,"ms":N}
//   {"event":"released","open":N,"closedByPeer":N,"failed":N}
import net from 'node:net';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(' ')
    .split('--')
    .filter(Boolean)
    .map((kv) => kv.trim().split(/\s+/)),
);
const port = Number(args.port);
const count = Number(args.count ?? 10_000);
const connectTimeoutMs = Number(args['connect-timeout-ms'] ?? 5000);
const maxHoldMs = Number(args['max-hold-ms'] ?? 60_000);
if (!Number.isInteger(port) || port <= 0) throw new Error('--port is required');

const sockets = new Set();
let open = 0;
let closedByPeer = 0;
let failed = 0;
let settled = 0;
const t0 = Date.now();

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  emit({ event: 'connected', attempted: count, open, closedByPeer, failed, pending: count - settled, ms: Date.now() - t0 });
}

for (let i = 0; i < count; i++) {
  const s = net.connect({ host: '127.0.0.1', port });
  sockets.add(s);
  let connected = false;
  let done = false;
  const settle = () => {
    if (done) return;
    done = true;
    if (++settled === count) report();
  };
  s.on('connect', () => {
    connected = true;
    open++;
    settle();
  });
  s.on('data', () => {}); // a reject answer; keep reading so the peer's close arrives
  s.on('error', () => {});
  s.on('close', () => {
    sockets.delete(s);
    if (connected) {
      open--;
      closedByPeer++;
    } else {
      failed++;
      settle();
    }
  });
}
setTimeout(report, connectTimeoutMs).unref();

function release() {
  const stillOpen = open;
  for (const s of sockets) {
    if (typeof s.resetAndDestroy === 'function' && s.readyState === 'open') s.resetAndDestroy();
    else s.destroy();
  }
  emit({ event: 'released', open: stillOpen, closedByPeer, failed });
  setTimeout(() => process.exit(0), 50);
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  if (d.includes('release')) release();
});
process.stdin.on('end', release);
setTimeout(release, maxHoldMs).unref();
process.on('SIGTERM', release);
