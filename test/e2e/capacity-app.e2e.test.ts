/**
 * Self-check of the app with a real capacity (test/fixtures/capacity-app.mjs) and of the
 * open-loop generator (bench/lib/open-loop.mjs) that the adaptive-limit tests and the benchmark
 * (scenario 6) stand on: driven directly at 3x its capacity, the app serves at its capacity
 * and not above, its queue and its latency grow, its peak concurrency is its slot count, and a
 * change of slots through the control endpoint changes the served rate. Real sockets on
 * 127.0.0.1; the bounds are generous ratios (a 2-core CI box), the figures belong to the bench.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLoop, requestLog, sampleJson, NOT_SENT } from '../../bench/lib/open-loop.mjs';
import { startCapacityApp, type CapacityStats } from '../fixtures/capacity-app.mjs';
import { ROOT, cleanup, onCleanup } from '../helpers/sidecar.ts';

afterEach(cleanup);

const SLOTS = 4;
const HOLD_MS = 40;
const CAPACITY = (SLOTS * 1000) / HOLD_MS; // 100 req/s

/** The app as the benchmark runs it: its own process, started from the command line. */
async function startAppProcess(args: string[]): Promise<{ port: number; kill(): void }> {
  const child = spawn(process.execPath, [join(ROOT, 'test', 'fixtures', 'capacity-app.mjs'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  onCleanup(async () => {
    kill();
    await exited;
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`capacity app exited ${code} before it printed its port`)));
  });
  const started = JSON.parse(line) as { msg: string; port: number; slots: number; holdMs: number };
  expect(started).toMatchObject({ msg: 'capacity app started', slots: Number(args[args.indexOf('--slots') + 1]) });
  return { port: started.port, kill };
}

async function post(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

describe('capacity app', () => {
  it('serves at its capacity under 3x open-loop load, queues the rest, and follows a change of slots', async () => {
    const app = await startAppProcess(['--port', '0', '--slots', String(SLOTS), '--hold-ms', String(HOLD_MS)]);
    const base = `http://127.0.0.1:${app.port}`;
    const sampler = sampleJson<CapacityStats>({ url: `${base}/__stats`, everyMs: 100, durationMs: 8000, pick: (j) => j as CapacityStats });
    onCleanup(() => sampler.stop().then(() => undefined));

    // 3x the first capacity for 2.4 s: 4 slots until 1.2 s, then 8, then 2 from 2.4 s; the app
    // is killed at 3 s (what it still held fails then). The client deadline (3 s) is longer than
    // any wait in the measured windows, so none of them loses answers to timeouts.
    const answers: { status: number; body: unknown }[] = [];
    const timers = [
      setTimeout(() => void post(`${base}/__capacity?slots=${2 * SLOTS}`).then((a) => answers.push(a)), 1200),
      setTimeout(() => void post(`${base}/__capacity?slots=${SLOTS / 2}`).then((a) => answers.push(a)), 2400),
      setTimeout(app.kill, 3000),
    ];
    onCleanup(() => timers.forEach(clearTimeout));
    const log = await openLoop({ url: `${base}/work`, rate: 3 * CAPACITY, durationMs: 2400, timeoutMs: 3000, maxInflight: 1024 });
    const { samples } = await sampler.stop();

    // Every request was sent (the safety cap was never hit): rate x duration of them.
    expect(log.count).toBe(720);
    expect(log.notSent).toBe(0);
    expect(Array.from(log.records.status).filter((s) => s === NOT_SENT)).toHaveLength(0);
    expect(answers.map((a) => [a.status, (a.body as CapacityStats).slots])).toEqual([
      [200, 2 * SLOTS],
      [200, SLOTS / 2],
    ]);

    // Served rate by time of the answer, per phase (leaving out the first 200 ms of each): never
    // above what the slots can do (a hold is never shorter than holdMs), and well above half.
    const servedA = log.window(200, 1200, { by: 'end' }).okPerS;
    const servedB = log.window(1400, 2400, { by: 'end' }).okPerS;
    expect(servedA).toBeLessThanOrEqual(CAPACITY * 1.1);
    expect(servedA).toBeGreaterThanOrEqual(CAPACITY * 0.5);
    expect(servedB).toBeLessThanOrEqual(2 * CAPACITY * 1.1);
    expect(servedB / servedA).toBeGreaterThanOrEqual(1.4);

    // The queue grows and so does the latency: requests sent late in phase A waited far longer.
    const early = log.window(0, 200).okP50;
    const late = log.window(900, 1200).okP50;
    expect(early).toBeGreaterThanOrEqual(HOLD_MS);
    expect(late).toBeGreaterThan(3 * early!);

    // What the app saw (sampled every 100 ms): its peak concurrency is exactly its slots.
    const at = (fromMs: number, toMs: number) => samples.filter((s) => s.t - log.startedAt >= fromMs && s.t - log.startedAt < toMs).map((s) => s.value);
    expect(samples.length).toBeGreaterThan(15);
    const phaseA = at(0, 1150);
    expect(Math.max(...phaseA.map((s) => s.peakBusy))).toBe(SLOTS);
    expect(Math.max(...phaseA.map((s) => s.queued))).toBeGreaterThan(50);
    expect(Math.max(...samples.map((s) => s.value.peakBusy))).toBe(2 * SLOTS);
    for (const s of samples.map((x) => x.value)) expect(s.busy).toBeLessThanOrEqual(2 * SLOTS);
    // Lowering to 2 slots takes effect as slots free up: one hold later at most 2 are busy.
    const lowered = at(2400 + 3 * HOLD_MS + 100, 2950);
    expect(lowered.length).toBeGreaterThan(0);
    for (const s of lowered) expect(s.busy).toBeLessThanOrEqual(SLOTS / 2);
  }, 20_000);

  it('sheds what waited too long, accounts for every request, and validates its control endpoint', async () => {
    const app = await startCapacityApp({ slots: 2, holdMs: 20, shedAfterMs: 100 });
    onCleanup(() => app.close());
    const base = `http://127.0.0.1:${app.port}`;
    const capacity = 2 * (1000 / 20);

    expect(await post(`${base}/__capacity?slots=x`)).toMatchObject({ status: 400 });
    expect((await fetch(`${base}/__capacity?slots=3`)).status).toBe(405);
    expect(app.stats().slots).toBe(2);

    const log = await openLoop({ url: `${base}/work`, rate: 3 * capacity, durationMs: 1000, timeoutMs: 2000 });
    const total = log.total();
    expect(total.sent).toBe(300);
    expect(total.errors).toBe(0);
    // The excess was shed with 503s, and what was served never waited past the shedding bound.
    expect(total.rejected).toBeGreaterThan(50);
    expect(total.ok).toBeLessThanOrEqual(capacity * 1.1 + 5);
    expect(total.ok + total.rejected).toBe(300);
    expect(total.okMax!).toBeLessThan(100 + 20 + 400);

    const s = app.stats();
    expect(s).toMatchObject({ busy: 0, queued: 0, received: 300, served: total.ok, shed: total.rejected, lost: 0, abandoned: 0, peakBusy: 2 });
    expect(s.received).toBe(s.served + s.lost + s.shed + s.abandoned);
    expect((await (await fetch(`${base}/__stats?reset=1`)).json()) as CapacityStats).toMatchObject({ received: 0, served: 0, shed: 0, peakBusy: 0, peakQueued: 0 });
  }, 20_000);
});

describe('request log', () => {
  it('slices by time window: counts by class, goodput, p50/p99 of the 2xx latency', () => {
    // 10 requests over 1 s: 2xx with latency 10..50 ms in the first half, 503s and errors after.
    const start = [0, 100, 200, 300, 400, 500, 600, 700, 800, 900];
    const latency = [10, 20, 30, 40, 50, 1, 1, 2000, 1, 1];
    const status = [200, 200, 200, 200, 200, 503, 429, 0, 502, NOT_SENT];
    const log = requestLog({ startedAt: 0, start, latency, status, durationMs: 1000 });
    const first = log.window(0, 500);
    expect(first).toMatchObject({ sent: 5, ok: 5, rejected: 0, errors: 0, okP50: 30, okP99: 50, okPerS: 10 });
    const second = log.window(500, 1000);
    expect(second).toMatchObject({ sent: 4, ok: 0, rejected: 2, errors: 1, otherStatus: 1, notSent: 1, s5xx: 2, s4xx: 1, rejectPct: 50, okP50: undefined });
    expect(log.windows(250).map((w) => w.sent)).toEqual([3, 2, 3, 1]); // 900 was not sent
    // By time of the answer, the 2 s error lands after the run.
    expect(log.window(500, 1000, { by: 'end' }).errors).toBe(0);
    expect(log.total().sent).toBe(9);
  });
});
