/**
 * Smoke test of the benchmark harness (bench/): it runs the real command, `bash bench/run.sh`,
 * with a tiny load (--quick, 1 s runs, one round, a 200-socket flood, 1 s phases in scenario 6)
 * against a few systems, and checks that the JSON, markdown and SVG results come out with the
 * fields a reader relies on. No timing is asserted: numbers belong to the benchmark, not to
 * pass/fail tests. portcullis-node-adaptive runs only in scenario 6 (a config the build refuses
 * would be skipped with its reason, which fails this test).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SYSTEMS = ['direct', 'portcullis-node', 'node-floor', 'portcullis-node-adaptive'];
const ADAPTIVE = 'portcullis-node-adaptive';
const FIXED = SYSTEMS.filter((s) => s !== ADAPTIVE);

interface Row {
  load: string;
  loadLabel: string;
  system: string;
  [metric: string]: unknown;
}
interface Part {
  scenario: number;
  key: string;
  title: string;
  systems: string[];
  skipped: { system: string; why: string }[];
  columns: { key: string; title: string }[];
  loads: { key: string; label: string; only?: string[] }[];
  runs: Row[];
  summary: Row[];
}
interface Result {
  name: string;
  date: string;
  machine: { cpuModel: string; cores: number; kernel: string };
  versions: Record<string, string>;
  options: { rounds: number; systems: string[] };
  pinning: { enabled: boolean };
  parts: Part[];
  pending: { id: number; note: string }[];
  anomalies: unknown[];
  childPids: number[];
}

describe('benchmark harness (smoke)', () => {
  let out: string;
  let run: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'portcullis-bench-smoke-'));
    // run.sh installs what is missing first (apt packages, vegeta, npm deps, the build); that
    // can take minutes on a fresh machine, the harness itself well under a minute.
    run = spawnSync(
      'bash',
      [
        join(ROOT, 'bench', 'run.sh'),
        '--quick',
        '--scenarios',
        '1,2,3,4,5,6',
        '--systems',
        SYSTEMS.join(','),
        '--flood-sockets',
        '200',
        '--capacity-phase',
        '1s',
        '--name',
        'smoke',
        '--out',
        out,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * 1024 * 1024 },
    );
  }, 660_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('exits 0 and writes <date>-smoke.json, .md and .svg', () => {
    expect(run.error, String(run.error)).toBeUndefined();
    expect(run.status, `stderr:\n${String(run.stderr).slice(-4000)}`).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(3);
    for (const ext of ['json', 'md', 'svg']) expect(files.some((f) => new RegExp(`^\\d{4}-\\d{2}-\\d{2}-smoke\\.${ext}$`).test(f))).toBe(true);
  });

  it('records every scenario part, load and system with the metrics of its table', () => {
    const result = readResult(out);
    expect(result.name).toBe('smoke');
    expect(result.machine.cores).toBeGreaterThan(0);
    for (const tool of ['portcullis', 'node', 'deno', 'nginx', 'haproxy', 'wrk', 'vegeta']) expect(result.versions[tool]).toBeTruthy();
    expect(result.options.systems).toEqual(SYSTEMS);
    expect(result.parts.map((p) => p.key)).toEqual(['1', '2', '3', '4a', '4b', '5off', '5all', '5default', '6']);
    expect(result.pending).toEqual([]);

    // node-floor (node:http + undici alone) only forwards: it runs where no limit is measured;
    // the adaptive variant only in scenario 6, where it must run.
    for (const part of result.parts.filter((p) => p.key !== '6')) {
      expect(part.systems).toEqual(['1', '2'].includes(part.key) ? FIXED : ['direct', 'portcullis-node']);
      expect(part.skipped).toEqual([]);
    }
    const six = result.parts.find((p) => p.key === '6')!;
    expect(six.systems).toEqual(['direct', 'portcullis-node', ADAPTIVE]);
    expect(six.skipped).toEqual([]);
    for (const part of result.parts.filter((p) => p.key !== '6')) {
      // A load may be for some systems only (the app alone at its best in scenario 3).
      const expected = part.loads.reduce((n, l) => n + part.systems.filter((s) => !l.only || l.only.includes(s)).length, 0);
      expect(part.summary).toHaveLength(expected);
      expect(part.runs).toHaveLength(expected); // one round
      for (const row of part.summary) {
        expect(row.error, `${part.key} ${row.load} ${row.system}: ${String(row.error)}`).toBeUndefined();
        expect(SYSTEMS).toContain(row.system);
        expect(typeof row.loadLabel).toBe('string');
        // Every column of the table is a number, except what only a proxy has for direct, and
        // the added latency, which direct has none of.
        for (const col of part.columns) {
          const directOnlyGap = row.system === 'direct' && ['cpuUsPerReq', 'rssPeakMiB', 'rssAfterMiB', 'added_p50', 'added_p99'].includes(col.key);
          // MB/s is measured for the transfers (1 MiB GET, 10 MiB POST) only.
          if (col.key === 'mbPerS' && !/MiB/.test(row.load)) continue;
          if (directOnlyGap) continue;
          expect(typeof row[col.key], `${part.key} ${row.load} ${row.system} ${col.key}`).toBe('number');
        }
      }
    }

    const byKey = Object.fromEntries(result.parts.map((p) => [p.key, p]));
    const proxied = (key: string, load: string) => byKey[key]!.summary.find((r) => r.load === load && r.system === 'portcullis-node')!;
    // The proxy's own CPU and memory are measured; the requests really went through it.
    expect(proxied('1', 'c64').cpuUsPerReq as number).toBeGreaterThan(0);
    expect(proxied('1', 'c64').rssPeakMiB as number).toBeGreaterThan(1);
    expect(proxied('1', 'c64').requests as number).toBeGreaterThan(0);
    // Overload: portcullis keeps the app at or under the cap; cap 0 rejects everything.
    for (const row of byKey['3']!.summary.filter((r) => r.system === 'portcullis-node')) expect(row.appPeak as number).toBeLessThanOrEqual(16);
    expect(byKey['3']!.summary.find((r) => r.load === 'best')!.okPerS as number).toBeGreaterThan(0);
    expect(proxied('4a', 'c64').okPerS).toBe(0);
    expect(proxied('4a', 'c64').rejectsPerS as number).toBeGreaterThan(0);
    expect(typeof proxied('4b', 'flood200').recoveryMs).toBe('number');

    // Capacity change: one row per phase and system plus the app's best per phase; the fixed
    // limit read from /stats is the cap; every run has its time series for the chart.
    // best and unloaded (direct) + the capacity shift per system but direct (it collapses, see capacity.mjs)
    const shifted = six.systems.filter((s) => s !== 'direct');
    expect(six.runs).toHaveLength(2 + shifted.length);
    for (const run of six.runs) expect(run.error, `6 ${run.load} ${run.system}: ${String(run.error)}`).toBeUndefined();
    expect(six.summary.map((r) => `${r.load} ${r.system}`)).toEqual([
      'unloaded direct',
      ...['p1', 'p2', 'p3'].flatMap((p) => [`${p}-best direct`, ...shifted.map((s) => `${p} ${s}`)]),
    ]);
    for (const row of six.summary) {
      for (const key of ['okPerS', 'goodputRatio', 'p99Ratio', 'okP99']) expect(typeof row[key], `6 ${row.load} ${row.system} ${key}`).toBe('number');
      if (row.system.startsWith('portcullis')) expect(typeof row['limit'], `6 ${row.load} ${row.system} limit`).toBe('number');
      if (row.system === 'portcullis-node') {
        expect(row['limit']).toBe(16);
        expect(row['appPeak'] as number).toBeLessThanOrEqual(16);
      }
    }
    const shift = (system: string) => six.runs.find((r) => r.load === 'shift' && r.system === system) as unknown as { series: { limit?: unknown[]; app: unknown[]; goodput: unknown[]; boundariesS: number[] } };
    expect(shift('portcullis-node').series.limit!.length).toBeGreaterThan(3);
    expect(shift('portcullis-node-adaptive').series.limit!.length).toBeGreaterThan(3);
    expect(six.runs.find((r) => r.load === 'shift' && r.system === 'direct')).toBeUndefined();
    for (const s of shifted) {
      expect(shift(s).series.boundariesS).toHaveLength(3);
      expect(shift(s).series.goodput.length).toBe(3);
      expect(shift(s).series.app.length).toBeGreaterThan(3);
    }
    // Telemetry cost: each mode measured on portcullis only.
    for (const key of ['5off', '5all', '5default']) {
      expect(byKey[key]!.summary.map((r) => r.system)).toEqual(['portcullis-node']);
      expect(proxied(key, 'c64').cpuUsPerReq as number).toBeGreaterThan(0);
    }
  });

  it('writes a markdown report with one table per part and a chart with one panel per measure', () => {
    const md = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.md'))!), 'utf8');
    for (const heading of ['## 1 · pass-through', '## 2 · fixed rate', '## 3 · overload', '## 4a · reject path', '## 4b · socket flood', '## 5 · telemetry cost: tracing off', '## 5 · telemetry cost: every request sampled', '## 5 · telemetry cost: default sampling', '## 6 · capacity change']) {
      expect(md).toContain(heading);
    }
    expect(md).toMatch(/\| load \| system \| req\/s \| MB\/s \| p50 ms \| p99 ms \| p99\.9 ms \| CPU µs\/req \| RSS MiB \|/);
    expect(md).toMatch(/\| 100 B, 64 conns \| portcullis-node \| [\d,]+ \|/);
    // The same table goes to stdout.
    expect(String(run.stdout)).toContain('| 100 B, 64 conns | portcullis-node |');

    const svg = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.svg'))!), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const title of ['1 · pass-through: requests/s', '2 · fixed rate', '3 · overload: goodput', '4a · reject path', '4b · socket flood', '5 · telemetry: CPU', '6 · capacity change: the limit in force', '6 · capacity change: goodput over time']) {
      expect(svg).toContain(title);
    }
  });

  it('leaves no process of its own behind', () => {
    const result = readResult(out);
    // Every child (app, proxies, load generators, flood helper) is started by the harness, which
    // records its PID and ends it by that PID; none may outlive the harness.
    expect(result.childPids.length).toBeGreaterThan(4);
    const alive = result.childPids.filter((pid) => existsSync(`/proc/${pid}`));
    expect(alive, `still running: ${alive.join(', ')}`).toEqual([]);
  });
});

function readResult(dir: string): Result {
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!file) throw new Error(`no JSON result in ${dir}`);
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as Result;
}
