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
};

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
};

function included(loads, load) {
  if (loads === undefined) return true;
  return typeof loads === 'function' ? loads(load) : loads.includes(load);
}

export function chartSpec(result) {
  const systems = SYSTEMS.filter((s) => result.systems.includes(s));
  const panels = [];
  for (const part of result.parts) {
    for (const [title, metric, loads, kind, yTitle] of PANELS[part.key] ?? []) {
      const values = part.summary
        .filter((r) => included(loads, r.load) && typeof r[metric] === 'number' && Number.isFinite(r[metric]))
        .map((r) => ({ load: r.chartLabel ?? r.loadLabel, system: r.system, value: r[metric], order: r.loadIndex }));
      if (values.length === 0) continue;
      const best = part.summary.find((r) => r.load === 'best')?.okPerS;
      const rule =
        part.key !== '3' ? undefined : metric === 'okPerS' ? Math.round(best ?? (result.options.overloadN * 1000) / HOLD_MS) : result.options.overloadN;
      panels.push(kind === 'line' ? linePanel(title, values, yTitle, rule) : barPanel(title, values, yTitle));
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
      legend: { orient: 'top', title: null, labelFontSize: 12 },
      range: { category: systems.map((s) => COLORS[s]) },
    },
  };

  function color() {
    return { field: 'system', type: 'nominal', scale: { domain: systems, range: systems.map((s) => COLORS[s]) } };
  }

  function barPanel(title, values, yTitle) {
    return {
      title: { text: title, anchor: 'start', fontSize: 13 },
      width: 380,
      height: 200,
      data: { values },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'load', type: 'nominal', sort: { field: 'order' }, title: null, axis: { labelAngle: 0 } },
        xOffset: { field: 'system', type: 'nominal', sort: systems },
        y: { field: 'value', type: 'quantitative', title: yTitle },
        color: color(),
      },
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
