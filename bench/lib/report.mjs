// The markdown report: a header with the date, the machine and the versions, then one table per
// scenario part (rows: load x system, medians across rounds), then notes on anything odd.

const DASH = '–';

export function fmt(v, digits = 0) {
  if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) return DASH;
  if (typeof v !== 'number') return String(v);
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function markdown(result) {
  const m = result.machine;
  const v = result.versions;
  const out = [];
  out.push(`# portcullis benchmark: ${result.name}, ${result.date}`);
  out.push('');
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB, Linux ${m.kernel}; load average at start ${m.loadavgStart.join(' ')}, at end ${m.loadavgEnd?.join(' ') ?? DASH}.`,
  );
  out.push(
    `Versions: portcullis ${v.portcullis}, Node ${v.node}, Deno ${v.deno}, nginx ${v.nginx}, HAProxy ${v.haproxy}, wrk ${v.wrk}, vegeta ${v.vegeta}.`,
  );
  const o = result.options;
  out.push(
    `Run: ${o.rounds} round(s), systems interleaved, medians shown; ${o.durationS} s per run (transfers ${o.transferS} s); ` +
      (result.pinning.enabled
        ? `proxy pinned to CPU ${result.pinning.proxy}, app + load generator to CPU ${result.pinning.load}.`
        : `no CPU pinning (${result.pinning.why}).`),
  );
  out.push(`CPU µs/req and RSS are the proxy's own processes (nginx: master + worker); "–" for direct.`);
  out.push('');
  if (result.targets?.length) {
    out.push('## Targets (issue 3)');
    out.push('');
    out.push(targetsTable(result.targets));
    out.push('');
  }
  for (const part of result.parts) {
    out.push(`## ${part.title}`);
    out.push('');
    if (part.note) {
      out.push(part.note);
      out.push('');
    }
    for (const { system, why } of part.skipped ?? []) {
      out.push(`Not run: **${system}**, ${why}.`);
      out.push('');
    }
    out.push(table(part));
    out.push('');
  }
  for (const p of result.pending) {
    out.push(`## ${p.id} · ${p.title}`);
    out.push('');
    out.push(`Not measured yet: ${p.note}.`);
    out.push('');
  }
  const logged = result.parts.flatMap((p) => Object.entries(p.logs ?? {}).map(([system, l]) => ({ part: p.key, system, ...l })));
  if (logged.length > 0) {
    out.push('## Warnings and errors the proxies logged');
    out.push('');
    for (const l of logged) {
      out.push(`- ${l.part} ${l.system}: ${l.total} line(s), first: \`${l.first[0]?.replace(/`/g, "'")}\``);
    }
    out.push('');
  }
  if (result.anomalies.length > 0) {
    out.push('## Anomalies seen during the run');
    out.push('');
    for (const a of result.anomalies) out.push(`- ${a.part} ${a.load} ${a.system} round ${a.round}: ${a.what}`);
    out.push('');
  }
  return out.join('\n');
}

export function table(part) {
  const cols = part.columns;
  const head = ['load', 'system', ...cols.map((c) => c.title)];
  // "error" where no round of that row succeeded; a row with some failed rounds shows the
  // medians of the others (the failures are listed under Anomalies).
  const rows = part.summary.map((r) => [r.loadLabel, r.system, ...cols.map((c) => (r.rounds === 0 ? 'error' : fmt(r[c.key], c.digits)))]);
  const align = ['---', '---', ...cols.map(() => '---:')];
  return [head, align, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

export function targetsTable(targets) {
  const systems = Object.keys(targets[0]?.bySystem ?? {});
  const head = ['target', 'wanted', ...systems];
  const rows = targets.map((t) => [
    t.what,
    t.threshold,
    ...systems.map((s) => {
      const { value, met } = t.bySystem[s];
      if (value === undefined) return DASH;
      const digits = t.unit === 'x' || t.unit === 'ms' ? 2 : t.unit === 'µs' ? 1 : 0;
      const shown = `${fmt(value, digits)}${t.unit === 'x' ? 'x' : t.unit === '%' ? '%' : t.unit ? ` ${t.unit}` : ''}`;
      return met === undefined ? shown : `${shown} ${met ? 'met' : 'missed'}`;
    }),
  ]);
  const align = ['---', '---', ...systems.map(() => '---:')];
  return [head, align, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
