/**
 * The admission decision for one request over every limiter that applies to it: `global`,
 * the first matching route's `route:<name>`, and, when switched on, the per-client `client`
 * and `route:<name>:client`. A request is admitted only when all of them have room, and takes
 * them all in one synchronous step; while it waits it holds nothing.
 *
 * Check order, first blocker decides:
 *   1. `client`, 2. `route:<name>:client` — per-client limiters never queue, so a request that
 *      would be refused anyway is refused before it takes a queue slot;
 *   3. `route:<name>`, 4. `global` — the narrower queue first, so requests stuck behind a
 *      saturated route wait in that route's queue instead of filling the global one in front
 *      of other routes' requests.
 * A waiter woken from one queue retries all its limiters in the same order; if another one
 * lacks room it moves to the tail of that one's queue, keeping the earlier deadline.
 *
 * Invariant kept throughout: a queueing limiter with room has an empty queue (every release or
 * raise of a max drains the queue at once), so `hasRoom()` alone never lets a newcomer overtake.
 */
import type { Clock } from './clock.ts';
import { systemClock } from './clock.ts';
import type { Config, InflightConfig, RouteConfig } from './config-schema.ts';
import { Limiter, QueueEntry, checkLimits } from './limiter.ts';
import type { LimiterLimits, LimiterSnapshot } from './limiter.ts';
import { compileRoutes } from './route-match.ts';
import type { RequestInfo, RouteMatcher } from './route-match.ts';

export type { RequestInfo } from './route-match.ts';

export type Reason =
  | 'connection_limit'
  | 'client_connection_limit'
  | 'inflight_limit'
  | 'client_inflight_limit'
  | 'queue_full'
  | 'queue_timeout'
  | 'draining';

export interface Grant {
  /** Releases every permit of the request, exactly once; later calls do nothing. */
  release(): void;
}

export interface Decision {
  decision: 'admitted' | 'rejected' | 'bypassed';
  /** Set for rejects, including dry-run would-be rejects. */
  reason: Reason | undefined;
  /** The limiter that decided; for admitted requests the route limiter if any, else `global`. */
  limiter: string | undefined;
  /** That limiter's max, and its in-flight count: found (reject) or including this request (admitted). */
  limit: number;
  inflight: number;
  /** Queue length found on arrival (0 when not queued). */
  queueDepth: number;
  queueWaitMs: number;
  route: string | undefined;
  /** HTTP status of a reject (also of a dry-run would-be reject), 0 otherwise. */
  status: number;
  /** Decided under dry run: reported, not enforced. */
  dryRun: boolean;
  /** Present when the request may go on (admitted, or any non-bypass decision in dry run). */
  grant: Grant | undefined;
}

export interface PendingDecision {
  readonly pending: true;
  /** Resolves with the decision once admitted, timed out or refused; null after `cancel()`. */
  readonly promise: Promise<Decision | null>;
  /**
   * The client went away: leave the queue, resolve null, hold nothing. If the request was
   * admitted already (the promise resolved but was not consumed yet) its grant is released.
   */
  cancel(): void;
}

export interface AdmissionOptions {
  clock?: Clock;
}

export class Admission {
  private readonly state: AdmissionState;

  constructor(config: Config, options: AdmissionOptions = {}) {
    this.state = new AdmissionState(config, options.clock ?? systemClock);
  }

  /** Synchronous decision; a PendingDecision only when the request was queued. */
  admit(req: RequestInfo): Decision | PendingDecision {
    return this.state.admit(req);
  }

  /**
   * Live reload in one step: limiters are resized in place by name; a new route gets a new
   * limiter; a removed route is no longer matched but its limiter keeps counting its in-flight
   * requests and keeps its queued waiters until they are admitted or time out.
   */
  update(config: Config): void {
    this.state.update(config);
  }

  /** The live limiters: global, routes, per-client ones, and retired ones still busy. */
  limiters(): Iterable<Limiter> {
    return this.state.limiters();
  }

  snapshot(): LimiterSnapshot[] {
    return Array.from(this.state.limiters(), (l) => l.snapshot());
  }
}

/** Per-client limiters never queue. */
function clientLimits(perClient: number): LimiterLimits | undefined {
  return perClient > 0 ? { max: perClient, queueSize: 0, queueTimeout: 0 } : undefined;
}

function inflightLimits(name: string, c: Pick<InflightConfig, 'max' | 'queue'>): LimiterLimits {
  return checkLimits(name, { max: c.max, queueSize: c.queue.size, queueTimeout: c.queue.timeout });
}

function makeDecision(
  decision: Decision['decision'],
  reason: Reason | undefined,
  limiter: Limiter | undefined,
  queueDepth: number,
  queueWaitMs: number,
  route: string | undefined,
  status: number,
  dryRun: boolean,
  grant: Grant | undefined,
): Decision {
  // One literal with a fixed key order keeps every Decision the same hidden class.
  return {
    decision,
    reason,
    limiter: limiter === undefined ? undefined : limiter.name,
    limit: limiter === undefined ? 0 : limiter.max,
    inflight: limiter === undefined ? 0 : limiter.inflight,
    queueDepth,
    queueWaitMs,
    route,
    status,
    dryRun,
    grant,
  };
}

/** Dry run: how many requests over max the limiter is, standing in for its queue length. */
function overMax(l: Limiter | undefined): number {
  return l === undefined || l.hasRoom() ? 0 : l.inflight - l.max;
}

/** Dry run: a full limiter would have queued the request while less than queueSize over max. */
function wouldQueue(l: Limiter): boolean {
  return l.max > 0 && l.inflight - l.max < l.queueSize;
}

/** Why a request cannot pass a limiter that lacks room. */
function refusal(l: Limiter): Reason {
  if (l.kind === 'client' || l.kind === 'route-client') return 'client_inflight_limit';
  return l.queueSize > 0 && l.max > 0 ? 'queue_full' : 'inflight_limit';
}

class RouteState {
  readonly name: string;
  bypass = false;
  /** `route:<name>`, when the route has inflight limits. */
  limiter: Limiter | undefined = undefined;
  /** Limits of `route:<name>:client`, when the route's perClient > 0. */
  clientLimits: LimiterLimits | undefined = undefined;
  readonly clientName: string;
  readonly clients = new Map<string, Limiter>();
  readonly bypassDecision: Decision;

  constructor(name: string) {
    this.name = name;
    this.clientName = `route:${name}:client`;
    this.bypassDecision = Object.freeze(makeDecision('bypassed', undefined, undefined, 0, 0, name, 0, false, undefined));
  }

  /** Takes the route's new config; a limiter that stops applying is retired, not dropped. */
  apply(r: RouteConfig, clock: Clock, retired: Set<Limiter>): void {
    this.bypass = r.bypass;
    if (r.inflight === undefined) {
      // Its route-client limiters stay in `clients` (still listed) until their requests are done.
      if (this.limiter?.busy) retired.add(this.limiter);
      this.limiter = undefined;
      this.clientLimits = undefined;
      return;
    }
    const limits = inflightLimits(`route:${this.name}`, r.inflight);
    if (this.limiter === undefined) this.limiter = new Limiter(`route:${this.name}`, 'route', limits, clock);
    else this.limiter.setLimits(limits);
    this.clientLimits = clientLimits(r.inflight.perClient);
    if (this.clientLimits !== undefined) for (const l of this.clients.values()) l.setLimits(this.clientLimits);
  }

  /** The route is gone: keep its busy limiters visible in stats until their requests are done. */
  retire(retired: Set<Limiter>): void {
    if (this.limiter?.busy) retired.add(this.limiter);
    for (const l of this.clients.values()) if (l.busy) retired.add(l);
  }
}

class RequestGrant implements Grant {
  private held = true;
  constructor(
    private readonly global: Limiter,
    private readonly route: Limiter | undefined,
    private readonly client: Limiter | undefined,
    private readonly clientMap: Map<string, Limiter>,
    private readonly routeClient: Limiter | undefined,
    private readonly routeClientMap: Map<string, Limiter> | undefined,
    private readonly key: string,
  ) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    // Give everything back before anyone retries, so a waiter does not find this request's
    // global permit still held after its route permit came free.
    this.global.releaseUnchecked();
    this.route?.releaseUnchecked();
    const c = this.client;
    if (c !== undefined) {
      c.releaseUnchecked();
      if (c.inflight <= 0 && this.clientMap.get(this.key) === c) this.clientMap.delete(this.key);
    }
    const rc = this.routeClient;
    if (rc !== undefined) {
      rc.releaseUnchecked();
      if (rc.inflight <= 0 && this.routeClientMap?.get(this.key) === rc) this.routeClientMap.delete(this.key);
    }
    wakeOldestFirst(this.route, this.global);
  }
}

/** Wakes two queues, always the older head first, until neither has room and a waiter. */
function wakeOldestFirst(a: Limiter | undefined, b: Limiter): void {
  for (;;) {
    const ha = a !== undefined && a.hasRoom() ? a.peek() : undefined;
    const hb = b.hasRoom() ? b.peek() : undefined;
    if (ha !== undefined && (hb === undefined || ha.order < hb.order)) (a as Limiter).wakeOne();
    else if (hb !== undefined) b.wakeOne();
    else return;
  }
}

class Waiter extends QueueEntry implements PendingDecision {
  readonly pending = true;
  readonly promise: Promise<Decision | null>;
  /** Set once the decision is out; a late cancel() releases it. */
  grant: Grant | undefined = undefined;
  settled = false;
  private settle: (d: Decision | null) => void = () => {};

  constructor(
    private readonly owner: AdmissionState,
    order: number,
    readonly arrival: number,
    readonly route: RouteState | undefined,
    readonly routeLimiter: Limiter | undefined,
    readonly client: string,
    readonly queueDepth: number,
  ) {
    super(order);
    this.promise = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  onRoom(from: Limiter): void {
    this.owner.retry(this, from);
  }

  onDeadline(from: Limiter): void {
    this.owner.finish(this, 'rejected', 'queue_timeout', from, this.owner.clock.now(), undefined);
  }

  resolve(d: Decision | null): void {
    if (this.settled) return;
    this.settled = true;
    this.grant = d?.grant;
    this.settle(d);
  }

  cancel(): void {
    if (this.queue !== undefined) {
      this.queue.remove(this);
      this.resolve(null);
    } else if (this.settled) this.grant?.release();
  }
}

class AdmissionState {
  readonly clock: Clock;
  private readonly global: Limiter;
  private clientLimits: LimiterLimits | undefined = undefined;
  private readonly clients = new Map<string, Limiter>();
  /** Aligned with the matcher's indices. */
  private routes: RouteState[] = [];
  private byName = new Map<string, RouteState>();
  /** Limiters no longer matched that still hold permits or waiters. */
  private readonly retired = new Set<Limiter>();
  private match: RouteMatcher = () => -1;
  private status = 503;
  private clientStatus = 429;
  private dryRun = false;
  private order = 0;

  constructor(config: Config, clock: Clock) {
    this.clock = clock;
    this.global = new Limiter('global', 'global', inflightLimits('global', config.inflight), clock);
    this.update(config);
  }

  admit(req: RequestInfo): Decision | PendingDecision {
    const i = this.match(req);
    const route = i < 0 ? undefined : this.routes[i];
    if (route === undefined) return this.admitTo(undefined, undefined, req.client);
    if (route.bypass) return route.bypassDecision;
    return this.admitTo(route, route.limiter, req.client);
  }

  private admitTo(route: RouteState | undefined, routeLimiter: Limiter | undefined, client: string): Decision | PendingDecision {
    if (this.dryRun) return this.admitDry(route, routeLimiter, client);
    const routeName = route === undefined ? undefined : route.name;
    const blocker = this.blocker(route, routeLimiter, client);
    if (blocker === undefined) {
      const grant = this.acquire(route, routeLimiter, client);
      return makeDecision('admitted', undefined, routeLimiter ?? this.global, 0, 0, routeName, 0, false, grant);
    }
    const reason = refusal(blocker);
    if (reason === 'client_inflight_limit') {
      return makeDecision('rejected', reason, blocker, 0, 0, routeName, this.clientStatus, false, undefined);
    }
    if (!blocker.canQueue()) return makeDecision('rejected', reason, blocker, blocker.queued, 0, routeName, this.status, false, undefined);
    const now = this.clock.now();
    const w = new Waiter(this, ++this.order, now, route, routeLimiter, client, blocker.queued);
    blocker.enqueue(w, now + blocker.queueTimeout);
    return w;
  }

  /**
   * Dry run: decide as if enforcing, but let everything through and count it (a grant is
   * always given, so in-flight counts stay meaningful and may exceed max). Nothing queues:
   * a full limiter with a queue counts the requests over its max as its would-be queue, so a
   * request is a would-be admit while it is less than queueSize over max (queueDepth = how
   * far over max it found the limiter) and a would-be queue_full beyond.
   */
  private admitDry(route: RouteState | undefined, routeLimiter: Limiter | undefined, client: string): Decision {
    const routeName = route === undefined ? undefined : route.name;
    let blocker: Limiter | undefined;
    let depth = 0;
    const c = this.clientLimits === undefined ? undefined : this.clients.get(client);
    const rc = route === undefined || route.clientLimits === undefined ? undefined : route.clients.get(client);
    if (c !== undefined && !c.hasRoom()) blocker = c;
    else if (rc !== undefined && !rc.hasRoom()) blocker = rc;
    else if (routeLimiter !== undefined && !routeLimiter.hasRoom() && !wouldQueue(routeLimiter)) blocker = routeLimiter;
    else if (!this.global.hasRoom() && !wouldQueue(this.global)) blocker = this.global;
    else depth = Math.max(overMax(routeLimiter), overMax(this.global));
    let d: Decision;
    if (blocker === undefined) {
      const grant = this.acquire(route, routeLimiter, client);
      d = makeDecision('admitted', undefined, routeLimiter ?? this.global, depth, 0, routeName, 0, true, grant);
    } else {
      const reason = refusal(blocker);
      const status = reason === 'client_inflight_limit' ? this.clientStatus : this.status;
      // Report the counts found, as an enforced reject would, then let it through anyway.
      d = makeDecision('rejected', reason, blocker, reason === 'queue_full' ? blocker.inflight - blocker.max : 0, 0, routeName, status, true, undefined);
      d.grant = this.acquire(route, routeLimiter, client);
    }
    return d;
  }

  /** The first limiter, in check order, that lacks room; undefined when all have room. */
  private blocker(route: RouteState | undefined, routeLimiter: Limiter | undefined, client: string): Limiter | undefined {
    if (this.clientLimits !== undefined) {
      const l = this.clients.get(client);
      if (l !== undefined && !l.hasRoom()) return l;
    }
    if (route !== undefined && route.clientLimits !== undefined) {
      const l = route.clients.get(client);
      if (l !== undefined && !l.hasRoom()) return l;
    }
    if (routeLimiter !== undefined && !routeLimiter.hasRoom()) return routeLimiter;
    if (!this.global.hasRoom()) return this.global;
    return undefined;
  }

  /** Takes every applicable limiter in one step; the caller has checked room (or is in dry run). */
  private acquire(route: RouteState | undefined, routeLimiter: Limiter | undefined, client: string): Grant {
    let c: Limiter | undefined;
    if (this.clientLimits !== undefined) {
      c = this.clients.get(client);
      if (c === undefined) {
        c = new Limiter('client', 'client', this.clientLimits, this.clock);
        this.clients.set(client, c);
      }
      c.acquireUnchecked();
    }
    let rc: Limiter | undefined;
    if (route !== undefined && route.clientLimits !== undefined) {
      rc = route.clients.get(client);
      if (rc === undefined) {
        rc = new Limiter(route.clientName, 'route-client', route.clientLimits, this.clock);
        route.clients.set(client, rc);
      }
      rc.acquireUnchecked();
    }
    routeLimiter?.acquireUnchecked();
    this.global.acquireUnchecked();
    return new RequestGrant(this.global, routeLimiter, c, this.clients, rc, route?.clients, client);
  }

  /**
   * `w` was taken off `from`'s queue because `from` has room: try all its limiters again. The
   * route limiter is the one it arrived with (a reload may have retired it); per-client limits
   * are the current ones.
   */
  retry(w: Waiter, from: Limiter): void {
    const now = this.clock.now();
    // A late timer must not let a waiter in after its deadline.
    if (now >= w.deadline) return this.finish(w, 'rejected', 'queue_timeout', from, now, undefined);
    if (this.dryRun) return this.finish(w, 'admitted', undefined, w.routeLimiter ?? this.global, now, this.acquire(w.route, w.routeLimiter, w.client));
    const blocker = this.blocker(w.route, w.routeLimiter, w.client);
    if (blocker === undefined) {
      const grant = this.acquire(w.route, w.routeLimiter, w.client);
      return this.finish(w, 'admitted', undefined, w.routeLimiter ?? this.global, now, grant);
    }
    const reason = refusal(blocker);
    if (reason === 'client_inflight_limit' || !blocker.canQueue()) return this.finish(w, 'rejected', reason, blocker, now, undefined);
    const deadline = Math.min(w.deadline, w.arrival + blocker.queueTimeout);
    if (deadline <= now) return this.finish(w, 'rejected', 'queue_timeout', blocker, now, undefined);
    blocker.enqueue(w, deadline);
  }

  finish(w: Waiter, decision: 'admitted' | 'rejected', reason: Reason | undefined, limiter: Limiter, now: number, grant: Grant | undefined): void {
    const status = reason === undefined ? 0 : reason === 'client_inflight_limit' ? this.clientStatus : this.status;
    const routeName = w.route === undefined ? undefined : w.route.name;
    // Only an admit can happen under dry run (the queue is let through when it is switched on).
    const dryRun = decision === 'admitted' && this.dryRun;
    w.resolve(makeDecision(decision, reason, limiter, w.queueDepth, now - w.arrival, routeName, status, dryRun, grant));
  }

  update(config: Config): void {
    // Everything that can throw comes first, so a bad config changes nothing.
    const match = compileRoutes(config.routes);
    const globalLimits = inflightLimits('global', config.inflight);
    for (const r of config.routes) if (r.inflight !== undefined) inflightLimits(`route:${r.name}`, r.inflight);

    this.global.setLimits(globalLimits);
    this.clientLimits = clientLimits(config.inflight.perClient);
    if (this.clientLimits !== undefined) for (const l of this.clients.values()) l.setLimits(this.clientLimits);
    const routes: RouteState[] = [];
    const byName = new Map<string, RouteState>();
    for (const r of config.routes) {
      const s = this.byName.get(r.name) ?? new RouteState(r.name);
      s.apply(r, this.clock, this.retired);
      routes.push(s);
      byName.set(r.name, s);
    }
    for (const [name, s] of this.byName) if (!byName.has(name)) s.retire(this.retired);
    this.routes = routes;
    this.byName = byName;
    this.match = match;
    this.status = config.reject.status;
    this.clientStatus = config.reject.clientStatus;
    const wasDry = this.dryRun;
    this.dryRun = config.dryRun;

    const queues = [this.global];
    for (const s of routes) if (s.limiter !== undefined) queues.push(s.limiter);
    for (const l of this.retired) if (l.kind === 'route') queues.push(l);
    if (this.dryRun && !wasDry) this.releaseAllDry(queues);
    else this.wakeAll(queues);
  }

  /** After the limits changed: wake every queue with room, oldest head first across queues. */
  private wakeAll(queues: Limiter[]): void {
    for (;;) {
      let best: Limiter | undefined;
      let bestOrder = Infinity;
      for (const l of queues) {
        const h = l.hasRoom() ? l.peek() : undefined;
        if (h !== undefined && h.order < bestOrder) {
          best = l;
          bestOrder = h.order;
        }
      }
      if (best === undefined) return;
      best.wakeOne();
    }
  }

  /** Switching to dry run lets everyone queued through at once: dry run never holds a request. */
  private releaseAllDry(queues: Limiter[]): void {
    const now = this.clock.now();
    for (const l of queues) {
      for (let e = l.dequeue(); e !== undefined; e = l.dequeue()) {
        const w = e as Waiter;
        this.finish(w, 'admitted', undefined, w.routeLimiter ?? this.global, now, this.acquire(w.route, w.routeLimiter, w.client));
      }
    }
  }

  *limiters(): IterableIterator<Limiter> {
    yield this.global;
    for (const s of this.routes) {
      if (s.limiter !== undefined) yield s.limiter;
      yield* s.clients.values();
    }
    yield* this.clients.values();
    for (const l of this.retired) {
      if (!l.busy) this.retired.delete(l);
      else yield l;
    }
  }
}
