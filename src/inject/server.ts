/**
 * Serves the injector app over TLS (node:https through @hono/node-server). The certificate is a
 * mounted Secret that cert-manager (or a helm upgrade) may replace while we run: its files are
 * re-read every `certPollMs` and swapped in with setSecureContext, without a restart.
 */
import { createAdaptorServer } from '@hono/node-server';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Hono } from 'hono';
import type { Logger } from '../core/log.ts';

export interface InjectorServerOptions {
  app: Hono;
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  certPollMs: number;
  logger: Logger;
}

export interface InjectorServer {
  port: number;
  /** Re-reads the certificate files; true when they changed and were swapped in. */
  reloadCertificate(): Promise<boolean>;
  close(): Promise<void>;
}

export async function serveInjector(options: InjectorServerOptions): Promise<InjectorServer> {
  const { logger } = options;
  const read = async () => ({ cert: await readFile(options.certFile, 'utf8'), key: await readFile(options.keyFile, 'utf8') });
  let current = await read();
  const server = createAdaptorServer({
    fetch: options.app.fetch,
    createServer,
    serverOptions: { ...current, minVersion: 'TLSv1.2' },
  }) as unknown as Server;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const reloadCertificate = async (): Promise<boolean> => {
    let next;
    try {
      next = await read();
    } catch (err) {
      // The kubelet swaps the Secret's ..data link atomically, but a read can still race a
      // removal; keep serving with the certificate we have.
      logger.warn('certificate reload failed', { error: (err as Error).message });
      return false;
    }
    if (next.cert === current.cert && next.key === current.key) return false;
    try {
      server.setSecureContext({ ...next, minVersion: 'TLSv1.2' });
    } catch (err) {
      logger.warn('certificate reload failed', { error: (err as Error).message });
      return false;
    }
    current = next;
    logger.info('certificate reloaded', { cert: options.certFile });
    return true;
  };
  const timer = setInterval(() => void reloadCertificate(), options.certPollMs);
  timer.unref();

  return {
    port: (server.address() as AddressInfo).port,
    reloadCertificate,
    close: () =>
      new Promise<void>((done) => {
        clearInterval(timer);
        server.close(() => done());
        server.closeIdleConnections();
      }),
  };
}
