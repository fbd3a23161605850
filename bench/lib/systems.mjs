// The systems under test, all in front of the same app: the app itself (direct), portcullis on
// Node and on Deno, nginx and HAProxy configured for the same job from bench/templates/.
// A scenario gives one `profile` (the caps) and every system is configured from it:
//   cap             requests in flight at the app (portcullis inflight.max, nginx limit_conn,
//                   HAProxy server maxconn); 0 rejects everything
//   queueSize, queueTimeoutMs   where the excess may wait (portcullis inflight.queue, HAProxy
//                   maxqueue + timeout queue; nginx's limit_conn cannot queue)
//   connectionsMax  open client sockets (portcullis connections.max, nginx worker_connections,
//                   HAProxy maxconn)
//   headerTimeoutMs the request head must arrive in time (slowloris)
//   env             extra environment for portcullis (optional; scenario 5 sets OTEL_* here)
//   adaptive        the `inflight.adaptive` block of the -adaptive portcullis variants (scenario 6)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import { renderFile } from './template.mjs';
import { start, stop, waitFor, fatal, findLogLine, childPids, alive } from './procs.mjs';
import { freePort, canConnect, getJson } from './http.mjs';
import { DENO, denoRunArgs } from '../../scripts/deno-command.mjs';

export const SYSTEMS = ['direct', 'portcullis-node', 'portcullis-deno', 'node-floor', 'nginx', 'haproxy', 'portcullis-node-adaptive', 'portcullis-deno-adaptive'];

/**
 * Systems that only forward (no caps): they take part in the pass-through and fixed-rate
 * scenarios (1, 2) and are left out where a part says `limits: true` (3, 4, 5).
 */
export const FORWARD_ONLY = ['node-floor'];

/**
 * portcullis with `inflight.adaptive` instead of `inflight.max` (issue 12): only in the parts
 * that say `adaptive: true` (scenario 6), where a fixed cap is not the point.
 */
export const ADAPTIVE_ONLY = ['portcullis-node-adaptive', 'portcullis-deno-adaptive'];

/** An error that leaves one system out of a part instead of failing the run (`skip` says why). */
export class SkipSystem extends Error {
  constructor(system, why) {
    super(`${system} skipped: ${why}`);
    this.system = system;
    this.skip = why;
  }
}

export const REJECT_BODY = '{"error":"overloaded"}';

/**
 * Starts `name` with `profile`; resolves a handle:
 *   { name, port, pids(): number[] (the proxy's processes, [] for direct), stop(), adminStats() }
 */
export async function startSystem(name, ctx, profile) {
  const dir = join(ctx.tmp, `${name}-${ctx.scenarioId}`);
  mkdirSync(dir, { recursive: true });
  switch (name) {
    case 'direct':
      return { name, port: ctx.app.port, pids: () => [], stop: async () => {}, adminStats: async () => undefined };
    case 'portcullis-node':
    case 'portcullis-deno':
    case 'portcullis-node-adaptive':
    case 'portcullis-deno-adaptive':
      return startPortcullis(name, ctx, profile, dir);
    case 'node-floor':
      return startFloor(ctx, dir);
    case 'nginx':
      return startNginx(ctx, profile, dir);
    case 'haproxy':
      return startHaproxy(ctx, profile, dir);
    default:
      throw new Error(`unknown system ${name} (one of ${SYSTEMS.join(', ')})`);
  }
}

async function startPortcullis(name, ctx, profile, dir) {
  const adaptive = ADAPTIVE_ONLY.includes(name);
  if (adaptive && !profile.adaptive) throw new SkipSystem(name, 'this part has no adaptive profile');
  const queue = { size: profile.queueSize, timeout: Math.max(1, profile.queueTimeoutMs) };
  // JSON is YAML's flow style: one line, whatever the block holds.
  const inflight = adaptive ? { adaptive: profile.adaptive, queue } : { max: profile.cap, queue };
  const config = renderFile(join(ctx.benchDir, 'templates', 'portcullis.yaml'), join(dir, 'portcullis.yaml'), {
    port: 0,
    adminPort: 0,
    appPort: ctx.app.port,
    connectionsMax: profile.connectionsMax,
    headerTimeoutMs: profile.headerTimeoutMs,
    inflight: JSON.stringify(inflight),
  });
  if (adaptive) {
    // Until the adaptive limits are merged the config key does not exist: say so and go on.
    const check = spawnSync(process.execPath, [join(ctx.root, 'dist', 'main.js'), 'check', config], { encoding: 'utf8', timeout: 30_000 });
    if (check.status !== 0) {
      const output = `${check.stdout ?? ''}${check.stderr ?? ''}`.replaceAll(config, 'portcullis.yaml').trim();
      const unknown = output.split('\n').find((l) => /inflight\.adaptive: unknown key "adaptive"/.test(l));
      if (unknown) throw new SkipSystem(name, `portcullis rejects inflight.adaptive (${unknown.trim()})`);
      // The key exists but this profile's block is wrong: that must fail loudly, not skip.
      throw new Error(`${name}: portcullis check rejects the benchmark's config ${config}:\n${output}`);
    }
  }
  const log = join(dir, 'portcullis.log');
  const [cmd, args] =
    name.startsWith('portcullis-node')
      ? [process.execPath, [join(ctx.root, 'dist', 'main.js'), 'run', '--config', config]]
      : // Exactly what `deno task start` runs (flags from deno.json, via scripts/deno-command.mjs).
        [DENO, denoRunArgs(['run', '--config', config])];
  // Default telemetry, exported to the harness's sink; a scenario's profile.env may override.
  const env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ctx.otlp.tracesUrl, ...profile.env };
  const child = start(name, cmd, args, { cpu: ctx.cpuProxy, logFile: log, cwd: ctx.root, env });
  const started = await waitFor(
    `${name} to log "portcullis started" (${log})`,
    () => {
      if (child.exitCode !== null) throw fatal(`${name} exited ${child.exitCode}: ${tail(log)}`);
      return findLogLine(log, 'portcullis started');
    },
    { timeoutMs: 30_000 },
  ).catch(async (err) => {
    await stop(child);
    throw err;
  });
  const admin = `http://127.0.0.1:${started.adminPort}`;
  return {
    name,
    port: started.port,
    log,
    logs: [log],
    config,
    admin,
    // What the limiter may admit at most: the fixed cap, or the adaptive limit's ceiling.
    cap: adaptive ? profile.adaptive.max : profile.cap,
    pids: () => (alive(child.pid) ? [child.pid] : []),
    stop: () => stop(child),
    adminStats: () => getJson(`${admin}/stats`).catch(() => undefined),
    exitCode: () => child.exitCode,
  };
}

/** bench/floor.mjs: node:http + an undici Pool and nothing else, what portcullis-node is built on. */
async function startFloor(ctx, dir) {
  const log = join(dir, 'floor.log');
  const child = start('node-floor', process.execPath, [join(ctx.benchDir, 'floor.mjs'), '--port', '0', '--upstream', `http://127.0.0.1:${ctx.app.port}`], {
    cpu: ctx.cpuProxy,
    logFile: log,
    cwd: ctx.root,
  });
  const started = await waitFor('node-floor to log "floor started"', () => {
    if (child.exitCode !== null) throw fatal(`node-floor exited ${child.exitCode}: ${tail(log)}`);
    return findLogLine(log, 'floor started');
  }).catch(async (err) => {
    await stop(child);
    throw err;
  });
  return {
    name: 'node-floor',
    port: started.port,
    log,
    logs: [log],
    pids: () => (alive(child.pid) ? [child.pid] : []),
    stop: () => stop(child),
    adminStats: async () => undefined,
    exitCode: () => child.exitCode,
  };
}

async function startNginx(ctx, profile, dir) {
  const port = await freePort();
  const capDirectives =
    profile.cap === 0
      ? [
          '            default_type application/json;',
          '            add_header Retry-After 1 always;',
          `            return 503 '${REJECT_BODY}';`,
        ].join('\n')
      : `            limit_conn cap ${profile.cap};`;
  // nginx counts upstream connections against worker_connections too.
  const workerConnections = profile.connectionsMax + 600;
  const config = renderFile(join(ctx.benchDir, 'templates', 'nginx.conf'), join(dir, 'nginx.conf'), {
    dir,
    port,
    appPort: ctx.app.port,
    nofile: Math.min(ctx.nofile, 2 * workerConnections + 64),
    workerConnections,
    headerTimeoutMs: profile.headerTimeoutMs,
    capDirectives,
  });
  const log = join(dir, 'nginx.stderr.log');
  const child = start('nginx', ctx.tools.nginx, ['-g', 'daemon off;', '-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', config], {
    cpu: ctx.cpuProxy,
    logFile: log,
  });
  const processes = () => (alive(child.pid) ? [child.pid, ...childPids(child.pid)] : []);
  child.extraPids = () => childPids(child.pid ?? -1);
  await waitUntilListening('nginx', child, port, () => tail(join(dir, 'nginx-error.log')) + tail(log));
  // The worker is forked after the master binds; wait for it so its CPU is counted from the start.
  await waitFor('an nginx worker process', () => childPids(child.pid).length > 0);
  return { name: 'nginx', port, log, logs: [log, join(dir, 'nginx-error.log')], config, pids: processes, stop: () => stop(child), adminStats: async () => undefined, exitCode: () => child.exitCode };
}

async function startHaproxy(ctx, profile, dir) {
  const port = await freePort();
  const frontendDirectives =
    profile.cap === 0
      ? `    http-request return status 503 content-type application/json string '${REJECT_BODY}' hdr retry-after 1`
      : '';
  const config = renderFile(join(ctx.benchDir, 'templates', 'haproxy.cfg'), join(dir, 'haproxy.cfg'), {
    port,
    appPort: ctx.app.port,
    connectionsMax: profile.connectionsMax,
    headerTimeoutMs: profile.headerTimeoutMs,
    // HAProxy has no "queue of size 0": a queue that times out at once is the nearest.
    queueTimeoutMs: profile.queueSize > 0 ? profile.queueTimeoutMs : 1,
    serverMaxconn: Math.max(1, profile.cap),
    maxqueue: Math.max(1, profile.queueSize),
    frontendDirectives,
  });
  const log = join(dir, 'haproxy.log');
  const child = start('haproxy', ctx.tools.haproxy, ['-db', '-f', config], { cpu: ctx.cpuProxy, logFile: log });
  await waitUntilListening('haproxy', child, port, () => tail(log));
  return {
    name: 'haproxy',
    port,
    log,
    logs: [log],
    config,
    pids: () => (alive(child.pid) ? [child.pid, ...childPids(child.pid)] : []),
    stop: () => stop(child),
    adminStats: async () => undefined,
    exitCode: () => child.exitCode,
  };
}

async function waitUntilListening(name, child, port, logTail) {
  try {
    await waitFor(`${name} to listen on 127.0.0.1:${port}`, async () => {
      if (child.exitCode !== null) throw fatal(`${name} exited ${child.exitCode}: ${logTail()}`);
      return canConnect(port);
    });
  } catch (err) {
    await stop(child);
    throw err;
  }
}

function tail(file, chars = 1500) {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}
