/**
 * The admin API on its own port: probes, a stats snapshot and the effective config. hono fits
 * here (routing, JSON, a handful of requests a second); it stays out of the data path.
 */
import { Hono } from 'hono';
import type { ConfigView } from '../core/running-config.ts';
import type { StatsSnapshot } from '../core/stats.ts';

export interface AdminState {
  /** Config loaded and the listener up. */
  ready(): boolean;
  draining(): boolean;
  /** The one stats snapshot (src/core/stats.ts), served as is. */
  stats(): StatsSnapshot;
  config(): ConfigView;
  /** Prometheus text, once metrics exist (issue 4 of the roadmap); undefined -> 404. */
  metrics?(): Promise<string | undefined>;
}

export function createAdminApp(state: AdminState): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    if (state.draining()) return c.json({ status: 'draining' }, 503);
    if (!state.ready()) return c.json({ status: 'starting' }, 503);
    return c.json({ status: 'ready' });
  });
  app.get('/stats', (c) => c.json(state.stats()));
  app.get('/config', (c) => c.json(state.config()));
  app.get('/metrics', async (c) => {
    const text = await state.metrics?.();
    if (text === undefined) return c.text('metrics are not enabled\n', 404);
    return c.text(text, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.notFound((c) => c.json({ error: 'not found', endpoints: ['/healthz', '/readyz', '/stats', '/config', '/metrics'] }, 404));
  return app;
}
