/** Serves the admin hono app with @hono/node-server (node:http underneath, on Node and on Deno). */
import { createAdaptorServer } from '@hono/node-server';
import type { Server, AddressInfo } from 'node:net';
import type { Hono } from 'hono';

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

export function serveAdmin(app: Hono, host: string, port: number): Promise<AdminServer> {
  const server = createAdaptorServer({ fetch: app.fetch }) as unknown as Server;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
  });
}
