// Interleaved A/B of proxy CPU per request between builds (checkouts) of portcullis, with the
// node:http + undici floor beside them, all in one run so the ratios are comparable on this host.
//
//   node bench/ab.mjs [--rounds 5] [--duration 6] [--connections 64] [--tracing off|default]
//                     NAME=DIR [NAME=DIR ...]
//
// DIR is a checkout with a built dist/main.js (npm run build). Each round runs every system once,
// in a rotated order: the app and wrk on CPU 1, the proxy alone on CPU 0 (taskset), wrk -t1 for
// --duration seconds against `GET /`, and the proxy's CPU time (utime + stime from /proc/PID/stat)
// divided by the requests wrk completed. Prints the median per system and its ratio to the floor.
// Load goes to 127.0.0.1 only; every process started here is ended by its PID.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '6' },
    connections: { type: 'string', default: '64' },
    tracing: { type: 'string', default: 'off' },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/ab.mjs [--rounds N] [--duration S] [--connections C] [--tracing off|default] NAME=DIR ...\n');
  process.exit(2);
}
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const systems = positionals.map((p) => {
  const [name, dir] = p.split('=');
  return { name, dir: resolve(dir) };
});
const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function firstLine(child, match) {
  return new Promise((res, rej) => {
    let buf = '';
    const t = setTimeout(() => rej(new Error(`no start line from ${child.spawnargs.join(' ')}: ${buf.slice(-500)}`)), 15_000);
    child.stdout.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        const m = match(line);
        if (m !== undefined) {
          clearTimeout(t);
          res(m);
          return;
        }
      }
    });
    child.once('exit', (code) => rej(new Error(`exited ${code}: ${buf.slice(-500)}`)));
  });
}

function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

const jsonPort = (line) => {
  try {
    const j = JSON.parse(line);
    return typeof j.port === 'number' ? j.port : undefined;
  } catch {
    return undefined;
  }
};

const app = start('taskset', ['-c', '1', process.execPath, join(here, 'app.mjs')]);
const appPort = await firstLine(app, jsonPort);
const work = mkdtempSync(join(tmpdir(), 'portcullis-ab-'));
const config = join(work, 'portcullis.yaml');
writeFileSync(
  config,
  `listen: { host: 127.0.0.1, port: 0 }\nadmin: { host: 127.0.0.1, port: 0 }\nupstream: { url: 'http://127.0.0.1:${appPort}', maxSockets: 512 }\ndrain: { delay: 0, timeout: 1s }\n`,
);
const telemetryEnv =
  values.tracing === 'off'
    ? { OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' }
    : { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_METRICS_EXPORTER: 'none' };

async function launch(system) {
  if (system.name === 'floor') {
    const c = start('taskset', ['-c', '0', process.execPath, join(here, 'floor.mjs'), '--port', '0', '--upstream', `http://127.0.0.1:${appPort}`]);
    return { child: c, port: await firstLine(c, jsonPort) };
  }
  const c = start('taskset', ['-c', '0', process.execPath, join(system.dir, 'dist', 'main.js'), 'run', '--config', config], telemetryEnv);
  const port = await firstLine(c, (line) => {
    try {
      const j = JSON.parse(line);
      return j.msg === 'portcullis started' && typeof j.port === 'number' ? j.port : undefined;
    } catch {
      return undefined;
    }
  });
  return { child: c, port };
}

function wrk(port) {
  const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${values.connections}`, `-d${values.duration}s`, `http://127.0.0.1:${port}/`]).toString();
  const m = /(\d+) requests in/.exec(out);
  if (!m) throw new Error(`wrk: ${out}`);
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return { requests: Number(m[1]), non2xx: errs ? Number(errs[1]) : 0 };
}

const all = [{ name: 'floor', dir: '' }, ...systems];
const results = new Map(all.map((s) => [s.name, []]));
for (let round = 0; round < Number(values.rounds); round++) {
  const order = all.map((_, i) => all[(i + round) % all.length]);
  for (const s of order) {
    const { child, port } = await launch(s);
    // Warm up (JIT, pool sockets), then measure.
    execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${values.connections}`, '-d1s', `http://127.0.0.1:${port}/`]);
    const before = cpuTicks(child.pid);
    const { requests, non2xx } = wrk(port);
    const us = ((cpuTicks(child.pid) - before) / TICK / requests) * 1e6;
    results.get(s.name).push(us);
    process.stderr.write(`round ${round + 1} ${s.name}: ${us.toFixed(1)} µs/request, ${requests} requests${non2xx ? `, ${non2xx} non-2xx` : ''}\n`);
    await stop(child);
  }
}
await stop(app);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const floor = median(results.get('floor'));
console.log(`| system | CPU µs/request (median of ${values.rounds}) | × floor |`);
console.log('| --- | ---: | ---: |');
for (const s of all) {
  const m = median(results.get(s.name));
  console.log(`| ${s.name} | ${m.toFixed(1)} | ${(m / floor).toFixed(2)} |`);
}
