// Micro-benchmark of Admission's hot path: admit + release of one request, nothing queued.
// Compares builds of src/core (bench/micro/build-core.sh) in one process, interleaved, so that
// machine noise hits them alike. Reports ns per admit+release (median of rounds) and bytes
// allocated per admit+release (heap growth over a loop with no GC in it).
//
//   bash bench/micro/build-core.sh HEAD~1 /tmp/pc-before
//   bash bench/micro/build-core.sh worktree /tmp/pc-after
//   node --expose-gc --max-semi-space-size=64 bench/micro/admission.mjs before=/tmp/pc-before/dist after=/tmp/pc-after/dist
//   node_modules/deno/deno run -A --v8-flags=--expose-gc,--max-semi-space-size=64 bench/micro/admission.mjs before=... after=...
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const builds = [];
for (const arg of process.argv.slice(2)) {
  const [name, dir] = arg.split('=');
  const base = pathToFileURL(resolve(dir)).href;
  const { Admission } = await import(`${base}/core/admission.js`);
  const { configSchema } = await import(`${base}/core/config-schema.js`);
  builds.push({ name, Admission, configSchema });
}
if (builds.length === 0) throw new Error('usage: admission.mjs name=dist-dir [name=dist-dir ...]');

const scenarios = {
  'global only': { config: { inflight: { max: 100 } }, path: '/' },
  'route + global': { config: { inflight: { max: 100 }, routes: [{ name: 'r', match: { prefix: '/r' }, inflight: { max: 50 } }] }, path: '/r' },
  'global perClient': { config: { inflight: { max: 100, perClient: 10 } }, path: '/' },
  'reject (max 0)': { config: { inflight: { max: 0 } }, path: '/' },
};

// Decisions escape here as they do in the proxy (kept on the exchange), so the optimizer cannot
// drop their allocation.
const sink = new Array(1024).fill(undefined);

function run(a, req, n) {
  for (let i = 0; i < n; i++) {
    const d = a.admit(req);
    sink[i & 1023] = d;
    d.grant?.release();
  }
}

function timeRound(a, req, n) {
  const t0 = performance.now();
  run(a, req, n);
  return ((performance.now() - t0) * 1e6) / n;
}

function bytesPerOp(a, req, n) {
  globalThis.gc?.();
  const h0 = process.memoryUsage().heapUsed;
  run(a, req, n);
  const h1 = process.memoryUsage().heapUsed;
  return (h1 - h0) / n;
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ROUNDS = 21;
const N = 200_000;

for (const [title, s] of Object.entries(scenarios)) {
  const req = { method: 'GET', path: s.path, host: 'h', headers: {}, client: '10.0.0.1' };
  const subjects = builds.map((b) => ({ b, a: new b.Admission(b.configSchema.parse(s.config)), ns: [], bytes: [] }));
  for (const x of subjects) run(x.a, req, N); // warm up
  for (let r = 0; r < ROUNDS; r++) {
    for (const x of r % 2 === 0 ? subjects : [...subjects].reverse()) x.ns.push(timeRound(x.a, req, N));
  }
  for (let r = 0; r < 5; r++) for (const x of subjects) x.bytes.push(bytesPerOp(x.a, req, 50_000));
  const cells = subjects.map((x) => `${x.b.name}: ${median(x.ns).toFixed(1)} ns, ${median(x.bytes).toFixed(0)} B`);
  console.log(`${title.padEnd(18)} ${cells.join('   ')}`);
}
