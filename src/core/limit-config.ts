/**
 * From a limiter's config (`max` or `adaptive`) to its limit algorithm, and on reload from one
 * algorithm to the next without dropping anything: the same adaptive algorithm is retuned in
 * place (it keeps what it learnt); fixed <-> adaptive or gradient <-> aimd replaces the
 * algorithm in the limiter (count, queue and permits stay); a new fixed max is set in place by
 * the limiter's `setLimits`, as before. Every adaptive limit is made by `createAdaptiveLimit`
 * (or the factory injected in its place) and reports its moves to the change log.
 */
import type { Clock } from './clock.ts';
import type { LimitChoice } from './config-adaptive.ts';
import { FixedLimit } from './limit-algorithm.ts';
import type { LimitAlgorithm } from './limit-algorithm.ts';
import type { LimitChanges } from './limit-log.ts';
import type { Limiter } from './limiter.ts';
import type { AdaptiveConfig, AdaptiveLimit } from './limits/adaptive.ts';
import { createAdaptiveLimit } from './limits/configure.ts';

export type AdaptiveLimitFactory = typeof createAdaptiveLimit;

export interface LimitKeeperOptions {
  clock: Clock;
  /** Default: `createAdaptiveLimit` (src/core/limits/configure.ts). */
  adaptive?: AdaptiveLimitFactory | undefined;
  changes?: LimitChanges | undefined;
}

/** 'fixed', or the adaptive algorithm's name: the `algorithm` of the change log. */
export function algorithmName(l: Limiter): string {
  return l.adaptive === undefined ? 'fixed' : l.adaptive.algorithm;
}

export class LimitKeeper {
  private readonly clock: Clock;
  private readonly make: AdaptiveLimitFactory;
  private readonly changes: LimitChanges | undefined;
  /** While a reload applies: the owner reports the net change per limiter afterwards. */
  private applying = false;

  constructor(o: LimitKeeperOptions) {
    this.clock = o.clock;
    this.make = o.adaptive ?? createAdaptiveLimit;
    this.changes = o.changes;
  }

  /** The algorithm of a new limiter named `name`; undefined for a fixed max (the limiter makes its FixedLimit from it). */
  create(name: string, c: LimitChoice): LimitAlgorithm | undefined {
    return c.adaptive === undefined ? undefined : this.adaptive(name, c.adaptive, undefined);
  }

  /**
   * A reload's limit for an existing limiter, waking no one (the reload wakes the queues once
   * everything is applied). A switch to adaptive starts a busy limiter at its current limit,
   * so the requests in flight are not suddenly far over it; an idle one starts at `initial`.
   */
  apply(l: Limiter, c: LimitChoice): void {
    const a = c.adaptive;
    const current = l.adaptive;
    if (current !== undefined && current.algorithm === a?.algorithm) return l.retune(a);
    // What a replaced algorithm still does is no limiter's business any more.
    if (current !== undefined) current.onChange = undefined;
    if (a === undefined) {
      if (current !== undefined) l.setAlgorithm(new FixedLimit(c.max), { wake: false });
      return;
    }
    l.setAlgorithm(this.adaptive(l.name, a, l.busy ? l.max : undefined), { wake: false });
  }

  /**
   * Runs a reload's `apply` calls, then reports each limiter's net change (new limit or new
   * algorithm) once, with why 'reload'; moves an algorithm reports meanwhile (a retune's clamp)
   * are part of that change.
   */
  reload<T>(limiters: Iterable<Limiter>, applyAll: () => T, after: () => Iterable<Limiter>): T {
    const before = new Map<Limiter, { max: number; algorithm: string }>();
    for (const l of limiters) before.set(l, { max: l.max, algorithm: algorithmName(l) });
    this.applying = true;
    let result: T;
    try {
      result = applyAll();
    } finally {
      this.applying = false;
    }
    if (this.changes !== undefined) {
      for (const l of after()) {
        const b = before.get(l);
        const algorithm = algorithmName(l);
        if (b !== undefined && (b.max !== l.max || b.algorithm !== algorithm)) this.changes.reloaded(l.name, algorithm, b.max, l.max);
      }
    }
    return result;
  }

  private adaptive(name: string, config: AdaptiveConfig, start: number | undefined): AdaptiveLimit {
    const limit = this.make(config, this.clock, start === undefined ? undefined : { start });
    const changes = this.changes;
    if (changes !== undefined) {
      limit.onChange = (change) => {
        if (!this.applying) changes.moved(name, limit.algorithm, change);
      };
    }
    return limit;
  }
}
