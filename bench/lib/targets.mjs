// The performance targets of issue 3, checked against a run's medians for each portcullis
// runtime. A target whose inputs were not measured in this run (scenario or system left out)
// shows "–" and counts as neither met nor missed. The node-floor column (node:http + undici with
// nothing on top, bench/floor.mjs) is shown for reference where it ran, never judged.

const MB = 1e6 / (1024 * 1024); // MiB per MB

/** @param {any} result */
export function evaluateTargets(result) {
  const part = (key) => result.parts.find((p) => p.key === key);
  const row = (key, load, system) => part(key)?.summary.find((r) => r.load === load && r.system === system);
  const val = (key, load, system, metric) => num(row(key, load, system)?.[metric]);

  const targets = [
    {
      id: 'cpu',
      what: 'data path: proxy CPU per request (1, 64 conns)',
      threshold: '<= 33 µs',
      value: (s) => val('1', 'c64', s, 'cpuUsPerReq'),
      unit: 'µs',
      ok: (v) => v <= 33,
    },
    {
      id: 'rps',
      what: "data path: req/s on one core vs nginx's (1, 64 conns)",
      threshold: '>= 0.5x nginx',
      value: (s) => ratio(val('1', 'c64', s, 'rps'), val('1', 'c64', 'nginx', 'rps')),
      unit: 'x',
      ok: (v) => v >= 0.5,
    },
    {
      id: 'latency',
      what: 'added latency over direct at 1,000 req/s, p99 (2)',
      threshold: '<= 0.5 ms',
      value: (s) => val('2', 'r1000', s, 'added_p99'),
      unit: 'ms',
      ok: (v) => v <= 0.5,
    },
    {
      id: 'reject-rate',
      what: "reject path: rejects/s (4a) vs nginx's proxied req/s (1, 64 conns)",
      threshold: '>= 1.0x',
      value: (s) => ratio(val('4a', 'c64', s, 'rejectsPerS'), val('1', 'c64', 'nginx', 'rps')),
      unit: 'x',
      ok: (v) => v >= 1.0,
    },
    {
      id: 'reject-cpu',
      what: 'reject path: CPU per reject (4a)',
      threshold: '<= 17 µs',
      value: (s) => val('4a', 'c64', s, 'cpuUsPerReq'),
      unit: 'µs',
      ok: (v) => v <= 17,
    },
    {
      id: 'rss',
      what: 'memory: peak RSS under 256 connections (1)',
      threshold: '<= 64 MB',
      value: (s) => val('1', 'c256', s, 'rssPeakMiB'),
      unit: 'MiB',
      ok: (v) => v <= 64 * MB,
    },
    {
      id: 'rss-flat',
      what: 'memory: RSS growth during the 1 MiB GET and 10 MiB POST runs (several GiB each; 1)',
      threshold: '<= +10%',
      value: (s) => {
        const g = ['get1MiB', 'post10MiB'].map((l) => val('1', l, s, 'rssGrowthPct'));
        return g.some((x) => x === undefined) ? undefined : Math.max(...g);
      },
      unit: '%',
      ok: (v) => v <= 10,
    },
    {
      id: 'rss-flood',
      what: 'memory: peak RSS under the socket flood (4b)',
      threshold: 'bounded',
      value: (s) => val('4b', part('4b')?.summary[0]?.load, s, 'rssPeakMiB'),
      unit: 'MiB',
      ok: () => undefined,
    },
    {
      id: 'goodput',
      what: "overload at 10x: goodput vs the app's best (3)",
      threshold: '>= 95%',
      value: (s) => val('3', 'x10', s, 'goodputPct'),
      unit: '%',
      ok: (v) => v >= 95,
    },
    {
      id: 'admitted-p99',
      what: 'overload at 10x: admitted p99 vs the unloaded p99 (direct at 0.5x; 3)',
      threshold: '<= 2x',
      value: (s) => ratio(val('3', 'x10', s, 'okP99'), val('3', 'x0.5', 'direct', 'okP99')),
      unit: 'x',
      ok: (v) => v <= 2,
    },
    {
      id: 'app-peak',
      what: "overload: the app's peak concurrency, all loads (3)",
      threshold: `<= cap (${result.options.overloadN})`,
      value: (s) => {
        const peaks = (part('3')?.summary ?? []).filter((r) => r.system === s).map((r) => num(r.appPeak));
        return peaks.length && peaks.every((p) => p !== undefined) ? Math.max(...peaks) : undefined;
      },
      unit: '',
      ok: (v) => v <= result.options.overloadN,
    },
  ];

  const systems = ['portcullis-node', 'portcullis-deno'].filter((s) => result.systems.includes(s));
  // node:http + undici alone, for reference: the floor of portcullis-node's stack, not judged.
  const reference = ['node-floor'].filter((s) => result.systems.includes(s));
  return targets.map((t) => ({
    id: t.id,
    what: t.what,
    threshold: t.threshold,
    unit: t.unit,
    bySystem: Object.fromEntries([
      ...systems.map((s) => {
        const v = t.value(s);
        return [s, { value: v, met: v === undefined ? undefined : t.ok(v) }];
      }),
      ...reference.map((s) => [s, { value: t.value(s), met: undefined }]),
    ]),
  }));
}

function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function ratio(a, b) {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

