/**
 * Structured JSON-lines logging. Nothing below the entry point writes to the console; it is
 * handed a Logger. Every line has `time`, `level` and `msg`; `msg` values are fixed strings an
 * operator can grep ("portcullis started", "reject", "config reloaded", ...).
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(options: { write: (line: string) => void; level?: Level; now?: () => Date }): Logger {
  const min = ORDER[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (ORDER[level] < min) return;
    options.write(JSON.stringify({ time: now().toISOString(), level, msg, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Logs a kind of event (a reject reason, an upstream fault, a bad request) at most once per
 * interval per kind, with how many were folded into the line, so a flood costs a counter
 * increment, not a write. Every line carries `count` (1 + the events folded into it).
 */
export class SampledLog {
  private readonly pending = new Map<string, { msg: string; count: number; last: Fields; level: 'warn' | 'error' }>();
  private readonly lastAt = new Map<string, number>();
  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A reject: `{"msg":"reject","reason":...}`. */
  reject(reason: string, fields: Fields): void {
    this.note('reject', reason, { reason, ...fields });
  }

  /** Any other sampled event; `key` names the kind that is rate-limited. */
  note(msg: string, key: string, fields: Fields, level: 'warn' | 'error' = 'warn'): void {
    const k = `${msg}\0${key}`;
    const t = this.now();
    const last = this.lastAt.get(k);
    const p = this.pending.get(k);
    if (last === undefined || t - last >= this.intervalMs) {
      this.lastAt.set(k, t);
      const folded = p ? p.count : 0;
      this.pending.delete(k);
      this.logger[level](msg, { ...fields, count: folded + 1 });
      return;
    }
    if (p) {
      p.count++;
      p.last = fields;
    } else this.pending.set(k, { msg, count: 1, last: fields, level });
  }

  /** Writes what is still folded (called on a timer and at shutdown). */
  flush(): void {
    const t = this.now();
    for (const [k, p] of this.pending) {
      this.lastAt.set(k, t);
      this.logger[p.level](p.msg, { ...p.last, count: p.count });
    }
    this.pending.clear();
  }
}
