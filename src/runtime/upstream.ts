/**
 * The keep-alive pool to the app: undici (llhttp, the parser node's own fetch uses), over
 * loopback TCP or a unix socket.
 */
import { Pool } from 'undici';
import type { Config } from '../core/config-schema.ts';

export interface UpstreamTarget {
  /** Origin undici dials (for a unix socket, a placeholder host). */
  origin: string;
  socketPath: string | undefined;
  /** Host and port for a raw tunnel (Upgrade). */
  host: string;
  port: number;
}

export function upstreamTarget(url: string): UpstreamTarget {
  if (url.startsWith('unix:')) {
    return { origin: 'http://localhost', socketPath: url.slice('unix:'.length), host: 'localhost', port: 80 };
  }
  const u = new URL(url);
  return { origin: u.origin, socketPath: undefined, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
}

export function createUpstreamPool(upstream: Config['upstream']): Pool {
  const target = upstreamTarget(upstream.url);
  return new Pool(target.origin, {
    connections: upstream.maxSockets,
    pipelining: 1,
    // The app may close an idle socket at any moment; undici also honours the app's Keep-Alive hint.
    keepAliveTimeout: 4000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: upstream.timeout,
    // A response body that stalls longer than the head may take is as dead as a missing head.
    bodyTimeout: upstream.timeout,
    connect: { timeout: upstream.connectTimeout },
    ...(target.socketPath ? { socketPath: target.socketPath } : {}),
  });
}
