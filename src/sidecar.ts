/**
 * One running portcullis: the socket gate, the HTTP server with the proxy handler, the upstream
 * pool, the admin API; and the two things that touch all of them: live update and drain.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Config } from './core/config-schema.ts';
import type { LoadedConfig } from './core/config-load.ts';
import { Admission } from './core/admission.ts';
import { ClientIdentity } from './core/client-key.ts';
import { buildRejectResponses } from './core/reject-response.ts';
import { bareMessage, parseErrorStatus } from './core/wire.ts';
import { DecisionTotals, TunnelTotals } from './core/totals.ts';
import { summarizeLimiters } from './core/limiter-summary.ts';
import { SampledLog, type Logger } from './core/log.ts';
import { Proxy } from './proxy/proxy.ts';
import { Upgrades } from './proxy/upgrade.ts';
import { SlowClients } from './proxy/slow-clients.ts';
import { SocketGate } from './runtime/socket-gate.ts';
import { createUpstreamPool } from './runtime/upstream.ts';
import { serveAdmin, type AdminServer } from './runtime/admin-server.ts';
import { createAdminApp } from './admin/app.ts';
import { Telemetry } from './telemetry/telemetry.ts';
import { createPathNormalizer } from './core/path-normalize.ts';

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
  /** Applies a validated config in one step (restart-only fields are the caller's business). */
  update(loaded: LoadedConfig): void;
  /** Records the outcome of a reload attempt, for /config. */
  setLastReload(result: ReloadResult): void;
  /** SIGTERM: unready, serve `drain.delay`, stop accepting, finish in-flight within `drain.timeout`. */
  drain(): Promise<{ cut: number }>;
  /** A throw nothing caught (the entry point's last resort): logged (sampled) and counted like an internal error. */
  uncaught(err: unknown): void;
}

export interface ReloadResult {
  at: string;
  result: 'applied' | 'unchanged' | 'invalid' | 'restart_required';
  version?: string;
  error?: string;
  problems?: unknown[];
}

/** Node checks header and keep-alive timeouts on this interval; slowloris is cut at most this late. */
function checkingInterval(c: Config['connections']): number {
  return Math.max(50, Math.min(1000, Math.floor(c.headerTimeout / 4)));
}

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { logger } = options;
  let loaded = options.loaded;
  let config = loaded.config;
  let lastReload: ReloadResult | undefined;
  let draining = false;
  let ready = false;

  const admission = new Admission(config);
  const identity = new ClientIdentity(config.clientKey);
  let rejects = buildRejectResponses(config.reject);
  let paths = createPathNormalizer(config.paths);
  const totals = new DecisionTotals();
  const tunnels = new TunnelTotals();
  const rejectLog = new SampledLog(logger);
  const flushTimer = setInterval(() => rejectLog.flush(), 1000);
  flushTimer.unref?.();
  const pool = createUpstreamPool(config.upstream);
  const slowClients = new SlowClients({ settings: config.connections, log: rejectLog });

  // Declared before the server so its handlers can consult it; attached to the server below.
  let gate: SocketGate;
  const telemetry = new Telemetry({
    tracing: options.sdk?.tracing ?? false,
    settings: config.telemetry,
    configVersion: loaded.version,
    source: { connections: () => gate.open, evicted: () => gate.evicted, limiters: () => admission.snapshot(), tunnels: () => tunnels, cuts: () => slowClients.cuts },
  });
  const proxy = new Proxy({
    admission,
    pool,
    totals,
    rejectLog,
    logger,
    rejects,
    telemetry,
    identity,
    slowClients,
    arrive: (s) => gate.arrive(s),
    leave: (s) => gate.leave(s),
    paths: () => paths,
  });
  const server = http.createServer(
    {
      maxHeaderSize: config.connections.maxHeaderSize,
      headersTimeout: config.connections.headerTimeout,
      requestTimeout: 0, // bodies may take long (a 1 GiB upload); the head is what slowloris abuses
      keepAliveTimeout: config.connections.idleTimeout,
      connectionsCheckingInterval: checkingInterval(config.connections),
    },
    proxy.handle,
  );
  // With a listener, node leaves `Expect: 100-continue` to us: answered once admitted.
  server.on('checkContinue', proxy.handleExpectContinue);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (gate.isTurnedAway(socket as net.Socket)) {
      gate.answer(socket as net.Socket);
      return;
    }
    if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE') {
      socket.destroy();
      return;
    }
    const status = parseErrorStatus(err.code);
    rejectLog.note('bad request', String(status), { status, code: err.code, error: err.message });
    socket.end(bareMessage(status));
  });
  const upgrades = new Upgrades({
    admission,
    pool,
    totals,
    tunnels,
    settings: config.upgrade,
    rejectLog,
    rejects: () => rejects,
    closing: () => proxy.closing,
    arrive: (s) => gate.arrive(s),
    dismiss: (s, raw) => gate.dismiss(s, raw),
    telemetry,
    paths: () => paths,
    identity,
  });
  server.on('upgrade', upgrades.handle);
  gate = new SocketGate({
    connections: config.connections,
    rejects,
    onReject: (reason, client) => {
      totals.reject(reason);
      const limit = reason === 'connection_limit' ? config.connections.max : config.connections.perClient;
      telemetry.socketReject(reason, client, limit, gate.open, rejects[reason].status);
      rejectLog.reject(reason, { client, limit });
    },
    onEvict: (client) => rejectLog.note('idle socket evicted', 'evict', { client, max: config.connections.max }),
    identity,
  });
  gate.attach(server);

  // Counts applied reloads, so a reader of /stats can tell whether two snapshots saw the same limits.
  let generation = 0;
  const stats = () => ({
    config: { version: loaded.version, generation },
    connections: { open: gate.open, busy: gate.busy, max: config.connections.max, perClient: config.connections.perClient, peak: gate.peak, rejected: gate.rejected, evicted: gate.evicted },
    limiters: summarizeLimiters(admission.snapshot()),
    totals: totals.snapshot(),
    active: proxy.active,
    tunnels: tunnels.snapshot(),
    cuts: slowClients.snapshot(),
    draining,
  });
  const admin: AdminServer = await serveAdmin(
    createAdminApp({
      ready: () => ready,
      draining: () => draining,
      stats,
      ...(options.sdk ? { metrics: options.sdk.metricsText } : {}),
      config: () => ({
        version: loaded.version,
        source: loaded.source,
        loadedAt: loaded.loadedAt.toISOString(),
        lastReload: lastReload ?? null,
        config,
      }),
    }),
    config.admin.host,
    config.admin.port,
  );
  let port: number;
  try {
    port = await listen(server, config.listen.host, config.listen.port);
  } catch (err) {
    await admin.close();
    await pool.close();
    throw err;
  }
  ready = true;

  const update = (next: LoadedConfig) => {
    loaded = next;
    config = next.config;
    generation++;
    admission.update(config);
    identity.update(config.clientKey);
    telemetry.update(config.telemetry, next.version);
    rejects = buildRejectResponses(config.reject);
    proxy.setRejects(rejects);
    paths = createPathNormalizer(config.paths);
    gate.update(config.connections, rejects);
    upgrades.update(config.upgrade);
    slowClients.update(config.connections);
    server.headersTimeout = config.connections.headerTimeout;
    server.keepAliveTimeout = config.connections.idleTimeout;
    // node reads these when a connection starts: new connections get the new values.
    (server as { maxHeaderSize?: number }).maxHeaderSize = config.connections.maxHeaderSize;
  };

  const drain = async (): Promise<{ cut: number }> => {
    draining = true;
    const { delay, timeout } = config.drain;
    logger.info('drain started', { delay, timeout, active: proxy.active, connections: gate.open });
    await sleep(delay);
    proxy.closing = true;
    // Stop accepting; the callback would wait for every connection, which the loop below handles.
    server.close();
    const deadline = performance.now() + timeout;
    while (proxy.active > 0 && performance.now() < deadline) {
      server.closeIdleConnections();
      await sleep(20);
    }
    const cut = proxy.active;
    if (cut > 0) logger.warn('drain timeout', { cut });
    server.closeAllConnections();
    gate.destroyAll();
    slowClients.close();
    clearInterval(flushTimer);
    rejectLog.flush();
    await Promise.allSettled([pool.destroy(), admin.close()]);
    return { cut };
  };

  return {
    port,
    adminPort: admin.port,
    telemetry,
    update,
    setLastReload: (r) => {
      lastReload = r;
    },
    drain,
    uncaught: (err) => {
      totals.internalError++;
      telemetry.countInternalError('uncaught');
      const e = err as Error | undefined;
      rejectLog.note('uncaught error', 'uncaught', { error: String(e?.message ?? err), stack: e?.stack }, 'error');
    },
  };
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
