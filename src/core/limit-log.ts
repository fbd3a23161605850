/**
 * The "limit changed" log line: `{limiter, algorithm, from, to, why, changes}`. An adaptive
 * limit may move on every released request, so its moves are folded: at most one line per
 * limiter per interval (1 s), `changes` saying how many moves it stands for (`from` of the first,
 * `to` and `why` of the last). What was folded is written by the next move once the interval has
 * passed, or by `flush()`, which the entry point calls on the timer it already runs for the
 * sampled reject log: no timer per limiter, one clock read and a map lookup per move. A reload's
 * change is written at once (after what was folded before it).
 */
import type { Logger } from './log.ts';
import type { LimitChange, LimitChangeReason } from './limits/adaptive.ts';

/** What the limiters' owner reports (admission-plan.ts); `algorithm` is 'fixed' or the adaptive one's name. */
export interface LimitChanges {
  /** An adaptive algorithm moved `limiter`'s limit. */
  moved(limiter: string, algorithm: string, change: LimitChange): void;
  /** A reload changed `limiter`'s limit or its algorithm. */
  reloaded(limiter: string, algorithm: string, from: number, to: number): void;
}

class Entry {
  /** When the last line for this limiter was written; -Infinity before any. */
  lastAt = -Infinity;
  /** Moves folded since that line (0: none pending). */
  changes = 0;
  algorithm = '';
  from = 0;
  to = 0;
  why: LimitChangeReason = 'reload';

  constructor(readonly limiter: string) {}
}

export class LimitChangeLog implements LimitChanges {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  moved(limiter: string, algorithm: string, change: LimitChange): void {
    const e = this.entry(limiter);
    const t = this.now();
    if (e.changes === 0) e.from = change.from;
    e.changes++;
    e.algorithm = algorithm;
    e.to = change.to;
    e.why = change.why;
    if (t - e.lastAt >= this.intervalMs) this.write(e, t);
  }

  reloaded(limiter: string, algorithm: string, from: number, to: number): void {
    const e = this.entry(limiter);
    const t = this.now();
    if (e.changes > 0) this.write(e, t);
    e.changes = 1;
    e.algorithm = algorithm;
    e.from = from;
    e.to = to;
    e.why = 'reload';
    this.write(e, t);
  }

  /** Writes what was folded and is due (all of it with `all`, at shutdown). */
  flush(all = false): void {
    const t = this.now();
    for (const e of this.entries.values()) if (e.changes > 0 && (all || t - e.lastAt >= this.intervalMs)) this.write(e, t);
  }

  private entry(limiter: string): Entry {
    let e = this.entries.get(limiter);
    if (e === undefined) {
      e = new Entry(limiter);
      this.entries.set(limiter, e);
    }
    return e;
  }

  private write(e: Entry, t: number): void {
    this.logger.info('limit changed', { limiter: e.limiter, algorithm: e.algorithm, from: e.from, to: e.to, why: e.why, changes: e.changes });
    e.lastAt = t;
    e.changes = 0;
  }
}
