/**
 * One base error for everything portcullis raises on purpose. `code` is stable (tests and
 * operators grep for it); `cause` keeps the underlying error. Errors become HTTP statuses
 * only at the HTTP edge (src/proxy), never here.
 */
/** CONFIG_INVALID: a config file or override failed validation. USAGE: the command line or an input document is wrong. */
export type ErrorCode = 'CONFIG_INVALID' | 'USAGE';

export class PortcullisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortcullisError';
    this.code = code;
  }
}

/** One problem in a config file: where it is (`routes[2].inflight.max`, line:column when known) and what is wrong. */
export interface ConfigProblem {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class ConfigError extends PortcullisError {
  readonly problems: readonly ConfigProblem[];
  readonly source: string;
  constructor(source: string, problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super('CONFIG_INVALID', `${source}: ${problems.length} problem(s)\n${formatProblems(source, problems)}`, options);
    this.name = 'ConfigError';
    this.problems = problems;
    this.source = source;
  }
}

export function formatProblems(source: string, problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  ${formatProblem(source, p)}`).join('\n');
}

/** One problem on one line, compiler style: `file.yaml:12:7: routes[2].inflight.max: must be >= 0, got -1`. */
export function formatProblem(source: string, p: ConfigProblem): string {
  const where = p.line !== undefined ? `${source}:${p.line}:${p.column ?? 1}: ` : `${source}: `;
  return `${where}${p.path || '(root)'}: ${p.message}`;
}
