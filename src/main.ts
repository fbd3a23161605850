#!/usr/bin/env node
/**
 * Entry point: the only place that reads argv and the environment, touches the console, and
 * exits. Everything below gets a logger and a validated, frozen config.
 */
import { readFile } from 'node:fs/promises';
import { parseCommandLine } from './cli/args.ts';
import { checkCommand, schemaCommand } from './cli/config-commands.ts';
import { loadConfig, type LoadedConfig } from './core/config-load.ts';
import { resolveSettings, type ConfigOverrides } from './core/config-overrides.ts';
import { ConfigError, PortcullisError } from './core/errors.ts';
import { jsonLogger, type Logger } from './core/log.ts';
import { startSidecar, type Sidecar } from './sidecar.ts';
import { startReloader } from './reload.ts';
import { runInject } from './inject/command.ts';
import { startTelemetrySdk } from './telemetry/sdk.ts';
import type { Telemetry } from './telemetry/telemetry.ts';
import { argv, environment, exit, onSignals, onUncaught, runtimeName, runtimeVersion, writeStderr, writeStdout } from './runtime/process.ts';

const VERSION = '0.1.0';

async function main(): Promise<number> {
  const cmd = parseCommandLine(argv());
  switch (cmd.command) {
    case 'help':
      writeStdout(cmd.text);
      return 0;
    case 'schema':
      writeStdout(schemaCommand());
      return 0;
    case 'check': {
      let text: string;
      try {
        text = await readFile(cmd.file, 'utf8');
      } catch (err) {
        writeStderr(`${cmd.file}: cannot read: ${(err as Error).message}\n`);
        return 1;
      }
      const result = checkCommand(text, cmd.file);
      (result.exitCode === 0 ? writeStdout : writeStderr)(result.output);
      return result.exitCode;
    }
    case 'run':
      return run(cmd);
    case 'inject':
      return runInject(cmd, environment(), jsonLogger({ write: writeStdout }));
  }
}

type RunCommand = { config?: string; upstream?: string; port?: string; adminPort?: string };

async function run(cmd: RunCommand): Promise<number> {
  const logger = jsonLogger({ write: writeStdout });
  const { configPath: source, overrides } = resolveSettings(cmd, environment());
  const loaded = await loadStartupConfig(source, overrides, logger);
  if (loaded === undefined) return 1;

  // The SDK calls back into the sidecar's telemetry, which exists once the sidecar does.
  let telemetry: Telemetry | undefined;
  const sdk = await startTelemetrySdk({
    env: environment(),
    logger,
    alwaysSampleRejects: () => telemetry?.alwaysSampleRejects() ?? true,
    onDropped: (n) => telemetry?.countDropped(n),
  });
  const sidecar = await startSidecar({ loaded, logger, runtime: runtimeName(), sdk });
  telemetry = sidecar.telemetry;
  // Invariant 9: one request never ends the process. Every exchange is guarded where it is
  // served; whatever still escapes is logged and counted, and the rest keep being served (each
  // exchange's permit is tied to its socket, so the harm stays with the one that threw).
  onUncaught((err) => sidecar.uncaught(err));
  // Watching starts before the started line: a change made right after it must not wait for a poll.
  const watch = source === undefined ? undefined : startReloader({ source, overrides, running: sidecar.running, logger });
  onSignals(['SIGHUP'], () => {
    if (watch) watch.trigger('SIGHUP');
    else logger.warn('SIGHUP ignored: no config file');
  });
  logStarted(logger, loaded, sidecar);
  return untilStopped({ logger, sidecar, sdk, stopWatching: () => watch?.close() });
}

/** The config at startup; undefined (after saying why) when it is invalid. */
async function loadStartupConfig(source: string | undefined, overrides: ConfigOverrides, logger: Logger): Promise<LoadedConfig | undefined> {
  try {
    const text = source === undefined ? undefined : await readConfigFile(source);
    return loadConfig(text, source ?? 'defaults', overrides);
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.error('config invalid', { source: err.source, problems: err.problems });
      writeStderr(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

function logStarted(logger: Logger, loaded: LoadedConfig, sidecar: Sidecar): void {
  const c = loaded.config;
  logger.info('portcullis started', {
    version: VERSION,
    runtime: runtimeName(),
    runtimeVersion: runtimeVersion(),
    port: sidecar.port,
    adminPort: sidecar.adminPort,
    upstream: c.upstream.url,
    config: loaded.source,
    configVersion: loaded.version,
    // Absent for an adaptive global limit, which `inflightAdaptive` then names.
    inflightMax: c.inflight.max,
    inflightAdaptive: c.inflight.adaptive?.algorithm,
    connectionsMax: c.connections.max,
    routes: c.routes.map((r) => r.name),
    dryRun: c.dryRun,
  });
}

/** Resolves with the exit code once SIGTERM or SIGINT has drained the sidecar (a second signal exits at once). */
function untilStopped(o: { logger: Logger; sidecar: Sidecar; sdk: { shutdown(): Promise<void> }; stopWatching: () => void }): Promise<number> {
  const { logger } = o;
  return new Promise<number>((resolve) => {
    let stopping = false;
    onSignals(['SIGTERM', 'SIGINT'], (signal) => {
      if (stopping) {
        logger.warn('second signal, exiting now', { signal });
        resolve(1);
        return;
      }
      stopping = true;
      o.stopWatching();
      logger.info('shutdown requested', { signal });
      o.sidecar
        .drain()
        .then(async ({ cut }) => {
          await flushTelemetry(o.sdk, logger);
          return cut;
        })
        .then(
          (cut) => {
            logger.info('portcullis stopped', { signal, cut });
            resolve(0);
          },
          (err: unknown) => {
            logger.error('drain failed', { error: String(err) });
            resolve(1);
          },
        );
    });
  });
}

/**
 * The last spans go out before the exit, but an unreachable collector must not hold the exit for
 * the exporter's own timeout and retries (10 s and more): the pod's grace period is for traffic.
 */
const TELEMETRY_FLUSH_MS = 2000;

async function flushTelemetry(sdk: { shutdown(): Promise<void> }, logger: Logger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), TELEMETRY_FLUSH_MS);
  });
  const done = sdk.shutdown().then(
    () => 'ok' as const,
    (err: unknown) => {
      logger.warn('telemetry shutdown failed', { error: String(err) });
      return 'failed' as const;
    },
  );
  if ((await Promise.race([done, timedOut])) === 'timeout') logger.warn('telemetry shutdown timed out', { ms: TELEMETRY_FLUSH_MS });
  clearTimeout(timer);
}

async function readConfigFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: '', message: `cannot read the file: ${(err as Error).message}` }], { cause: err });
  }
}

function fatal(logger: Logger, err: unknown): number {
  if (err instanceof PortcullisError && err.code === 'USAGE') {
    writeStderr(`portcullis: ${err.message}\n`);
    return 2;
  }
  logger.error('fatal', { error: String(err), stack: (err as Error)?.stack });
  return 1;
}

main().then(
  (code) => exit(code),
  (err: unknown) => exit(fatal(jsonLogger({ write: writeStderr }), err)),
);
