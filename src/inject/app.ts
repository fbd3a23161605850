/**
 * The injector's HTTP surface (hono): POST /mutate takes an AdmissionReview and answers one;
 * /healthz and /readyz for the kubelet. Runtime-free: served by src/inject/server.ts.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { PortcullisError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { reviewAdmission } from './review.ts';
import type { InjectorSettings } from './settings.ts';

export interface InjectorAppOptions {
  settings: InjectorSettings;
  logger: Logger;
  /** false while shutting down: /readyz answers 503 so the Service stops sending reviews. */
  isReady: () => boolean;
}

// The API server caps a Pod at its request size limit (3 MiB by default); an AdmissionReview
// carries the object once (oldObject is null on CREATE).
const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export function createInjectorApp({ settings, logger, isReady }: InjectorAppOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.text('ok\n'));
  app.get('/readyz', (c) => (isReady() ? c.text('ready\n') : c.text('shutting down\n', 503)));
  app.post(
    '/mutate',
    bodyLimit({ maxSize: MAX_REVIEW_BYTES, onError: (c) => c.json({ error: `AdmissionReview larger than ${MAX_REVIEW_BYTES} bytes` }, 413) }),
    async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch (err) {
        logger.warn('bad admission request', { error: `not JSON: ${(err as Error).message}` });
        return c.json({ error: 'the body is not JSON' }, 400);
      }
      try {
        const outcome = reviewAdmission(body, settings);
        const fields = {
          uid: outcome.response.response.uid,
          result: outcome.result,
          ...(outcome.namespace ? { namespace: outcome.namespace } : {}),
          ...(outcome.pod ? { pod: outcome.pod } : {}),
          ...(outcome.reason ? { reason: outcome.reason } : {}),
          ...(outcome.summary ?? {}),
        };
        if (outcome.result === 'denied') logger.warn('admission', fields);
        else if (outcome.result !== 'ignored') logger.info('admission', fields);
        return c.json(outcome.response);
      } catch (err) {
        if (err instanceof PortcullisError && err.code === 'USAGE') {
          logger.warn('bad admission request', { error: err.message });
          return c.json({ error: err.message }, 400);
        }
        throw err;
      }
    },
  );
  return app;
}
