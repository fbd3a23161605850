/**
 * `portcullis check FILE` and `portcullis schema`. They take text and return text and an exit
 * code; the entry point reads the file and writes the output, so these stay runtime-free.
 */
import { parseConfigText } from '../core/config-load.ts';
import { configJsonSchema, type Config } from '../core/config-schema.ts';
import type { AdaptiveConfig } from '../core/limits/adaptive.ts';
import { ConfigError, formatProblem } from '../core/errors.ts';

export interface CommandResult {
  exitCode: 0 | 1;
  /** Ends with a newline. */
  output: string;
}

/**
 * Validates config text like `nginx -t`: `OK: <path> (version <v>)` and a line per adaptive
 * limiter with its resolved parameters, or every problem on its own line as
 * `<path>:<line>:<col>: routes[2].inflight.max: must be >= 0, got -1` and a summary.
 */
export function checkCommand(text: string, path: string): CommandResult {
  try {
    const { config, version } = parseConfigText(text, path);
    const routes = config.routes.length === 1 ? '1 route' : `${config.routes.length} routes`;
    const lines = [`OK: ${path} (version ${version}, ${routes})`];
    for (const [name, a] of adaptiveLimiters(config)) lines.push(`  ${name}: ${describeAdaptive(a)}`);
    return { exitCode: 0, output: `${lines.join('\n')}\n` };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const n = err.problems.length;
    const lines = err.problems.map((p) => formatProblem(path, p));
    lines.push(`FAILED: ${path}: ${n} problem${n === 1 ? '' : 's'}`);
    return { exitCode: 1, output: `${lines.join('\n')}\n` };
  }
}

/** The limiters whose limit is adaptive, by limiter name, in config order. */
function adaptiveLimiters(config: Config): [string, AdaptiveConfig][] {
  const out: [string, AdaptiveConfig][] = [];
  if (config.inflight.adaptive !== undefined) out.push(['global', config.inflight.adaptive]);
  for (const r of config.routes) if (r.inflight?.adaptive !== undefined) out.push([`route:${r.name}`, r.inflight.adaptive]);
  return out;
}

/** `adaptive gradient: limit 4..1000, starts at 20; tolerance 1.5, backoff 0.9, minRttWindow 30000ms`. */
function describeAdaptive(a: AdaptiveConfig): string {
  const tuning = a.algorithm === 'gradient' ? `tolerance ${a.tolerance}, backoff ${a.backoff}, minRttWindow ${a.minRttWindow}ms` : `backoff ${a.backoff}, timeout ${a.timeout}ms`;
  return `adaptive ${a.algorithm}: limit ${a.min}..${a.max}, starts at ${a.initial}; ${tuning}`;
}

/** The JSON Schema of the config file, as committed in schema/portcullis.schema.json. */
export function schemaCommand(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
