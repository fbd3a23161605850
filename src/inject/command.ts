/**
 * `portcullis inject`: the mutating admission webhook. Reads the chart's settings and the TLS
 * files, serves until SIGTERM, then keeps serving for `shutdownDelay` with /readyz at 503 (so the
 * Service stops routing reviews here before the listener closes: a failed call would let a pod
 * through uninjected), and exits 0.
 */
import { readFile } from 'node:fs/promises';
import { PortcullisError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { parseDuration } from '../core/units.ts';
import { onSignals } from '../runtime/process.ts';
import { createInjectorApp } from './app.ts';
import { serveInjector } from './server.ts';
import { parseSettings } from './settings.ts';

export interface InjectFlags {
  settings?: string;
  cert?: string;
  key?: string;
  port?: string;
  host?: string;
  shutdownDelay?: string;
}

export const INJECT_DEFAULTS = {
  settings: '/etc/portcullis-injector/settings/settings.json',
  cert: '/etc/portcullis-injector/tls/tls.crt',
  key: '/etc/portcullis-injector/tls/tls.key',
  port: '8443',
  host: '0.0.0.0',
  shutdownDelay: '5s',
} as const;

const ENV: Record<keyof InjectFlags, string> = {
  settings: 'PORTCULLIS_INJECT_SETTINGS',
  cert: 'PORTCULLIS_INJECT_CERT',
  key: 'PORTCULLIS_INJECT_KEY',
  port: 'PORTCULLIS_INJECT_PORT',
  host: 'PORTCULLIS_INJECT_HOST',
  shutdownDelay: 'PORTCULLIS_INJECT_SHUTDOWN_DELAY',
};

const CERT_POLL_MS = 10_000;

/** flags > environment > defaults. */
export function resolveInjectFlags(flags: InjectFlags, env: Readonly<Record<string, string | undefined>>): Required<InjectFlags> {
  const out = { ...INJECT_DEFAULTS } as Required<InjectFlags>;
  for (const k of Object.keys(ENV) as (keyof InjectFlags)[]) {
    const v = flags[k] ?? env[ENV[k]];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return out;
}

export async function runInject(flags: InjectFlags, env: Readonly<Record<string, string | undefined>>, logger: Logger): Promise<number> {
  const o = resolveInjectFlags(flags, env);
  const port = /^\d+$/.test(o.port) ? Number(o.port) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new PortcullisError('USAGE', `--port must be a port number, got ${JSON.stringify(o.port)}`);
  const delay = /^\d+$/.test(o.shutdownDelay) ? Number(o.shutdownDelay) : parseDuration(o.shutdownDelay);
  if (delay === undefined) throw new PortcullisError('USAGE', `--shutdown-delay must be a duration such as 5s, got ${JSON.stringify(o.shutdownDelay)}`);

  let settingsText: string;
  try {
    settingsText = await readFile(o.settings, 'utf8');
  } catch (err) {
    throw new PortcullisError('USAGE', `${o.settings}: cannot read the injector settings: ${(err as Error).message}`, { cause: err });
  }
  const settings = parseSettings(settingsText, o.settings);

  let ready = true;
  const app = createInjectorApp({ settings, logger, isReady: () => ready });
  const server = await serveInjector({
    app,
    host: o.host,
    port,
    certFile: o.cert,
    keyFile: o.key,
    certPollMs: CERT_POLL_MS,
    logger,
  });
  logger.info('injector started', {
    port: server.port,
    nativeSidecar: settings.nativeSidecar,
    image: settings.sidecar.image,
    adminPort: settings.adminPort,
    appPort: settings.appPort,
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    onSignals(['SIGTERM', 'SIGINT'], (signal) => {
      if (stopping) {
        resolve(1);
        return;
      }
      stopping = true;
      ready = false;
      logger.info('shutdown requested', { signal, delayMs: delay });
      setTimeout(() => {
        void server.close().then(() => {
          logger.info('injector stopped', { signal });
          resolve(0);
        });
      }, delay);
    });
  });
}
