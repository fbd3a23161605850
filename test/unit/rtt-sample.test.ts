/**
 * issue 12: the RTT an adaptive limit learns from is the forward's round trip: from admission
 * (so time queued is not in it), or from when the request body was all in (`bodyDoneAt`, so a
 * client trickling its body is not the app's latency), to the moment the app's answer was
 * complete (`appDoneAt`), not to the exchange's end (so a client slow to read its answer is not
 * the app's latency either); an answer that had to wait for its reader teaches nothing. The
 * outcome mapping stays: a 5xx is a drop, a client gone before the answer teaches nothing.
 * Through the real data path and admission, with a fake exchange and a FakeClock.
 */
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/core/admission.ts';
import { configSchema } from '../../src/core/config-schema.ts';
import type { LimitListener, LimitSample } from '../../src/core/limit-algorithm.ts';
import type { AdaptiveConfig, AdaptiveLimit, AdaptiveSnapshot } from '../../src/core/limits/adaptive.ts';
import { SampledLog, silentLogger } from '../../src/core/log.ts';
import { RejectCatalogue } from '../../src/core/reject-response.ts';
import { DecisionTotals } from '../../src/core/totals.ts';
import { DataPath, InboundExchange } from '../../src/proxy/data-path.ts';
import { Telemetry } from '../../src/telemetry/telemetry.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

class Recorder implements AdaptiveLimit {
  readonly wantsSamples = true;
  onChange = undefined;
  minRttMs = undefined;
  sampleRttMs = undefined;
  readonly samples: LimitSample[] = [];
  constructor(private readonly config: AdaptiveConfig) {}
  get algorithm() {
    return this.config.algorithm;
  }
  get limit() {
    return this.config.initial;
  }
  onSample(s: Readonly<LimitSample>): void {
    this.samples.push({ ...s });
  }
  listen(_l: LimitListener | undefined): void {}
  snapshot(): AdaptiveSnapshot {
    return { algorithm: this.algorithm, min: this.config.min, max: this.config.max, minRttMs: undefined, sampleRttMs: undefined };
  }
  retune(): void {}
}

/** An exchange whose end the test sets by hand: what the adapter would learn, then `end()`. */
class Exchange extends InboundExchange {
  readonly method = 'GET';
  readonly path = '/';
  readonly host = 'h';
  readonly headers = {};
  readonly client = 'c';
  readonly clientAddress = 'c';
  readonly traceparent = undefined;
  readonly target = '/';
  readonly peer = 'c';
  readonly trustedPeer = false;
  forwarded = false;
  rejected = 0;
  reject(r: { status: number }): void {
    this.rejected = r.status;
  }
  forward(): void {
    this.forwarded = true;
  }
  answerInternal(): void {}
  protected watchEnd(): void {}
  protected closed(): void {}
  protected spanStatus(): number {
    return this.status;
  }
}

describe('the RTT sample (issue 12)', () => {
  it('starts at admission, ends when the app was done; 5xx is a drop, a client gone first is ignored', async () => {
    const clock = new FakeClock();
    const config = configSchema.parse({ inflight: { adaptive: { algorithm: 'aimd', min: 1, max: 1, initial: 1 }, queue: { size: 2, timeout: '10s' } } });
    let algo: Recorder | undefined;
    const admission = new Admission(config, { clock, adaptive: (c) => (algo = new Recorder(c)) });
    const telemetry = new Telemetry({ tracing: false, settings: config.telemetry, configVersion: 'v' });
    const path = new DataPath({ admission, telemetry, totals: new DecisionTotals(), rejectLog: new SampledLog(silentLogger), rejects: new RejectCatalogue(config.reject) });
    const settle = () => new Promise<void>((r) => setImmediate(r));

    const [x1, x2, x3] = [new Exchange(path), new Exchange(path), new Exchange(path)];
    path.begin(x1);
    path.begin(x2);
    expect(x1.forwarded).toBe(true);
    expect(x2.forwarded).toBe(false);

    // The app answers x1 after 50 ms; its client takes until 400 to read it.
    clock.advance(50);
    x1.status = 200;
    x1.completed = true;
    x1.appDoneAt = clock.now();
    clock.advance(350);
    path.begin(x3);
    x1.end();
    await settle();
    expect(x2.forwarded).toBe(true);

    // x2 waited 400 ms in the queue; the app fails it 20 ms after admission; its end comes later still.
    clock.advance(20);
    x2.status = 503;
    x2.completed = true;
    x2.appDoneAt = clock.now();
    clock.advance(100);
    x2.end();
    await settle();
    expect(x3.forwarded).toBe(true);

    // x3's client goes away before any answer: no appDoneAt, the end is now, and it teaches nothing.
    clock.advance(70);
    x3.end();

    expect(algo?.samples).toEqual([
      { rttMs: 50, inflightAtStart: 1, outcome: 'success' },
      { rttMs: 20, inflightAtStart: 1, outcome: 'dropped' },
      { rttMs: 70, inflightAtStart: 1, outcome: 'ignored' },
    ]);
    expect(admission.snapshot()[0]).toMatchObject({ inflight: 0, queued: 0, acquired: 3, released: 3 });
  });
  it('starts when the request body was all in, and a success paced by its reader teaches nothing', async () => {
    const clock = new FakeClock();
    const config = configSchema.parse({ inflight: { adaptive: { algorithm: 'aimd', min: 1, max: 4, initial: 4 } } });
    let algo: Recorder | undefined;
    const admission = new Admission(config, { clock, adaptive: (c) => (algo = new Recorder(c)) });
    const telemetry = new Telemetry({ tracing: false, settings: config.telemetry, configVersion: 'v' });
    const path = new DataPath({ admission, telemetry, totals: new DecisionTotals(), rejectLog: new SampledLog(silentLogger), rejects: new RejectCatalogue(config.reject) });
    const [upload, slowReader, early] = [new Exchange(path), new Exchange(path), new Exchange(path)];
    path.begin(upload);
    path.begin(slowReader);
    path.begin(early);

    // The upload's body trickles in until 900; the app answers 30 ms after it is all in.
    clock.advance(900);
    upload.bodyDoneAt = clock.now();
    clock.advance(30);
    upload.status = 200;
    upload.completed = true;
    upload.appDoneAt = clock.now();
    upload.end();
    // The slow reader's answer waited for it (backpressure) before the app was done.
    slowReader.status = 200;
    slowReader.completed = true;
    slowReader.clientPaced = true;
    slowReader.appDoneAt = clock.now();
    slowReader.end();
    // An app that answered before the body was all in (it did not wait for it): from admission.
    early.status = 413;
    early.completed = true;
    early.appDoneAt = 100;
    early.bodyDoneAt = 500;
    early.end();

    expect(algo?.samples).toEqual([
      { rttMs: 30, inflightAtStart: 1, outcome: 'success' },
      { rttMs: 930, inflightAtStart: 2, outcome: 'ignored' },
      { rttMs: 100, inflightAtStart: 3, outcome: 'success' },
    ]);
  });
});
