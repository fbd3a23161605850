// Command line of the harness (`npm run bench -- [options]`).

export const USAGE = `usage: npm run bench -- [options]
  --quick               tiny durations, 1 round, small flood (development, smoke test)
  --scenarios 1,3       which scenarios (1 pass-through, 2 fixed rate, 3 overload, 4 reject path,
                        5 telemetry cost, 6 capacity change); default 1,2,3,4,5,6
  --systems a,b         direct, portcullis-node, portcullis-deno, node-floor, nginx, haproxy,
                        portcullis-node-adaptive, portcullis-deno-adaptive (default all;
                        node-floor: node:http + undici alone, scenarios 1 and 2; the -adaptive
                        ones: inflight.adaptive instead of max, scenario 6 only)
  --duration 10s        length of each measured run (default 5s; transfers 0.6x, overload 0.8x,
                        each phase of scenario 6 2x)
  --rounds 3            rounds of interleaved runs; medians are reported (default 3)
  --name NAME           results go to bench/results/<date>-<name>.{json,md,svg} (default "bench")
  --out DIR             results folder (default bench/results)
  --overload-n 16       N of scenario 3: the app's good concurrency and every system's cap
  --queue 0             queue for scenarios 3 and 6 (portcullis inflight.queue, HAProxy
                        maxqueue), 50 ms timeout; default 0 = reject at once (nginx's
                        limit_conn cannot queue)
  --flood-sockets 10000 sockets of the flood in scenario 4
  --capacity-slots 16   scenario 6: the app's slots c in phases 1 and 3 (c/2 in phase 2); the
                        fixed caps of portcullis-node, nginx and HAProxy
  --capacity-hold 50ms  scenario 6: how long each request holds a slot
  --capacity-phase 10s  scenario 6: length of each of the 3 phases (default 2x --duration)
  --capacity-load 3     scenario 6: offered rate as a multiple of phase 1's capacity (c/hold)
  --capacity-shed 200ms scenario 6: the app answers 503 to a request that waited longer than
                        this in its own queue (default 0 = never, it only queues)
  --no-pin              do not pin the proxy to CPU 0 and the app and load generator to CPU 1
  --help`;

export const SCENARIO_IDS = [1, 2, 3, 4, 5, 6];

export function parseOptions(argv) {
  const o = {
    quick: false,
    scenarios: [...SCENARIO_IDS],
    systems: undefined,
    durationS: undefined,
    rounds: undefined,
    name: undefined,
    out: undefined,
    overloadN: 16,
    queueSize: undefined,
    floodSockets: undefined,
    capacitySlots: 16,
    capacityHoldMs: 50,
    capacityPhaseS: undefined,
    capacityLoad: 3,
    capacityShedMs: 0,
    pin: true,
  };
  const args = [...argv];
  const value = (flag) => {
    const v = args.shift();
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  while (args.length > 0) {
    let a = /** @type {string} */ (args.shift());
    if (a.includes('=') && a.startsWith('--')) {
      const [k, ...rest] = a.split('=');
      args.unshift(rest.join('='));
      a = k;
    }
    switch (a) {
      case '--quick':
        o.quick = true;
        break;
      case '--scenarios':
        o.scenarios = list(value(a)).map((s) => {
          const n = Number(s);
          if (!SCENARIO_IDS.includes(n)) throw new Error(`--scenarios: unknown scenario ${s} (1-${SCENARIO_IDS.length})`);
          return n;
        });
        break;
      case '--systems':
        o.systems = list(value(a));
        break;
      case '--duration':
        o.durationS = seconds(value(a), a);
        break;
      case '--rounds':
        o.rounds = int(value(a), a, 1);
        break;
      case '--name':
        o.name = value(a);
        if (!/^[A-Za-z0-9._-]+$/.test(o.name)) throw new Error(`--name: letters, digits, '.', '_' or '-', got ${o.name}`);
        break;
      case '--out':
        o.out = value(a);
        break;
      case '--overload-n':
        o.overloadN = int(value(a), a, 1);
        break;
      case '--queue':
        o.queueSize = int(value(a), a, 0);
        break;
      case '--flood-sockets':
        o.floodSockets = int(value(a), a, 1);
        break;
      case '--capacity-slots':
        o.capacitySlots = int(value(a), a, 2);
        break;
      case '--capacity-hold':
        o.capacityHoldMs = Math.round(seconds(value(a), a) * 1000);
        if (o.capacityHoldMs < 1) throw new Error(`${a} must be at least 1ms`);
        break;
      case '--capacity-phase':
        o.capacityPhaseS = seconds(value(a), a);
        break;
      case '--capacity-load': {
        const v = value(a);
        o.capacityLoad = Number(v);
        if (!(o.capacityLoad > 0)) throw new Error(`${a} must be a number > 0, got ${v}`);
        break;
      }
      case '--capacity-shed': {
        const v = value(a);
        o.capacityShedMs = v === '0' ? 0 : Math.round(seconds(v, a) * 1000);
        break;
      }
      case '--no-pin':
        o.pin = false;
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  // Defaults that depend on --quick.
  o.durationS ??= o.quick ? 1 : 5;
  o.rounds ??= o.quick ? 1 : 3;
  o.name ??= o.quick ? 'quick' : 'bench';
  o.floodSockets ??= o.quick ? 1000 : 10_000;
  o.queueSize ??= 0;
  o.queueTimeoutMs = 50; // one service time of the overload app
  o.floodHoldMs = o.quick ? 500 : Math.min(3000, o.durationS * 600);
  o.transferS = o.quick ? 1 : Math.max(1, Math.round(o.durationS * 0.6));
  o.overloadS = o.quick ? 1 : Math.max(1, Math.round(o.durationS * 0.8));
  o.warmupS = o.quick ? 0 : 1;
  o.overloadLevels = o.quick ? [1, 10] : [0.5, 1, 2, 5, 10];
  o.capacityPhaseS ??= o.quick ? 2 : o.durationS * 2;
  // The app's best in each phase (closed loop at exactly its slots): whole seconds (wrk).
  o.capacityBestS = o.quick ? 1 : Math.max(1, Math.round(o.durationS * 0.6));
  return o;
}

function list(s) {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function int(s, flag, min) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be a whole number >= ${min}, got ${s}`);
  return n;
}

function seconds(s, flag) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new Error(`${flag} must be a duration such as 10s, 1500ms or 1m, got ${s}`);
  const n = Number(m[1]);
  const v = m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
  if (v <= 0) throw new Error(`${flag} must be > 0, got ${s}`);
  return v;
}
