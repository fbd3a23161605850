/**
 * Self-check of the app with a real capacity (test/fixtures/capacity-app.mjs) and of the
 * open-loop generator (bench/lib/open-loop.mjs) that the adaptive-limit tests and the benchmark
 * (scenario 6) stand on: driven directly at 3x its capacity, the app serves at its capacity
 * and not above, its queue and its latency grow, its peak concurrency is its slot count, and a
 * change of slots through the control endpoint changes the served rate. Real sockets on
 * 127.0.0.1; the bounds are generous ratios (a 2-core CI box), the figures belong to the bench.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openLoop, requestLog, sampleJson, nowMs, NOT_SENT, type RequestLog } from '../../bench/lib/open-loop.mjs';
import { startCapacityApp, type CapacityStats } from '../fixtures/capacity-app.mjs';
import { startCapacityAppProcess } from '../helpers/capacity-app.ts';
import { cleanup, onCleanup } from '../helpers/sidecar.ts';

afterEach(cleanup);

const SLOTS = 4;
const HOLD_MS = 40;
const CAPACITY = (SLOTS * 1000) / HOLD_MS; // 100 req/s

/** Median latency of the 2xx answers among requests [from, to) of the schedule. */
function okMedian(log: RequestLog, from: number, to: number): number {
  const ms: number[] = [];
  const statuses: Record<number, number> = {};
  for (let i = from; i < to; i++) {
    const status = log.records.status[i]!;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) ms.push(log.records.latency[i]!);
  }
  expect(ms.length, `2xx answers among requests ${from}-${to} (statuses ${JSON.stringify(statuses)}, errors ${JSON.stringify(log.errorKinds)})`).toBeGreaterThanOrEqual(5);
  return ms.sort((a, b) => a - b)[ms.length >> 1]!;
}

async function post(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

describe('capacity app', () => {
  it('serves at its capacity under 3x open-loop load, queues the rest, and follows a change of slots', async () => {
    const app = await startCapacityAppProcess({ slots: SLOTS, holdMs: HOLD_MS });
    const base = app.url;
    const sampler = sampleJson<CapacityStats>({ url: `${base}/__stats`, everyMs: 100, durationMs: 8000, pick: (j) => j as CapacityStats });
    onCleanup(() => sampler.stop().then(() => undefined));

    // 3x the first capacity for 2.4 s: 4 slots until 1.2 s, then 8, then 2 from 2.4 s (one
    // script, so a late timer delays a step but never reorders them); once the app has been seen
    // with 2 slots it is killed (what it still held fails then). The client deadline (5 s) is
    // longer than any wait in the measured windows, so none of them loses answers to timeouts.
    // The app's own view comes from its endpoints at each step; the windows are cut where the
    // switches really happened.
    const t0 = nowMs();
    const until = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - nowMs())));
    const { stats } = app;
    const script = (async () => {
      try {
        await until(1200);
        // A starved test process sends late (in batches): the raise waits for 1.2 s of arrivals.
        let beforeRaise = await stats();
        for (let i = 0; beforeRaise.received < 1.2 * 3 * CAPACITY - 20 && i < 100; i++) {
          await new Promise((r) => setTimeout(r, 50));
          beforeRaise = await stats();
        }
        const atRaise = await app.setSlots(2 * SLOTS);
        const raisedAt = nowMs();
        await until(Math.max(2400, raisedAt - t0 + 1000)); // phase B lasts 1 s even when the raise came late
        const atLower = await app.setSlots(SLOTS / 2);
        const loweredAt = nowMs();
        // Lowering takes effect as slots free up: a few holds later at most 2 are busy.
        await new Promise((r) => setTimeout(r, 6 * HOLD_MS));
        const after = await stats();
        return { beforeRaise, atRaise, raisedAt, atLower, loweredAt, after };
      } finally {
        app.kill();
      }
    })();
    const log = await openLoop({ url: `${base}/work`, rate: 3 * CAPACITY, durationMs: 2400, timeoutMs: 5000, maxInflight: 1024 });
    const { beforeRaise, atRaise, raisedAt, atLower, loweredAt, after } = await script;
    const { samples } = await sampler.stop();

    // Every request was sent (the safety cap was never hit): rate x duration of them.
    expect(log.count).toBe(720);
    expect(log.notSent).toBe(0);
    expect(Array.from(log.records.status).filter((s) => s === NOT_SENT)).toHaveLength(0);

    // What the app saw: at most its slots at once, exactly its slots at peak, a growing queue.
    expect(beforeRaise).toMatchObject({ slots: SLOTS, peakBusy: SLOTS });
    expect(beforeRaise.queued).toBeGreaterThan(60);
    expect(atRaise).toMatchObject({ slots: 2 * SLOTS, busy: 2 * SLOTS, peakBusy: 2 * SLOTS });
    expect(atLower).toMatchObject({ slots: SLOTS / 2, peakBusy: 2 * SLOTS });
    expect(atLower.busy).toBeGreaterThan(SLOTS / 2); // lowering waits for slots to free up
    expect(after.slots).toBe(SLOTS / 2);
    expect(after.busy).toBeLessThanOrEqual(SLOTS / 2);
    expect(after.queued).toBeGreaterThan(0); // still overloaded: the slots are the bound, not the load
    expect(samples.length).toBeGreaterThan(3);
    for (const { value } of samples) expect(value.busy).toBeLessThanOrEqual(2 * SLOTS);

    // Served rate by time of the answer, per phase (leaving out the first 200 ms of each): never
    // much above what the slots can do (a hold is never shorter than holdMs; the margin is for a
    // client that reads answers late), and well above half of it.
    const raise = raisedAt - log.startedAt;
    const lower = loweredAt - log.startedAt;
    expect(lower - raise).toBeGreaterThan(600);
    const servedA = log.window(200, raise, { by: 'end' }).okPerS;
    const servedB = log.window(raise + 200, lower, { by: 'end' }).okPerS;
    expect(servedA).toBeLessThanOrEqual(CAPACITY * 1.25);
    expect(servedA).toBeGreaterThanOrEqual(CAPACITY * 0.4);
    expect(servedB).toBeLessThanOrEqual(2 * CAPACITY * 1.25);
    expect(servedB / servedA).toBeGreaterThanOrEqual(1.3);

    // The queue grows and so does the latency: by the app's own clock, what started just before
    // the raise had waited several holds; seen by the client, requests late in phase A (by
    // position in the schedule, FIFO, so a late sender does not blur it) took several holds.
    expect(beforeRaise.maxWaitMs).toBeGreaterThan(4 * HOLD_MS);
    expect(okMedian(log, 0, 20)).toBeGreaterThanOrEqual(HOLD_MS);
    expect(okMedian(log, 240, 300)).toBeGreaterThan(5 * HOLD_MS);
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

    const s = app.stats();
    expect(s).toMatchObject({ busy: 0, queued: 0, received: 300, served: total.ok, shed: total.rejected, lost: 0, abandoned: 0, peakBusy: 2 });
    expect(s.received).toBe(s.served + s.lost + s.shed + s.abandoned);
    // What got a slot had not waited past the bound (the app's own clock: no client lag in it).
    expect(s.maxWaitMs).toBeGreaterThan(0);
    expect(s.maxWaitMs).toBeLessThanOrEqual(100);
    expect((await (await fetch(`${base}/__stats?reset=1`)).json()) as CapacityStats).toMatchObject({ received: 0, served: 0, shed: 0, peakBusy: 0, peakQueued: 0, maxWaitMs: 0 });
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
