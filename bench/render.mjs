// Re-renders the markdown report and the chart of a finished run from its JSON (after a change
// to the report or the chart, or to print a run again): `node bench/render.mjs FILE.json`
// rewrites FILE.md and FILE.svg beside it and prints the report.
import { readFileSync, writeFileSync } from 'node:fs';
import { markdown } from './lib/report.mjs';
import { chartSvg } from './lib/chart.mjs';
import { evaluateTargets } from './lib/targets.mjs';
import capacity from './scenarios/capacity.mjs';

const file = process.argv[2];
if (!file || !file.endsWith('.json')) {
  process.stderr.write('usage: node bench/render.mjs bench/results/<date>-<name>.json\n');
  process.exit(2);
}
const result = JSON.parse(readFileSync(file, 'utf8'));
// Parts whose table is built from the runs alone (scenario 6) are built again, with today's code.
for (const part of result.parts) {
  const def = capacity.parts.find((p) => p.key === part.key);
  if (def?.fromRuns) {
    def.derive(part.summary, part.runs, {}, result.options);
    part.note = def.note(result.options);
  }
}
result.targets = evaluateTargets(result);
for (const part of result.parts) {
  // Files written before reject lines were left out of the logged warnings.
  for (const [system, l] of Object.entries(part.logs ?? {})) {
    const first = l.first.filter((line) => !line.includes('"msg":"reject"'));
    if (first.length === l.first.length) continue;
    if (first.length === 0) delete part.logs[system];
    else part.logs[system] = { total: first.length, first };
  }
}
const base = file.slice(0, -'.json'.length);
const md = markdown(result) + '\n';
writeFileSync(`${base}.md`, md);
writeFileSync(`${base}.svg`, await chartSvg(result));
process.stdout.write(md);
