/**
 * One running portcullis, assembled in dependency order: the running config and what follows it,
 * the data path and its two adapters (HTTP/1.1, upgrades) behind the socket gate, the stats
 * snapshot, the admin API. Nothing here answers a request; drain is the one thing it owns.
 */
import type http from 'node:http';
import type net from 'node:net';
import type { LoadedConfig } from './core/config-load.ts';
import { Admission } from './core/admission.ts';
import { ClientIdentity } from './core/client-key.ts';
import { RejectCatalogue } from './core/reject-response.ts';
import { RunningConfig, configurable } from './core/running-config.ts';
import { Stats } from './core/stats.ts';
import { DecisionTotals, TunnelTotals } from './core/totals.ts';
import { SampledLog, type Logger } from './core/log.ts';
import { LimitChangeLog } from './core/limit-log.ts';
import { DataPath } from './proxy/data-path.ts';
import { Http1, createHttp1Server } from './proxy/http1.ts';
import { RequestTargets } from './proxy/request-target.ts';
import { SlowClients } from './proxy/slow-clients.ts';
import { Upgrades } from './proxy/upgrade.ts';
import { SocketGate } from './runtime/socket-gate.ts';
import { createUpstreamPool } from './runtime/upstream.ts';
import { serveAdmin } from './runtime/admin-server.ts';
import { createAdminApp } from './admin/app.ts';
import { Telemetry } from './telemetry/telemetry.ts';

export type { ReloadResult } from './core/running-config.ts';

export interface SidecarOptions {
  loaded: LoadedConfig;
  logger: Logger;
  runtime: string;
  /** From the telemetry SDK (src/telemetry/sdk.ts); absent: no spans, no /metrics. */
  sdk?: { tracing: boolean; metricsText(): Promise<string | undefined> };
}

export interface Sidecar {
  port: number;
  adminPort: number;
  telemetry: Telemetry;
  /** The running config: `apply` a validated one in one step, `report` reload attempts (restart-only fields are the caller's business). */
  running: RunningConfig;
  /** SIGTERM: unready, serve `drain.delay`, stop accepting, finish in-flight within `drain.timeout`. */
  drain(): Promise<{ cut: number }>;
  /** A throw nothing caught (the entry point's last resort): logged (sampled) and counted like an internal error. */
  uncaught(err: unknown): void;
}

/** Probes' view of the process: ready once listening, draining from SIGTERM on. */
interface Lifecycle {
  ready: boolean;
  draining: boolean;
}

/** Everything one sidecar is made of, built in dependency order; nothing listens yet. */
function assemble(options: SidecarOptions, life: Lifecycle) {
  const { logger } = options;
  const running = new RunningConfig(options.loaded);
  const config = running.config;
  // Adaptive limits report their moves here ("limit changed", sampled per limiter).
  const limitLog = new LimitChangeLog(logger);
  const admission = new Admission(config, { changes: limitLog });
  running.follow(configurable((c) => admission.update(c)));
  const identity = new ClientIdentity(config.clientKey);
  running.follow(configurable((c) => identity.update(c.clientKey)));
  const rejects = running.follow(new RejectCatalogue(config.reject));
  const targets = running.follow(new RequestTargets(config.paths));
  const telemetry = running.follow(new Telemetry({ tracing: options.sdk?.tracing ?? false, settings: config.telemetry, configVersion: running.version }));
  running.onReload(telemetry.onReload);
  const totals = new DecisionTotals();
  const tunnels = new TunnelTotals();
  const rejectLog = new SampledLog(logger);
  const pool = createUpstreamPool(config.upstream);
  const slowClients = running.follow(new SlowClients({ settings: config.connections, log: rejectLog }));

  const path = new DataPath({ admission, telemetry, totals, rejectLog, rejects });
  const gate = running.follow(
    new SocketGate({
      connections: config.connections,
      rejects,
      identity,
      onReject: path.socketRejected,
      onEvict: (client, max) => rejectLog.note('idle socket evicted', 'evict', { client, max }),
    }),
  );
  const http1 = new Http1({ path, slots: gate, targets, identity, pool, slowClients, rejectLog });
  const { server, settings } = createHttp1Server({ http1, connections: config.connections, gate, rejectLog });
  running.follow(settings);
  const upgrades = running.follow(new Upgrades({ path, pool, tunnels, settings: config.upgrade, rejectLog, slots: gate, targets, identity }));
  server.on('upgrade', upgrades.handle);
  gate.attach(server);

  const stats = new Stats({ running, sockets: gate, limiters: () => admission.snapshot(), totals, tunnels, cuts: slowClients, path, draining: () => life.draining });
  telemetry.observe(stats);
  const admin = createAdminApp({
    ready: () => life.ready,
    draining: () => life.draining,
    stats: () => stats.snapshot(),
    config: () => running.view(),
    ...(options.sdk ? { metrics: options.sdk.metricsText } : {}),
  });
  return { running, telemetry, rejectLog, limitLog, pool, slowClients, path, gate, server, admin };
}

type Parts = ReturnType<typeof assemble>;

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const life: Lifecycle = { ready: false, draining: false };
  const parts = assemble(options, life);
  const { running, server, pool, rejectLog, limitLog } = parts;
  const admin = await serveAdmin(parts.admin, running.config.admin.host, running.config.admin.port);
  let port: number;
  try {
    port = await listen(server, running.config.listen.host, running.config.listen.port);
  } catch (err) {
    await admin.close();
    await pool.close();
    throw err;
  }
  life.ready = true;
  const flushTimer = setInterval(() => {
    rejectLog.flush();
    limitLog.flush();
  }, 1000);
  flushTimer.unref?.();
  const drain = async (): Promise<{ cut: number }> => {
    life.draining = true;
    const cut = await drainParts(parts, options.logger);
    clearInterval(flushTimer);
    rejectLog.flush();
    limitLog.flush(true);
    await Promise.allSettled([pool.destroy(), admin.close()]);
    return { cut };
  };
  return { port, adminPort: admin.port, telemetry: parts.telemetry, running, drain, uncaught: parts.path.uncaught };
}

/** Serves `drain.delay` more, then drains the data path within `drain.timeout` and closes every socket. */
async function drainParts(p: Parts, logger: Logger): Promise<number> {
  const { delay, timeout } = p.running.config.drain;
  logger.info('drain started', { delay, timeout, active: p.path.active, connections: p.gate.open });
  await sleep(delay);
  const cut = await drainDataPath(p.server, p.path, timeout);
  if (cut > 0) logger.warn('drain timeout', { cut });
  p.gate.destroyAll();
  p.slowClients.close();
  return cut;
}

/**
 * Refuses new requests, stops accepting, and waits for the data path to go idle, at most
 * `timeout` ms, closing keep-alive sockets as they go idle; then closes every connection.
 * Returns how many exchanges were cut.
 */
async function drainDataPath(server: http.Server, path: DataPath, timeout: number): Promise<number> {
  // Stop accepting; the callback would wait for every connection, which the drain handles.
  server.close();
  const cut = await path.drain(timeout, () => server.closeIdleConnections());
  server.closeAllConnections();
  return cut;
}

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
