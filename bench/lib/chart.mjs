// The chart of a run: one panel per scenario measure, medians across rounds, rendered to SVG
// headlessly by vega-lite + vega (no browser, no canvas). Colors are fixed per system so every
// panel reads the same.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { SYSTEMS } from './systems.mjs';
import { HOLD_MS } from '../scenarios/overload.mjs';

const COLORS = {
  direct: '#8c8c8c',
  'portcullis-node': '#2ca02c',
  'portcullis-deno': '#17becf',
  'node-floor': '#bcbd22',
  nginx: '#ff7f0e',
  haproxy: '#9467bd',
  'portcullis-node-adaptive': '#00441b',
  'portcullis-deno-adaptive': '#08519c',
};

/** Line widths over time (scenario 6): the fixed caps wide and pale, the sampled limits narrow. */
const WIDTHS = { nginx: 8, haproxy: 5, 'portcullis-node': 2.5, 'portcullis-deno': 2.5, 'portcullis-node-adaptive': 2, 'portcullis-deno-adaptive': 2, direct: 1.5 };

/** Which panels a part gets: [title, metric, loads to include (list or test; undefined = all), kind, y title]. */
const PANELS = {
  1: [
    ['1 · pass-through: requests/s (100 B answers)', 'rps', ['c64', 'c256'], 'bar', 'req/s'],
    ['1 · pass-through: proxy CPU µs per request', 'cpuUsPerReq', ['c64', 'c256'], 'bar', 'µs/request'],
    ['1 · pass-through: MB/s (1 MiB GET, 10 MiB POST)', 'mbPerS', ['get1MiB', 'post10MiB'], 'bar', 'MB/s'],
  ],
  2: [['2 · fixed rate: p99 latency (ms)', 'p99', undefined, 'bar', 'p99 ms']],
  3: [
    ['3 · overload: goodput (2xx/s) by offered load', 'okPerS', (load) => load !== 'best', 'line', '2xx/s'],
    ['3 · overload: app peak concurrency (cap N)', 'appPeak', (load) => load !== 'best', 'line', 'requests in app'],
  ],
  '4a': [['4a · reject path: rejects/s (cap 0)', 'rejectsPerS', undefined, 'bar', 'rejects/s']],
  '4b': [
    ['4b · socket flood: normal requests served during the flood (%)', 'okDuringPct', undefined, 'bar', '% served'],
    ['4b · socket flood: proxy peak RSS (MiB)', 'rssPeakMiB', undefined, 'bar', 'MiB'],
  ],
  '5off': [['5 · telemetry: CPU µs/request, tracing off', 'cpuUsPerReq', undefined, 'bar', 'µs/request']],
  '5all': [['5 · telemetry: CPU µs/request, every request sampled', 'cpuUsPerReq', undefined, 'bar', 'µs/request']],
  '5default': [['5 · telemetry: CPU µs/request, default sampling', 'cpuUsPerReq', undefined, 'bar', 'µs/request']],
  6: [
    ["6 · capacity change: goodput ÷ what the app's slots can serve, per phase", 'goodputRatio', (load) => /^p\d+$/.test(load), 'bar', '÷ slots / hold', { rule: 0.9, ruleLabel: '0.9 (issue 12)' }],
    ['6 · capacity change: admitted p99 ÷ unloaded p99, per phase (clipped at 5)', 'p99Ratio', (load) => /^p\d+$/.test(load), 'bar', '÷ unloaded p99', { rule: 2, ruleLabel: '2x (issue 12)', max: 5 }],
  ],
};

/** Panels over time (scenario 6): from each system's first good run of the part. */
const TIME_PANELS = {
  6: [
    ["6 · capacity change: the limit in force over time vs the app's slots", 'limit'],
    ['6 · capacity change: goodput over time (2xx/s, 1 s windows) vs what the app can serve', 'goodput'],
  ],
};

function included(loads, load) {
  if (loads === undefined) return true;
  return typeof loads === 'function' ? loads(load) : loads.includes(load);
}

export function chartSpec(result) {
  const systems = SYSTEMS.filter((s) => result.systems.includes(s));
  const panels = [];
  for (const part of result.parts) {
    // Over time first (scenario 6), then the medians.
    for (const [title, what] of TIME_PANELS[part.key] ?? []) {
      const panel = timePanel(part, title, what);
      if (panel) panels.push(panel);
    }
    for (const [title, metric, loads, kind, yTitle, barOptions] of PANELS[part.key] ?? []) {
      const values = part.summary
        .filter((r) => included(loads, r.load) && typeof r[metric] === 'number' && Number.isFinite(r[metric]))
        .map((r) => ({ load: r.chartLabel ?? r.loadLabel, system: r.system, value: r[metric], order: r.loadIndex }));
      if (values.length === 0) continue;
      const best = part.summary.find((r) => r.load === 'best')?.okPerS;
      const rule =
        part.key !== '3' ? undefined : metric === 'okPerS' ? Math.round(best ?? (result.options.overloadN * 1000) / HOLD_MS) : result.options.overloadN;
      panels.push(kind === 'line' ? linePanel(title, values, yTitle, rule) : barPanel(title, values, yTitle, barOptions));
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `portcullis benchmark · ${result.name} · ${result.date}`,
      subtitle: `${result.machine.cpuModel}, ${result.machine.cores} cores · medians of ${result.options.rounds} round(s) · ${result.options.durationS} s per run`,
      anchor: 'start',
      fontSize: 16,
    },
    columns: 2,
    concat: panels,
    resolve: { scale: { color: 'shared' } },
    config: {
      font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
      view: { stroke: '#ddd' },
      axis: { labelFontSize: 11, titleFontSize: 11, labelLimit: 240 },
      legend: { orient: 'top', title: null, labelFontSize: 12, labelLimit: 320 },
      range: { category: systems.map((s) => COLORS[s]) },
    },
  };

  function color() {
    return { field: 'system', type: 'nominal', scale: { domain: systems, range: systems.map((s) => COLORS[s]) } };
  }

  /** Bars by load and system; `rule` draws a dashed reference, `max` clips the axis. */
  function barPanel(title, values, yTitle, { rule, ruleLabel, max } = {}) {
    const base = { title: { text: title, anchor: 'start', fontSize: 13 }, width: 380, height: 200 };
    const bars = {
      data: { values },
      mark: { type: 'bar', tooltip: true, clip: max !== undefined },
      encoding: {
        x: { field: 'load', type: 'nominal', sort: { field: 'order' }, title: null, axis: { labelAngle: 0 } },
        xOffset: { field: 'system', type: 'nominal', sort: systems },
        y: { field: 'value', type: 'quantitative', title: yTitle, ...(max !== undefined ? { scale: { domain: [0, max], clamp: true } } : {}) },
        color: color(),
      },
    };
    if (rule === undefined) return { ...base, ...bars };
    return {
      ...base,
      layer: [
        bars,
        {
          data: { values: [{ y: rule, label: ruleLabel ?? String(rule) }] },
          layer: [
            { mark: { type: 'rule', strokeDash: [4, 4], color: '#555' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
            {
              mark: { type: 'text', align: 'right', dx: -2, dy: -6, color: '#555', fontSize: 10 },
              encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 380 }, text: { field: 'label' } },
            },
          ],
        },
      ],
    };
  }

  /** Lines by system; `rule` draws a dashed reference (the app's capacity, the cap N). */
  function linePanel(title, values, yTitle, rule) {
    const lines = {
      data: { values },
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'load', type: 'ordinal', sort: { field: 'order' }, title: `offered load (x ${(result.options.overloadN * 1000) / HOLD_MS} req/s, what N at a time can serve)`, axis: { labelAngle: 0 } },
        y: { field: 'value', type: 'quantitative', title: yTitle },
        color: color(),
      },
    };
    const base = { title: { text: title, anchor: 'start', fontSize: 13 }, width: 380, height: 200 };
    if (rule === undefined) return { ...base, ...lines };
    return {
      ...base,
      layer: [
        lines,
        {
          data: { values: [{ y: rule, label: metricRuleLabel(yTitle, rule) }] },
          layer: [
            { mark: { type: 'rule', strokeDash: [4, 4], color: '#555' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
            {
              mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#555', fontSize: 10 },
              encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } },
            },
          ],
        },
      ],
    };
  }

  /**
   * Lines over time, one per system, over the app's true capacity as a dashed step line: the
   * limit (portcullis's sampled global limit; nginx's and HAProxy's fixed cap as flat lines) or
   * the goodput in 1 s windows.
   */
  function timePanel(part, title, what) {
    const first = new Map();
    for (const r of part.runs) if (r.series && !r.error && !first.has(r.system)) first.set(r.system, r);
    if (first.size === 0) return undefined;
    const values = [];
    for (const [system, r] of first) {
      const { series } = r;
      if (what === 'limit') {
        if (series.limit?.length) for (const s of series.limit) if (typeof s.max === 'number' && s.t <= series.endS) values.push({ system, t: s.t, v: s.max });
        if (series.fixedCap !== undefined) values.push({ system, t: 0, v: series.fixedCap }, { system, t: series.endS, v: series.fixedCap });
      } else for (const g of series.goodput) values.push({ system, t: g.t, v: g.okPerS });
    }
    if (values.length === 0) return undefined;
    // The app's slots over time, from the schedule of the first run (each run has the same).
    const r0 = first.values().next().value;
    const holdMs = result.options.capacityHoldMs;
    const phaseSlots = (part.summary ?? []).filter((row) => /^p\d+$/.test(row.load)).reduce((m, row) => m.set(row.phase, row.slots), new Map());
    const steps = [];
    r0.series.boundariesS.forEach((b, k) => {
      const slots = phaseSlots.get(k + 1) ?? r0.phases?.[k]?.slots;
      const y = what === 'limit' ? slots : (slots * 1000) / holdMs;
      steps.push({ t: b, y }, { t: r0.series.boundariesS[k + 1] ?? r0.series.endS, y });
    });
    const label = what === 'limit' ? "app's slots" : 'app capacity (slots / hold)';
    for (const v of values) {
      v.w = what === 'limit' ? (WIDTHS[v.system] ?? 2) : 1.5;
      v.o = v.w > 3 ? 0.55 : 1;
    }
    const yMax = Math.ceil(1.2 * Math.max(...values.map((v) => v.v), ...steps.map((s) => s.y)));
    return {
      title: { text: title, anchor: 'start', fontSize: 13 },
      width: 380,
      height: 200,
      layer: [
        {
          data: { values: steps },
          mark: { type: 'line', strokeDash: [5, 3], color: '#222', strokeWidth: 2 },
          encoding: { x: { field: 't', type: 'quantitative' }, y: { field: 'y', type: 'quantitative', scale: { domain: [0, yMax] } } },
        },
        {
          data: { values: [steps[0]].map((s) => ({ ...s, label })) },
          mark: { type: 'text', align: 'left', dx: 4, dy: -8, color: '#222', fontSize: 10 },
          encoding: { x: { field: 't', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } },
        },
        {
          data: { values },
          mark: { type: 'line', interpolate: what === 'limit' ? 'step-after' : 'linear', tooltip: true },
          encoding: {
            x: { field: 't', type: 'quantitative', title: 'seconds since the load started' },
            y: { field: 'v', type: 'quantitative', title: what === 'limit' ? 'requests in flight allowed' : '2xx/s', scale: { domain: [0, yMax] } },
            color: color(),
            // Equal fixed caps lie on one another: wide pale lines under narrow ones keep each visible.
            strokeWidth: { field: 'w', type: 'quantitative', scale: null },
            opacity: { field: 'o', type: 'quantitative', scale: null },
          },
        },
      ],
    };
  }

  function metricRuleLabel(yTitle, v) {
    return yTitle === '2xx/s' ? `app at its best: ${v}/s` : `cap N = ${v}`;
  }
}

/** SVG text of the chart. */
export async function chartSvg(result) {
  const { spec } = vl.compile(/** @type {any} */ (chartSpec(result)));
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
