// An open-loop load generator in-process (tests, and the benchmark's analysis of vegeta runs):
// requests are sent on a schedule of time (request i at i / rate seconds), whatever the answers
// do, so a slow server shows up as latency and as requests open at once, never as a slower
// sender. When the event loop lags, the overdue requests go out in one batch. The count is
// bounded (rate × duration) and so is the number open at once (`maxInflight`: past it a due
// request is counted as not sent instead of opening yet another connection).
//
// Every request is recorded (send time, latency, status; 0 for an error or a timeout, -1 for not
// sent), and the result slices that log by time window: counts by class of status, goodput (2xx
// per second), p50/p99 of the 2xx latency. `requestLog()` builds the same object from other
// records (vegeta's, in the benchmark); `sampleJson()` polls a JSON endpoint on a timer (the
// sidecar's /stats, for its limit over time).
import { Pool } from 'undici';
import { get } from './http.mjs';
import { percentile } from './stats.mjs';

export const NOT_SENT = -1;

/** Milliseconds since the epoch, with the monotonic clock's resolution. */
export const nowMs = () => performance.timeOrigin + performance.now();

/**
 * @param {{url: string, rate: number, durationMs: number, timeoutMs?: number, maxInflight?: number,
 *   tickMs?: number, onTick?: (t: {elapsedMs: number, sent: number, inflight: number, notSent: number}) => void}} options
 */
export async function openLoop(options) {
  const { url, rate, durationMs, timeoutMs = 2000, maxInflight = 4096, tickMs = 100, onTick } = options;
  if (!(rate > 0) || !(durationMs > 0)) throw new RangeError(`openLoop: rate and durationMs must be > 0, got ${rate} and ${durationMs}`);
  const target = new URL(url);
  const path = target.pathname + target.search;
  const total = Math.max(1, Math.floor((rate * durationMs) / 1000));
  const intervalMs = 1000 / rate;
  const start = new Float64Array(total);
  const latency = new Float64Array(total);
  const status = new Int16Array(total);
  const pool = new Pool(target.origin, {
    connections: maxInflight,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    // The per-request deadline below aborts first; these are backstops.
    headersTimeout: timeoutMs + 5000,
    bodyTimeout: timeoutMs + 5000,
    connect: { timeout: Math.min(timeoutMs, 10_000) },
  });

  const t0 = nowMs();
  let next = 0; // index of the next request to send
  let inflight = 0;
  let notSent = 0;
  const errors = /** @type {Record<string, number>} */ ({});
  /** Open requests in send order: deadlines are send + timeoutMs, so the oldest expires first. */
  /** @type {{i: number, ac: AbortController, done: boolean}[]} */
  const open = [];
  let openHead = 0;
  let allDone = () => {};
  const finished = new Promise((r) => (allDone = r));

  const send = (i) => {
    const sentAt = nowMs();
    start[i] = sentAt - t0;
    const entry = { i, ac: new AbortController(), done: false };
    open.push(entry);
    inflight++;
    pool
      .request({ path, method: 'GET', signal: entry.ac.signal })
      .then(async (res) => {
        await res.body.dump({ limit: 1 << 20 });
        return res.statusCode;
      })
      .then(
        (code) => code,
        (err) => {
          const kind = entry.ac.signal.aborted ? 'timeout' : errorKind(err);
          errors[kind] = (errors[kind] ?? 0) + 1;
          return 0;
        },
      )
      .then((code) => {
        latency[i] = nowMs() - sentAt;
        status[i] = code;
        entry.done = true;
        inflight--;
        if (next >= total && inflight === 0) allDone();
      });
  };

  const expire = (now) => {
    while (openHead < open.length) {
      const e = /** @type {(typeof open)[number]} */ (open[openHead]);
      if (!e.done && t0 + start[e.i] + timeoutMs > now) break;
      if (!e.done) e.ac.abort();
      open[openHead++] = /** @type {any} */ (undefined);
    }
    if (openHead > 4096 && openHead * 2 > open.length) {
      open.splice(0, openHead);
      openHead = 0;
    }
  };

  let lastTick = 0;
  await new Promise((resolve) => {
    const step = () => {
      const now = nowMs();
      const elapsed = now - t0;
      // Everything due by now goes out (a batch when the loop was late).
      while (next < total && next * intervalMs <= elapsed) {
        if (inflight >= maxInflight) {
          status[next] = NOT_SENT;
          start[next] = elapsed;
          notSent++;
        } else send(next);
        next++;
      }
      expire(now);
      if (onTick && elapsed - lastTick >= tickMs) {
        lastTick = elapsed;
        onTick({ elapsedMs: elapsed, sent: next - notSent, inflight, notSent });
      }
      if (next >= total) return resolve(undefined);
      setTimeout(step, Math.max(0, next * intervalMs - (nowMs() - t0)));
    };
    step();
  });
  // The last ones are answered or time out.
  const sweeper = setInterval(() => expire(nowMs()), 20);
  if (inflight > 0) await finished;
  clearInterval(sweeper);
  await pool.close().catch(() => pool.destroy());
  return requestLog({ startedAt: t0, start, latency, status, rate, durationMs, notSent, errors });
}

/**
 * The slicing helpers over a request log. `start` (ms since `startedAt`), `latency` (ms) and
 * `status` (HTTP status, 0 error or timeout, -1 not sent) are parallel arrays.
 * @param {{startedAt: number, start: ArrayLike<number>, latency: ArrayLike<number>, status: ArrayLike<number>, rate?: number, durationMs?: number, notSent?: number, errors?: Record<string, number>}} log
 */
export function requestLog(log) {
  const { startedAt, start, latency, status } = log;
  const n = status.length;
  /**
   * Requests sent in [fromMs, toMs) (ms since startedAt; `by: 'end'` counts those answered in
   * it instead). Goodput and the rates are per second of the window.
   * @param {number} fromMs @param {number} toMs @param {{by?: 'start' | 'end'}} [opts]
   */
  const window = (fromMs, toMs, { by = 'start' } = {}) => {
    const c = { sent: 0, ok: 0, rejected: 0, errors: 0, otherStatus: 0, notSent: 0, s4xx: 0, s5xx: 0 };
    const okLatency = [];
    for (let i = 0; i < n; i++) {
      const s = /** @type {number} */ (status[i]);
      const t = by === 'end' && s !== NOT_SENT ? /** @type {number} */ (start[i]) + /** @type {number} */ (latency[i]) : /** @type {number} */ (start[i]);
      if (t < fromMs || t >= toMs) continue;
      if (s === NOT_SENT) {
        c.notSent++;
        continue;
      }
      c.sent++;
      if (s >= 200 && s < 300) {
        c.ok++;
        okLatency.push(/** @type {number} */ (latency[i]));
      } else if (s === 0) c.errors++;
      else {
        if (s === 503 || s === 429) c.rejected++;
        else c.otherStatus++;
        if (s >= 500) c.s5xx++;
        else if (s >= 400) c.s4xx++;
      }
    }
    const seconds = (toMs - fromMs) / 1000;
    const sorted = Float64Array.from(okLatency).sort();
    return {
      fromMs,
      toMs,
      ...c,
      sentPerS: c.sent / seconds,
      okPerS: c.ok / seconds,
      rejectsPerS: c.rejected / seconds,
      errorsPerS: c.errors / seconds,
      rejectPct: c.sent > 0 ? (100 * c.rejected) / c.sent : 0,
      okP50: percentile(sorted, 50),
      okP99: percentile(sorted, 99),
      okMax: sorted.length ? sorted[sorted.length - 1] : undefined,
    };
  };
  let endMs = 0;
  for (let i = 0; i < n; i++) endMs = Math.max(endMs, /** @type {number} */ (start[i]));
  return {
    startedAt,
    rate: log.rate,
    durationMs: log.durationMs ?? endMs,
    count: n,
    notSent: log.notSent ?? Array.prototype.filter.call(status, (s) => s === NOT_SENT).length,
    errorKinds: log.errors ?? {},
    records: { start, latency, status },
    window,
    /** The whole run (also what a lagging loop sent after its scheduled end). */
    total: () => window(0, Math.max(log.durationMs ?? 0, endMs + 1e-6)),
    /** Consecutive windows of `stepMs` over [fromMs, toMs) (default: the whole run). */
    windows: (stepMs, fromMs = 0, toMs = log.durationMs ?? endMs, opts = {}) => {
      const out = [];
      for (let t = fromMs; t < toMs - 1e-9; t += stepMs) out.push(window(t, Math.min(toMs, t + stepMs), opts));
      return out;
    },
  };
}

/**
 * Polls `url` (JSON) every `everyMs` for `durationMs` (or until `stop()`), keeping
 * `pick(json)` with the time of the answer (ms since the epoch). A poll still pending when the
 * next is due is not doubled; failed polls count in `failures`.
 * @template T
 * @param {{url: string, everyMs: number, durationMs: number, pick: (json: any) => T, timeoutMs?: number}} options
 */
export function sampleJson({ url, everyMs, durationMs, pick, timeoutMs = Math.max(500, everyMs * 5) }) {
  /** @type {{t: number, value: T}[]} */
  const samples = [];
  let failures = 0;
  let pending = false;
  let stopped = false;
  const until = nowMs() + durationMs;
  let resolveDone = (/** @type {any} */ _v) => {};
  const done = new Promise((r) => (resolveDone = r));
  const poll = () => {
    if (pending) return;
    pending = true;
    get(url, timeoutMs)
      .then(({ status, body }) => {
        if (status !== 200) throw new Error(`status ${status}`);
        samples.push({ t: nowMs(), value: pick(JSON.parse(body)) });
      })
      .catch(() => failures++)
      .finally(() => {
        pending = false;
      });
  };
  const finish = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    resolveDone({ samples, failures });
  };
  const timer = setInterval(() => (nowMs() >= until ? finish() : poll()), everyMs);
  poll();
  return {
    samples,
    /** Resolves {samples, failures} when the duration is over or `stop()` was called. */
    done,
    stop() {
      finish();
      return done;
    },
  };
}

function errorKind(err) {
  const code = /** @type {any} */ (err)?.code ?? /** @type {any} */ (err)?.cause?.code;
  if (code) return String(code);
  return String(/** @type {any} */ (err)?.name ?? 'error');
}
