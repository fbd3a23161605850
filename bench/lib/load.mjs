// The load generators: wrk (closed loop, keep-alive connections) and vegeta (open loop at a
// constant rate). Both run as children pinned to the load CPU and return the same shape: counts
// by class of status, per-second rates and latency percentiles in milliseconds. `vegetaLog`
// also keeps vegeta's per-request results, to slice by time (scenario 6).
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { run } from './procs.mjs';
import { summarize } from './stats.mjs';
import { requestLog } from './open-loop.mjs';

/**
 * wrk with one thread and `connections` keep-alive connections for `durationS`. wrk counts
 * statuses >= 400 as "status errors"; with it we cannot tell a 503 from a 502, so the
 * scenarios that need that distinction use vegeta.
 */
export async function wrk(ctx, url, { connections, durationS, script = 'report.lua', env = {}, timeoutS = 5 }) {
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${Math.max(1, Math.round(durationS))}s`,
    `--timeout`,
    `${timeoutS}s`,
    '-s',
    join(ctx.benchDir, 'wrk', script),
    url,
  ];
  const { stdout } = await run(ctx.tools.wrk, args, { cpu: ctx.cpuLoad, env, timeoutMs: (durationS + timeoutS + 30) * 1000 });
  const line = stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (!line) throw new Error(`wrk printed no report:\n${stdout.slice(-2000)}`);
  const r = JSON.parse(line.slice('WRKJSON '.length));
  const seconds = r.duration_us / 1e6;
  const socketErrors = r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
  return {
    tool: 'wrk',
    connections,
    seconds,
    requests: r.requests,
    ok: r.requests - r.errors.status,
    rejected: r.errors.status, // every status >= 400; the scenarios using it expect only 503s
    errors: socketErrors,
    errorDetail: r.errors,
    rps: r.requests / seconds,
    okPerS: (r.requests - r.errors.status) / seconds,
    rejectsPerS: r.errors.status / seconds,
    errorsPerS: socketErrors / seconds,
    bytesIn: r.bytes,
    mbInPerS: r.bytes / seconds / 1e6,
    latencyMs: {
      p50: r.latency_us.p50 / 1000,
      p99: r.latency_us.p99 / 1000,
      p999: r.latency_us.p999 / 1000,
      max: r.latency_us.max / 1000,
    },
  };
}

/**
 * vegeta at a constant `rate` (requests/s, open loop) for `durationS`. `maxWorkers` bounds the
 * requests it keeps open at once (so an app that stops answering cannot make it open unbounded
 * connections); when it is reached the rate actually sent falls below the one asked for, which
 * `sentPerS` shows. `timeoutS` is the client's deadline: later answers count as errors.
 */
export async function vegeta(ctx, url, options) {
  const records = await vegetaAttack(ctx, url, options);
  return vegetaSummary(records, options.durationS, options.rate);
}

/**
 * The same attack, with its per-request results kept as a request log (bench/lib/open-loop.mjs)
 * that can be sliced by time: `startedAt` is `t0` (ms since the epoch), so windows line up with
 * other clocks read during the run (the scenario's phase switches, /stats samples).
 */
export async function vegetaLog(ctx, url, options, t0) {
  const records = await vegetaAttack(ctx, url, options);
  const n = records.length;
  const start = new Float64Array(n);
  const latency = new Float64Array(n);
  const status = new Int16Array(n);
  records.forEach((r, i) => {
    start[i] = Date.parse(r.timestamp) - t0;
    latency[i] = r.latency / 1e6;
    status[i] = r.code;
  });
  const errors = {};
  for (const r of records) if (r.code === 0) errors[classify(r.error)] = (errors[classify(r.error)] ?? 0) + 1;
  return {
    summary: vegetaSummary(records, options.durationS, options.rate),
    log: requestLog({ startedAt: t0, start, latency, status, rate: options.rate, durationMs: options.durationS * 1000, notSent: 0, errors }),
  };
}

/** Runs `vegeta attack` and returns its results, one object per request (from `vegeta encode`). */
async function vegetaAttack(ctx, url, { rate, durationS, timeoutS = 5, maxWorkers = 1024, workers = 16 }) {
  const stamp = process.hrtime.bigint();
  const out = join(ctx.tmp, `vegeta-${stamp}.bin`);
  const json = join(ctx.tmp, `vegeta-${stamp}.json`);
  try {
    await run(
      ctx.tools.vegeta,
      [
        'attack',
        `-rate=${Math.round(rate)}/1s`,
        `-duration=${fmtDuration(durationS)}`,
        `-timeout=${fmtDuration(timeoutS)}`,
        `-workers=${workers}`,
        `-max-workers=${maxWorkers}`,
        '-keepalive=true',
        `-output=${out}`,
      ],
      { cpu: ctx.cpuLoad, input: `GET ${url}\n`, timeoutMs: (durationS + timeoutS + 30) * 1000 },
    );
    // To a file: a long run's JSON lines are tens of MB.
    await run(ctx.tools.vegeta, ['encode', '-to', 'json', '-output', json, out], { cpu: ctx.cpuLoad });
    const records = [];
    for (const line of readFileSync(json, 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line);
      records.push({ code: r.code, timestamp: r.timestamp, latency: r.latency, error: r.error, bytes_in: r.bytes_in });
    }
    return records;
  } finally {
    rmSync(out, { force: true });
    rmSync(json, { force: true });
  }
}

function vegetaSummary(records, durationS, rate) {
  let requests = 0;
  let ok = 0;
  let rejected = 0;
  let errors = 0;
  let other = 0;
  let bytesIn = 0;
  const okLatency = [];
  const allLatency = [];
  const errorKinds = {};
  for (const r of records) {
    requests++;
    bytesIn += r.bytes_in;
    const ms = r.latency / 1e6;
    allLatency.push(ms);
    if (r.code >= 200 && r.code < 300) {
      ok++;
      okLatency.push(ms);
    } else if (r.code === 503 || r.code === 429) rejected++;
    else if (r.code === 0) {
      errors++;
      const kind = classify(r.error);
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    } else other++;
  }
  return {
    tool: 'vegeta',
    rate,
    seconds: durationS,
    requests,
    ok,
    rejected,
    errors,
    otherStatus: other,
    errorDetail: errorKinds,
    rps: requests / durationS,
    sentPerS: requests / durationS,
    okPerS: ok / durationS,
    rejectsPerS: rejected / durationS,
    errorsPerS: errors / durationS,
    bytesIn,
    mbInPerS: bytesIn / durationS / 1e6,
    latencyMs: summarize(allLatency),
    okLatencyMs: summarize(okLatency),
  };
}

function classify(error) {
  if (/timeout|deadline/i.test(error)) return 'timeout';
  if (/refused/i.test(error)) return 'refused';
  if (/reset/i.test(error)) return 'reset';
  if (/EOF/i.test(error)) return 'eof';
  return error.slice(0, 60) || 'unknown';
}

/** vegeta takes 1500ms / 5s; seconds with a fraction become milliseconds. (wrk takes whole seconds.) */
export function fmtDuration(seconds) {
  return Number.isInteger(seconds) ? `${seconds}s` : `${Math.round(seconds * 1000)}ms`;
}

