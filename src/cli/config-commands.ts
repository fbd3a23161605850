/**
 * `portcullis check FILE` and `portcullis schema`. They take text and return text and an exit
 * code; the entry point reads the file and writes the output, so these stay runtime-free.
 */
import { parseConfigText } from '../core/config-load.ts';
import { configJsonSchema } from '../core/config-schema.ts';
import { ConfigError, formatProblem } from '../core/errors.ts';

export interface CommandResult {
  exitCode: 0 | 1;
  /** Ends with a newline. */
  output: string;
}

/**
 * Validates config text like `nginx -t`: `OK: <path> (version <v>)`, or every problem on its own
 * line as `<path>:<line>:<col>: routes[2].inflight.max: must be >= 0, got -1` and a summary.
 */
export function checkCommand(text: string, path: string): CommandResult {
  try {
    const { config, version } = parseConfigText(text, path);
    const routes = config.routes.length === 1 ? '1 route' : `${config.routes.length} routes`;
    return { exitCode: 0, output: `OK: ${path} (version ${version}, ${routes})\n` };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const n = err.problems.length;
    const lines = err.problems.map((p) => formatProblem(path, p));
    lines.push(`FAILED: ${path}: ${n} problem${n === 1 ? '' : 's'}`);
    return { exitCode: 1, output: `${lines.join('\n')}\n` };
  }
}

/** The JSON Schema of the config file, as committed in schema/portcullis.schema.json. */
export function schemaCommand(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
