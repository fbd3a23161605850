// The benchmark harness (`npm run bench`, which runs bench/run.sh: install, build, then this).
// It starts one upstream app (bench/app.mjs; a part may bring its own, as scenario 6 does), then
// for each scenario part starts every system under test configured from the same profile, and
// runs the part's loads in rounds with the systems interleaved (A B C D E A B C D E ...). Every
// run records the load generator's numbers, the proxy's CPU time and peak RSS from /proc, and the
// app's own counters; medians across rounds go to bench/results/<date>-<name>.{json,md,svg} and
// the tables are printed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, USAGE } from './lib/options.mjs';
import { ADAPTIVE_ONLY, FORWARD_ONLY, SYSTEMS, startSystem } from './lib/systems.mjs';
import { start, stop, stopAll, killAllNow, waitFor, fatal, findLogLine, measure, sleep, startedPids } from './lib/procs.mjs';
import { getJson } from './lib/http.mjs';
import { wrk } from './lib/load.mjs';
import { median } from './lib/stats.mjs';
import { markdown, table } from './lib/report.mjs';
import { chartSvg } from './lib/chart.mjs';
import { startOtlpSink } from './lib/otlp-sink.mjs';
import { evaluateTargets } from './lib/targets.mjs';
import passthrough from './scenarios/passthrough.mjs';
import fixedRate from './scenarios/fixed-rate.mjs';
import overload from './scenarios/overload.mjs';
import reject from './scenarios/reject.mjs';
import telemetry from './scenarios/telemetry.mjs';
import capacity from './scenarios/capacity.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const SCENARIOS = [passthrough, fixedRate, overload, reject, telemetry, capacity];
const MiB = 1024 * 1024;

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const systems = opts.systems ?? SYSTEMS;
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`--systems: unknown system ${s} (one of ${SYSTEMS.join(', ')})`);
  const scenarios = SCENARIOS.filter((s) => opts.scenarios.includes(s.id));

  const tools = findTools(systems);
  const machineInfo = machine(); // before pinning narrows what this process sees
  const pinning = choosePinning(opts);
  if (pinning.enabled) pinSelf(pinning.load);
  const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-bench-'));
  const nofile = openFilesLimit();
  log(`temp dir ${tmp}; open files limit ${nofile}; ${pinning.enabled ? `proxy on CPU ${pinning.proxy}, app + load on CPU ${pinning.load}` : `no pinning (${pinning.why})`}`);
  if (opts.floodSockets + 200 > nofile && opts.scenarios.includes(4)) {
    log(`--flood-sockets ${opts.floodSockets} is close to the open files limit ${nofile}; lowering it`);
    opts.floodSockets = Math.max(100, nofile - 1000);
  }

  const ctx = {
    root: ROOT,
    benchDir: BENCH,
    tmp,
    tools,
    nofile,
    cpuProxy: pinning.enabled ? pinning.proxy : undefined,
    cpuLoad: pinning.enabled ? pinning.load : undefined,
    app: undefined,
    otlp: undefined,
    scenarioId: '',
    part: undefined,
    profile: undefined,
    /** URL of `path` on a system, through the part's path mapping (direct answers 503 itself in 4a). */
    url(sys, path) {
      const p = this.part?.pathFor ? this.part.pathFor(sys, path) : path;
      return `http://127.0.0.1:${sys.port}${p}`;
    },
  };

  const startedAt = new Date();
  const result = {
    name: opts.name,
    date: localDate(startedAt),
    startedAt: startedAt.toISOString(),
    machine: machineInfo,
    versions: versions(tools),
    options: { ...opts, systems },
    pinning,
    // portcullis runs with its telemetry defaults unless a scenario says otherwise; record what
    // the environment set.
    otelEnv: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('OTEL_'))),
    systems,
    parts: [],
    pending: SCENARIOS.filter((s) => s.pending && opts.scenarios.includes(s.id)).map((s) => ({ id: s.id, title: s.title, note: s.pending })),
    anomalies: [],
  };
  for (const p of result.pending) log(`scenario ${p.id} (${p.title}) skipped: ${p.note}`);

  ctx.otlp = await startOtlpSink();
  ctx.app = await startApp(ctx);
  log(`app on 127.0.0.1:${ctx.app.port} (pid ${ctx.app.pid})`);

  for (const scenario of scenarios) {
    for (const part of scenario.parts) {
      result.parts.push(await runPart(ctx, opts, systems, scenario, part, result.anomalies));
    }
  }
  await stop(ctx.app.child);
  await stopAll();
  await ctx.otlp.close();
  result.childPids = [...startedPids];
  result.targets = evaluateTargets(result);
  result.machine.loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  result.finishedAt = new Date().toISOString();

  const outDir = resolve(opts.out ?? join(BENCH, 'results'));
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${result.date}-${opts.name}`);
  result.files = { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg` };
  writeFileSync(result.files.md, markdown(result) + '\n');
  try {
    writeFileSync(result.files.svg, await chartSvg(result));
  } catch (err) {
    result.files.svg = undefined;
    result.chartError = String(err?.stack ?? err);
    log(`chart failed: ${err}`);
  }
  writeFileSync(result.files.json, JSON.stringify(result, null, 2) + '\n');
  rmSync(tmp, { recursive: true, force: true });

  process.stdout.write(markdown(result) + '\n');
  log(`wrote ${[result.files.json, result.files.md, result.files.svg].filter(Boolean).map((f) => relative(process.cwd(), f)).join(', ')}`);
  return 0;
}

/** One scenario part: start the systems, warm them up, run rounds x loads x systems, stop them. */
async function runPart(ctx, opts, allSystems, scenario, part, anomalies) {
  // A part that exercises limits leaves out the systems that only forward; the adaptive
  // variants run only where a part says so.
  const wanted = allSystems.filter((s) => (!part.limits || !FORWARD_ONLY.includes(s)) && (part.adaptive || !ADAPTIVE_ONLY.includes(s)));
  const profile = part.profile(opts);
  const loads = part.loads(opts);
  ctx.scenarioId = part.key;
  ctx.part = part;
  ctx.profile = profile;
  log(`scenario ${part.title}: profile ${JSON.stringify(profile)}`);
  const running = new Map();
  const runs = [];
  /** Systems a part could not run (a config key this build does not know yet), and why. */
  const skipped = [];
  // A part with its own app (scenario 6) runs against it; the systems forward to it.
  const sharedApp = ctx.app;
  if (part.app) {
    ctx.app = await part.app.start(ctx, opts);
    log(`${part.key}: its own app on 127.0.0.1:${ctx.app.port} (pid ${ctx.app.pid})`);
  }
  let systems = wanted;
  try {
    for (const name of wanted) {
      if (stopping) throw new Error('interrupted');
      try {
        running.set(name, await startSystem(name, ctx, profile));
      } catch (err) {
        if (!err?.skip) throw err;
        log(err.message);
        skipped.push({ system: name, why: err.skip });
      }
    }
    systems = wanted.filter((s) => running.has(s));
    if (part.warmup !== false && opts.warmupS > 0) {
      for (const sys of running.values()) {
        await wrk(ctx, ctx.url(sys, '/'), { connections: 16, durationS: opts.warmupS }).catch((err) => log(`warm-up of ${sys.name} failed: ${err.message}`));
      }
    }
    for (let round = 1; round <= opts.rounds; round++) {
      for (const load of loads) {
        for (const name of systems) {
          if (stopping) throw new Error('interrupted');
          if (load.only && !load.only.includes(name)) continue;
          const sys = running.get(name);
          const rec = { part: part.key, load: load.key, system: name, round };
          if (sys.dead) {
            runs.push({ ...rec, error: sys.dead });
            continue;
          }
          const r = await oneRun(ctx, part, load, sys).catch((err) => ({ error: String(err?.message ?? err) }));
          runs.push({ ...rec, ...r });
          if (r.error) anomalies.push({ ...rec, what: `run failed: ${r.error.slice(0, 500)}` });
          for (const a of r.anomalies ?? []) anomalies.push({ ...rec, what: a });
          if (sys.exitCode?.() !== null && sys.exitCode?.() !== undefined) {
            sys.dead = `${name} exited ${sys.exitCode()} (log ${sys.log})`;
            anomalies.push({ ...rec, what: sys.dead });
          }
          log(progress(part, load, name, round, opts.rounds, r));
          if (part.quiesce) await quiesce(ctx, anomalies, rec);
          else await sleep(200);
        }
      }
    }
  } finally {
    for (const sys of running.values()) await sys.stop();
    if (part.app) {
      await ctx.app.stop();
      ctx.app = sharedApp;
    }
  }
  const logs = {};
  for (const sys of running.values()) {
    const lines = notableLogLines(sys.logs ?? []);
    if (lines.total > 0) logs[sys.name] = lines;
  }
  const otlp = ctx.otlp.take();
  const summary = [];
  loads.forEach((load, loadIndex) => {
    for (const system of systems) {
      if (load.only && !load.only.includes(system)) continue;
      const mine = runs.filter((r) => r.load === load.key && r.system === system);
      const row = { load: load.key, loadLabel: load.label, chartLabel: load.chartLabel, loadIndex, system, rounds: mine.filter((r) => !r.error).length };
      const keys = new Set(mine.flatMap((r) => Object.keys(r)));
      for (const k of keys) {
        if (['part', 'load', 'system', 'round'].includes(k)) continue;
        const vals = mine.map((r) => r[k]);
        if (vals.some((v) => typeof v === 'number')) row[k] = median(vals);
      }
      if (mine.some((r) => r.error)) row.error = mine.find((r) => r.error).error;
      summary.push(row);
    }
  });
  part.derive?.(summary, runs, { median }, opts);
  const note = typeof part.note === 'function' ? part.note(opts) : part.note;
  const out = {
    scenario: scenario.id,
    key: part.key,
    title: part.title,
    // The systems this part ran (a part with limits leaves out the forward-only ones).
    systems,
    skipped,
    note,
    profile,
    loads: loads.map(({ key, label, only }) => ({ key, label, only })),
    columns: part.columns,
    runs,
    summary,
    // Warnings and errors the proxies logged during the part, and what portcullis exported.
    logs,
    otlpExports: otlp,
  };
  process.stderr.write('\n' + table(out) + '\n\n');
  return out;
}

/** One measured run of one load against one system. */
async function oneRun(ctx, part, load, sys) {
  const anomalies = [];
  const adminBefore = await sys.adminStats();
  // Overload runs compare the app's memory, so they start from a collected heap.
  await ctx.app.stats({ reset: true, gc: part.quiesce });
  const proxy = measure(() => sys.pids());
  const app = measure(() => [ctx.app.pid]);
  const r = await load.run(ctx, sys);
  const p = proxy.end();
  const a = app.end();
  // An app that has just collapsed (direct, overload) can take a while to answer.
  const appStats = await ctx.app.stats();
  const out = {
    requests: r.requests,
    seconds: r.seconds,
    rps: r.rps,
    okPerS: r.okPerS,
    rejectsPerS: r.rejectsPerS,
    errorsPerS: r.errorsPerS,
    failPerS: r.rps !== undefined && r.okPerS !== undefined ? r.rps - r.okPerS : undefined,
    p50: r.latencyMs?.p50,
    p99: r.latencyMs?.p99,
    p999: r.latencyMs?.p999,
    maxMs: r.latencyMs?.max,
    // wrk cannot split latency by status; when every answer was a 2xx it is the same thing.
    okP50: r.okLatencyMs?.p50 ?? (r.requests > 0 && r.ok === r.requests ? r.latencyMs?.p50 : undefined),
    okP99: r.okLatencyMs?.p99 ?? (r.requests > 0 && r.ok === r.requests ? r.latencyMs?.p99 : undefined),
    okP999: r.okLatencyMs?.p999 ?? (r.requests > 0 && r.ok === r.requests ? r.latencyMs?.p999 : undefined),
    mbPerS: r.mbPerS,
    errorDetail: r.errorDetail,
    otherStatus: r.otherStatus,
    appPeak: appStats.peak,
    appServed: appStats.served,
    appRssPeakMiB: Math.max(a.rssPeakBytes, appStats.hwmBytes) / MiB,
    appCpuUsPerReq: r.requests ? (a.cpuSeconds * 1e6) / r.requests : undefined,
  };
  if (sys.pids().length > 0 || sys.name !== 'direct') {
    out.cpuSeconds = p.cpuSeconds;
    out.cpuUsPerReq = r.requests ? (p.cpuSeconds * 1e6) / r.requests : undefined;
    out.rssPeakMiB = p.rssPeakBytes / MiB;
    out.rssStartMiB = p.rssStartBytes / MiB;
    out.rssEndMiB = p.rssEndBytes / MiB;
    out.rssGrowthPct = p.rssStartBytes > 0 ? (100 * (p.rssPeakBytes - p.rssStartBytes)) / p.rssStartBytes : undefined;
    out.rssPeakSource = p.rssPeakSource;
  }
  for (const [k, v] of Object.entries(r)) {
    if (!(k in out) && !['latencyMs', 'okLatencyMs', 'errors', 'ok', 'rejected'].includes(k)) out[k] = v;
  }
  if (adminBefore !== undefined) {
    // portcullis: what it decided during the run, and whether it settles back to zero after.
    const after = await settled(sys);
    out.portcullis = {
      admitted: after.totals.admitted - adminBefore.totals.admitted,
      rejected: after.totals.rejected - adminBefore.totals.rejected,
      byReason: diff(after.totals.byReason, adminBefore.totals.byReason),
      globalPeak: after.limiters?.find?.((l) => l.name === 'global')?.peak,
      connectionsPeak: after.connections.peak,
      openAfter: after.connections.open,
      inflightAfter: inflightOf(after),
      activeAfter: after.active,
    };
    if (after.connections.open !== 0 || inflightOf(after) !== 0 || (after.active ?? 0) !== 0) {
      anomalies.push(
        `portcullis did not settle 5 s after the load stopped: connections.open ${after.connections.open}, inflight ${inflightOf(after)}, active ${after.active}`,
      );
    }
    // Invariant 1 of DESIGN.md, seen from outside: the global limiter never above its max (an
    // adaptive limit's ceiling).
    const cap = sys.cap ?? ctx.profile.cap;
    if (out.portcullis.globalPeak !== undefined && out.portcullis.globalPeak > cap) {
      anomalies.push(`global limiter peak ${out.portcullis.globalPeak} above the cap ${cap}`);
    }
  }
  if (r.otherStatus) anomalies.push(`${r.otherStatus} answers with a status other than 2xx/429/503`);
  if (r.errors && r.tool === 'wrk' && r.errors > 0) anomalies.push(`wrk socket errors ${JSON.stringify(r.errorDetail)}`);
  out.anomalies = anomalies;
  return out;
}

/** Lines at warn level or worse from the proxies' logs (JSON lines, nginx's and HAProxy's text). */
function notableLogLines(files) {
  const lines = [];
  for (const f of files) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      // portcullis's own reject lines are its normal work here, not a problem.
      if (/"level":"(warn|error)"|\[(warn|error|crit|alert|emerg)\]|\[(WARNING|ALERT)\]/.test(line) && !/second signal|"reason":"draining"|"msg":"reject"/.test(line)) {
        lines.push(line.slice(0, 400));
      }
    }
  }
  return { total: lines.length, first: lines.slice(0, 20) };
}

function inflightOf(stats) {
  const ls = Array.isArray(stats.limiters) ? stats.limiters : Object.values(stats.limiters ?? {});
  return ls.reduce((s, l) => s + (l.inflight ?? 0) + (l.queued ?? 0), 0);
}

function diff(a = {}, b = {}) {
  const o = {};
  for (const k of Object.keys(a)) if (a[k] - (b[k] ?? 0) !== 0) o[k] = a[k] - (b[k] ?? 0);
  return o;
}

/** Admin /stats once nothing is open or in flight any more (or after 5 s, as it is then). */
async function settled(sys) {
  let last;
  try {
    await waitFor(
      `${sys.name} to settle`,
      async () => {
        last = await sys.adminStats();
        return last && last.connections.open === 0 && inflightOf(last) === 0 && (last.active ?? 0) === 0;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
  } catch {
    /* reported by the caller from `last` */
  }
  return last ?? (await sys.adminStats());
}

/** Overload runs leave slow requests in the app; the next run starts when they are gone. */
async function quiesce(ctx, anomalies, rec) {
  try {
    await waitFor('the app to finish the last run', async () => (await ctx.app.stats()).inflight === 0, {
      timeoutMs: 35_000,
      intervalMs: 100,
    });
  } catch (err) {
    anomalies.push({ ...rec, what: `app still busy 35 s after the run: ${err.message}` });
  }
  await sleep(300);
}

function progress(part, load, name, round, rounds, r) {
  if (r.error) return `${part.key} ${load.key} ${round}/${rounds} ${name}: ERROR ${r.error.slice(0, 300)}`;
  const bits = [
    `${Math.round(r.rps ?? 0).toLocaleString('en-US')} req/s`,
    r.okPerS !== r.rps ? `2xx ${Math.round(r.okPerS ?? 0)}/s` : undefined,
    r.rejectsPerS ? `rej ${Math.round(r.rejectsPerS)}/s` : undefined,
    r.errorsPerS ? `err ${Math.round(r.errorsPerS)}/s` : undefined,
    r.p99 !== undefined ? `p99 ${r.p99.toFixed(2)} ms` : undefined,
    r.cpuUsPerReq !== undefined && r.tool !== 'flood' ? `cpu ${r.cpuUsPerReq.toFixed(1)} µs/req` : undefined,
    r.rssPeakMiB !== undefined ? `rss ${r.rssPeakMiB.toFixed(0)} MiB` : undefined,
    r.appPeak ? `app peak ${r.appPeak}` : undefined,
    r.recoveryMs !== undefined ? `recovery ${r.recoveryMs} ms` : undefined,
  ].filter(Boolean);
  return `${part.key} ${load.key} ${round}/${rounds} ${name}: ${bits.join(', ')}`;
}

// ---------------------------------------------------------------------------------------------
// setup

async function startApp(ctx) {
  const logFile = join(ctx.tmp, 'app.log');
  const child = start('app', process.execPath, ['--expose-gc', join(BENCH, 'app.mjs')], {
    cpu: ctx.cpuLoad,
    logFile,
    env: { BENCH_APP_PORT: '0', MALLOC_MMAP_THRESHOLD_: '131072' },
  });
  const started = await waitFor('the bench app to start', () => {
    if (child.exitCode !== null) throw fatal(`bench app exited ${child.exitCode}: ${readFileSync(logFile, 'utf8').slice(-1000)}`);
    return findLogLine(logFile, 'bench app started');
  });
  const stats = `http://127.0.0.1:${started.port}/__bench/stats`;
  return {
    child,
    pid: child.pid,
    port: started.port,
    /** {inflight, peak, served, rssBytes, hwmBytes}; `reset` zeroes the counters, `gc` frees the last run's memory. */
    stats: ({ reset = false, gc = false } = {}) => getJson(`${stats}${reset ? `?reset=1${gc ? '&gc=1' : ''}` : ''}`, 10_000),
    stop: () => stop(child),
  };
}

function findTools(systems) {
  const which = (name, extra = []) => {
    for (const p of [...extra, ...(process.env.PATH ?? '').split(':').map((d) => join(d, name))]) if (existsSync(p)) return p;
    return undefined;
  };
  const tools = {
    root: ROOT,
    wrk: which('wrk'),
    vegeta: which('vegeta', [join(ROOT, '.tools', 'bin', 'vegeta')]),
    nginx: which('nginx', ['/usr/sbin/nginx']),
    haproxy: which('haproxy', ['/usr/sbin/haproxy']),
  };
  const need = ['wrk', 'vegeta', ...systems.filter((s) => s === 'nginx' || s === 'haproxy')];
  const missing = need.filter((t) => !tools[t]);
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run bench/install.sh (npm run bench does)`);
  if (systems.some((s) => s.startsWith('portcullis')) && !existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: npm run build');
  return tools;
}

function choosePinning(opts) {
  if (!opts.pin) return { enabled: false, why: '--no-pin' };
  const cpus = os.availableParallelism?.() ?? os.cpus().length;
  if (cpus < 2) return { enabled: false, why: `only ${cpus} CPU` };
  if (spawnSync('taskset', ['-V']).status !== 0) return { enabled: false, why: 'no taskset' };
  return { enabled: true, proxy: 0, load: 1 };
}

/** The harness itself (sampling, probes) runs beside the app and the load generator. */
function pinSelf(cpu) {
  spawnSync('taskset', ['-pc', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

function openFilesLimit() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : 1024;
  } catch {
    return 1024;
  }
}

function machine() {
  const cpuModel = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
    } catch {
      return os.cpus()[0]?.model ?? 'unknown CPU';
    }
  })();
  return {
    hostname: os.hostname(),
    cpuModel,
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    loadavgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function versions(tools) {
  const first = (cmd, args, re) => {
    if (!cmd) return 'absent';
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
    return re.exec(text)?.[1] ?? 'unknown';
  };
  let portcullis = 'unknown';
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    portcullis = `${pkg.version} (${commit}${dirty ? ', src modified' : ''})`;
  } catch {
    /* not a git checkout */
  }
  let vegeta = 'unknown';
  try {
    vegeta = readFileSync(join(ROOT, '.tools', 'vegeta.version'), 'utf8').trim();
  } catch {
    /* installed another way */
  }
  return {
    portcullis,
    node: process.version,
    deno: first(join(ROOT, 'node_modules', 'deno', 'deno'), ['--version'], /deno (\S+)/),
    nginx: first(tools.nginx, ['-v'], /nginx\/(\S+)/),
    haproxy: first(tools.haproxy, ['-v'], /version (\S+)/),
    wrk: first(tools.wrk, ['-v'], /wrk (\S+)/),
    vegeta,
  };
}

function localDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

// ---------------------------------------------------------------------------------------------
// every child ends with the harness: normal end, Ctrl-C, errors

let stopping = false;
async function abort(code, why) {
  if (stopping) return;
  stopping = true;
  log(`${why}: stopping every child process`);
  await stopAll();
  process.exit(code);
}
process.on('SIGINT', () => void abort(130, 'interrupted'));
process.on('SIGTERM', () => void abort(143, 'terminated'));
process.on('exit', killAllNow);

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (err) => {
    log(`failed: ${err?.stack ?? err}`);
    await stopAll();
    process.exit(1);
  },
);
