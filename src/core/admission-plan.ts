/**
 * The admission plan: each route (and "no route") compiled, once per config, to the list of
 * limiter slots a request must pass, in check order:
 *   1. `client`, 2. `route:<name>:client` — per-client limiters never queue, so a request that
 *      would be refused anyway is refused before it takes a queue slot;
 *   3. `route:<name>`, 4. `global` — the narrower queue first, so requests stuck behind a
 *      saturated route wait in that route's queue instead of filling the global one in front
 *      of other routes' requests.
 * The limiters themselves outlive configs (`LimiterSet`): kept by name and resized in place,
 * so that permits in flight and queued requests stay counted across a reload; a global or
 * route limiter's limit is a fixed max or an adaptive one (limit-config.ts switches them).
 */
import type { Clock } from './clock.ts';
import { ClientLimiters } from './client-limiters.ts';
import type { Config, InflightConfig, RouteConfig } from './config-schema.ts';
import { newDecision } from './decision.ts';
import type { Decision, Reason } from './decision.ts';
import { LimitKeeper } from './limit-config.ts';
import type { LimitKeeperOptions } from './limit-config.ts';
import { Limiter, checkLimits } from './limiter.ts';
import type { LimiterLimits } from './limiter.ts';
import { compileRoutes } from './route-match.ts';
import type { RouteMatcher } from './route-match.ts';

/** One limiter a request must pass: a fixed one, or the client's own in a keyed family. */
export class Slot {
  readonly limiter: Limiter | undefined;
  readonly family: ClientLimiters | undefined;

  constructor(of: Limiter | ClientLimiters) {
    this.limiter = of instanceof Limiter ? of : undefined;
    this.family = of instanceof ClientLimiters ? of : undefined;
  }

  get name(): string {
    return this.limiter === undefined ? (this.family as ClientLimiters).name : this.limiter.name;
  }

  /** The limiter this client would take here, if it exists yet (a client without one has room). */
  find(key: string): Limiter | undefined {
    return this.limiter ?? (this.family as ClientLimiters).get(key);
  }

  /** The limiter this client takes here, created on demand in a family. */
  obtain(key: string): Limiter {
    return this.limiter ?? (this.family as ClientLimiters).obtain(key);
  }

  /** After the client's permit here came back. */
  released(key: string): void {
    this.family?.dropIfIdle(key);
  }

  /** Why a request cannot pass `l` (this slot's limiter) while it lacks room. */
  refusal(l: Limiter): Reason {
    if (this.family !== undefined) return 'client_inflight_limit';
    return l.queueSize > 0 && l.max > 0 ? 'queue_full' : 'inflight_limit';
  }
}

export interface Plan {
  /** The route's limiters, undefined for "no route". */
  readonly route: RouteLimiters | undefined;
  readonly routeName: string | undefined;
  /** For a bypass route: the one decision it always gets (no slots). */
  readonly bypass: Decision | undefined;
  /** In check order. */
  readonly slots: readonly Slot[];
  /** The route limiter the plan was compiled with (a queued request keeps it across reloads). */
  readonly routeLimiter: Limiter | undefined;
  /** What an admit reports: the route limiter if any, else `global`. */
  readonly reporter: Limiter;
  /** The slots' limiters that can queue (route, global), for the wake after a release. */
  readonly queues: readonly Limiter[];
  /** The only slot is a fixed limiter, so the request's grant can be that limiter's permit. */
  readonly single: boolean;
}

export interface PlanParts {
  global: Limiter;
  clients: ClientLimiters;
  route: RouteLimiters | undefined;
  routeLimiter: Limiter | undefined;
}

/** The slots of one route (or of none) over the limiters that apply now. */
export function compilePlan(p: PlanParts): Plan {
  const routeName = p.route === undefined ? undefined : p.route.name;
  const slots: Slot[] = [];
  if (p.clients.on) slots.push(new Slot(p.clients));
  if (p.route !== undefined && p.route.clients.on) slots.push(new Slot(p.route.clients));
  const queues: Limiter[] = [];
  if (p.routeLimiter !== undefined) {
    slots.push(new Slot(p.routeLimiter));
    queues.push(p.routeLimiter);
  }
  slots.push(new Slot(p.global));
  queues.push(p.global);
  const single = slots.length === 1;
  return { route: p.route, routeName, bypass: undefined, slots, routeLimiter: p.routeLimiter, reporter: p.routeLimiter ?? p.global, queues, single };
}

/** A bypass route: never limited, no slots, always the same decision. */
export function bypassPlan(route: RouteLimiters, global: Limiter): Plan {
  return { route, routeName: route.name, bypass: route.bypassDecision, slots: [], routeLimiter: undefined, reporter: global, queues: [], single: false };
}

/** A route's limiters, kept across configs by route name. */
export class RouteLimiters {
  readonly name: string;
  bypass = false;
  /** `route:<name>`, when the route has inflight limits. */
  limiter: Limiter | undefined = undefined;
  /** `route:<name>:client`, on when the route's perClient > 0. */
  readonly clients: ClientLimiters;
  readonly bypassDecision: Decision;
  private readonly clock: Clock;

  constructor(name: string, clock: Clock) {
    this.name = name;
    this.clock = clock;
    this.clients = new ClientLimiters(`route:${name}:client`, 'route-client', clock);
    const d = newDecision('bypassed', undefined);
    d.route = name;
    this.bypassDecision = Object.freeze(d);
  }

  /** Takes the route's new config; a limiter that stops applying is retired, not dropped. */
  apply(r: RouteConfig, retired: Set<Limiter>, keeper: LimitKeeper): void {
    this.bypass = r.bypass;
    if (r.inflight === undefined) {
      // Its route-client limiters stay in `clients` (still listed) until their requests are done.
      if (this.limiter?.busy) retired.add(this.limiter);
      this.limiter = undefined;
      this.clients.configure(0);
      return;
    }
    const name = `route:${this.name}`;
    const limits = inflightLimits(name, r.inflight);
    if (this.limiter === undefined) {
      this.limiter = new Limiter({ name, kind: 'route', limits, clock: this.clock, algorithm: keeper.create(name, r.inflight) });
    } else {
      // The algorithm first: a switch to adaptive starts from the limit in force before this reload.
      keeper.apply(this.limiter, r.inflight);
      this.limiter.setLimits(limits);
    }
    this.clients.configure(r.inflight.perClient);
  }

  /** The route is gone: keep its busy limiters visible in stats until their requests are done. */
  retire(retired: Set<Limiter>): void {
    if (this.limiter?.busy) retired.add(this.limiter);
    for (const l of this.clients.members.values()) if (l.busy) retired.add(l);
  }
}

/** One config compiled: which plan a request gets, and the statuses of rejects. */
export interface AdmissionPlan {
  readonly match: RouteMatcher;
  /** Aligned with the matcher's indices. */
  readonly routes: readonly Plan[];
  readonly none: Plan;
  /** What rejects are answered with (reject-response.ts rejectStatus picks the status). */
  readonly reject: Config['reject'];
}

/** The queue settings, and the fixed max (for an adaptive limit its ceiling, which the limiter does not use). */
export function inflightLimits(name: string, c: InflightConfig): LimiterLimits {
  const max = c.adaptive === undefined ? c.max : c.adaptive.max;
  return checkLimits(name, { max, queueSize: c.queue.size, queueTimeout: c.queue.timeout });
}

export type LimiterSetOptions = Omit<LimitKeeperOptions, 'clock'>;

/** Every limiter admission owns, across configs: global, per route, per client, retired. */
export class LimiterSet {
  readonly global: Limiter;
  readonly clients: ClientLimiters;
  /** Routes of the current config, in config order. */
  private routes: RouteLimiters[] = [];
  /** Limiters no longer matched that still hold permits or waiters. */
  private readonly retired = new Set<Limiter>();
  private readonly clock: Clock;
  private readonly keeper: LimitKeeper;

  constructor(config: Config, clock: Clock, options: LimiterSetOptions = {}) {
    this.clock = clock;
    this.keeper = new LimitKeeper({ ...options, clock });
    const limits = inflightLimits('global', config.inflight);
    this.global = new Limiter({ name: 'global', kind: 'global', limits, clock, algorithm: this.keeper.create('global', config.inflight) });
    this.clients = new ClientLimiters('client', 'client', clock);
  }

  /**
   * Applies a config's limits in place, waking no one (the caller wakes the queues once all
   * is applied), and compiles its plans. Throws before changing anything when it is invalid.
   */
  apply(config: Config): AdmissionPlan {
    const match = compileRoutes(config.routes);
    const globalLimits = inflightLimits('global', config.inflight);
    for (const r of config.routes) if (r.inflight !== undefined) inflightLimits(`route:${r.name}`, r.inflight);

    const routes = this.keeper.reload(this.queues(), () => this.applyLimits(config, globalLimits), () => this.queues());
    return {
      match,
      routes: routes.map((s) => (s.bypass ? bypassPlan(s, this.global) : this.plan(s, s.limiter))),
      none: this.plan(undefined, undefined),
      reject: config.reject,
    };
  }

  /** Every limiter to its new limits, waking no one; returns the routes' limiters in config order. */
  private applyLimits(config: Config, globalLimits: LimiterLimits): RouteLimiters[] {
    // The algorithm first: a switch to adaptive starts from the limit in force before this reload.
    this.keeper.apply(this.global, config.inflight);
    this.global.setLimits(globalLimits);
    this.clients.configure(config.inflight.perClient);
    const byName = new Map(this.routes.map((s) => [s.name, s]));
    const routes = config.routes.map((r) => {
      const s = byName.get(r.name) ?? new RouteLimiters(r.name, this.clock);
      byName.delete(r.name);
      s.apply(r, this.retired, this.keeper);
      return s;
    });
    for (const gone of byName.values()) gone.retire(this.retired);
    this.routes = routes;
    return routes;
  }

  /** A plan over the limiters that apply now, with the given route limiter (a queued request keeps its own). */
  plan(route: RouteLimiters | undefined, routeLimiter: Limiter | undefined): Plan {
    return compilePlan({ global: this.global, clients: this.clients, route, routeLimiter });
  }

  /** The limiters that can hold queued requests: global, the routes', retired route limiters. */
  queues(): Limiter[] {
    const queues = [this.global];
    for (const s of this.routes) if (s.limiter !== undefined) queues.push(s.limiter);
    for (const l of this.retired) if (l.kind === 'route') queues.push(l);
    return queues;
  }

  *all(): IterableIterator<Limiter> {
    yield this.global;
    for (const s of this.routes) {
      if (s.limiter !== undefined) yield s.limiter;
      yield* s.clients.members.values();
    }
    yield* this.clients.members.values();
    for (const l of this.retired) {
      if (!l.busy) this.retired.delete(l);
      else yield l;
    }
  }
}
