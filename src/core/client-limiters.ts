/**
 * A keyed family of per-client limiters of one name (`client`, `route:<name>:client`): one
 * limiter per client key, created on demand and dropped once idle, so the family costs
 * nothing for clients with nothing in flight. Per-client limiters never queue.
 */
import type { Clock } from './clock.ts';
import { Limiter } from './limiter.ts';
import type { LimiterKind, LimiterOptions } from './limiter.ts';

export class ClientLimiters {
  readonly name: string;
  readonly kind: LimiterKind;
  /** Limiters by client key; kept while they hold permits, even after perClient was switched off. */
  readonly members = new Map<string, Limiter>();
  /** What a new member is built from; undefined while perClient is off. */
  private options: LimiterOptions | undefined = undefined;
  private readonly clock: Clock;

  constructor(name: string, kind: LimiterKind, clock: Clock) {
    this.name = name;
    this.kind = kind;
    this.clock = clock;
  }

  get on(): boolean {
    return this.options !== undefined;
  }

  /** Takes a new perClient (0 = off); the members are resized in place, waking no one (they never queue). */
  configure(perClient: number): void {
    if (perClient <= 0) {
      this.options = undefined;
      return;
    }
    const limits = { max: perClient, queueSize: 0, queueTimeout: 0 };
    this.options = { name: this.name, kind: this.kind, limits, clock: this.clock };
    for (const l of this.members.values()) l.setLimits(limits);
  }

  /** The client's limiter if it has one (a client without one has room). */
  get(key: string): Limiter | undefined {
    return this.members.get(key);
  }

  /** The client's limiter, created when it has none. */
  obtain(key: string): Limiter {
    let l = this.members.get(key);
    if (l === undefined) {
      if (this.options === undefined) throw new Error(`${this.name}: perClient is off`);
      l = new Limiter(this.options);
      this.members.set(key, l);
    }
    return l;
  }

  /** After a release: forget the client's limiter once it holds nothing. */
  dropIfIdle(key: string): void {
    const l = this.members.get(key);
    if (l !== undefined && l.inflight <= 0) this.members.delete(key);
  }
}
