/**
 * Parses Prometheus text with the Prometheus project's own Python parser (prometheus_client,
 * installed by scripts/test), so /metrics is checked by a real consumer, not by a regex.
 */
import { execFileSync } from 'node:child_process';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
`;

export function parsePrometheus(text: string): Sample[] {
  return JSON.parse(execFileSync('python3', ['-c', PARSER], { input: text, encoding: 'utf8' })) as Sample[];
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}
