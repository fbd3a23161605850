/**
 * Issue 10, "never crash on one request", the part no real app can trigger: a throw from the
 * request handler itself (synchronously, and from a queued request's promise) is answered 500,
 * counted and logged, and the server keeps serving. The throw is injected through the Admission
 * the data path is given (no hook in the product); in-process, so an escaped throw would fail the
 * test as an uncaught error. The real trigger (an app answer node's writeHead refuses) is
 * test/e2e/hostile-release.e2e.test.ts, on Node and Deno.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Admission, type Decision, type PendingDecision, type RequestInfo } from '../../src/core/admission.ts';
import { configSchema } from '../../src/core/config-schema.ts';
import { SampledLog, type Fields, type Logger } from '../../src/core/log.ts';
import { RejectCatalogue } from '../../src/core/reject-response.ts';
import { DecisionTotals } from '../../src/core/totals.ts';
import { ClientIdentity } from '../../src/core/client-key.ts';
import { DataPath } from '../../src/proxy/data-path.ts';
import { Http1 } from '../../src/proxy/http1.ts';
import { RequestTargets } from '../../src/proxy/request-target.ts';
import { SlowClients } from '../../src/proxy/slow-clients.ts';
import { Telemetry } from '../../src/telemetry/telemetry.ts';
import { cleanup, onCleanup } from '../helpers/sidecar.ts';
import { startUpstream } from '../helpers/upstream.ts';

/** Throws for /throw (synchronously) and /throw-queued (the pending decision rejects); otherwise admits. */
class FaultyAdmission extends Admission {
  override admit(req: RequestInfo): Decision | PendingDecision {
    if (req.path === '/throw') throw new Error('injected: admit threw');
    if (req.path === '/throw-queued') {
      return { pending: true, promise: Promise.reject(new Error('injected: queue failed')), cancel() {} } as PendingDecision;
    }
    return super.admit(req);
  }
}

async function start() {
  const up = await startUpstream();
  const config = configSchema.parse({ upstream: { url: up.url } });
  const lines: Array<{ level: string; msg: string; fields: Fields | undefined }> = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => lines.push({ level: 'error', msg, fields }),
  };
  const totals = new DecisionTotals();
  const pool = new Pool(up.url, { connections: 4 });
  onCleanup(() => pool.destroy());
  const busy = new Map<Socket, number>();
  const rejectLog = new SampledLog(logger, 0);
  const proxy = new DataPath({
    admission: new FaultyAdmission(config),
    totals,
    rejectLog,
    rejects: new RejectCatalogue(config.reject),
    telemetry: new Telemetry({ tracing: false, settings: config.telemetry, configVersion: 'test' }),
  });
  const http1 = new Http1({
    path: proxy,
    pool,
    rejectLog,
    targets: new RequestTargets(config.paths),
    identity: new ClientIdentity(config.clientKey),
    slowClients: new SlowClients({ settings: config.connections, log: rejectLog }),
    slots: {
      begin: (s) => {
        busy.set(s, (busy.get(s) ?? 0) + 1);
        return true;
      },
      end: (s) => void busy.set(s, (busy.get(s) ?? 0) - 1),
    },
  });
  const server = http.createServer(http1.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, error: res.headers.get('x-portcullis-error'), body: await res.text() };
  };
  return { get, totals, lines, proxy };
}

describe('proxy guard', () => {
  afterEach(cleanup);

  it('issue 10: a throw from the request handler (sync or from a queued decision) is answered 500 and counted; the server keeps serving', async () => {
    const { get, totals, lines, proxy } = await start();
    for (const path of ['/throw', '/throw-queued', '/throw']) {
      const r = await get(path);
      expect(r.status, path).toBe(500);
      expect(r.error).toBe('internal_error');
      expect(r.body).toBe('{"error":"internal_error"}');
    }
    const ok = await get('/fine');
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('ok');
    expect(totals.internalError).toBe(3);
    const logged = lines.filter((l) => l.msg === 'internal error');
    expect(logged.map((l) => l.fields?.where)).toEqual(['request', 'admission', 'request']);
    expect(logged.every((l) => l.level === 'error')).toBe(true);
    expect(proxy.active).toBe(0);
  });
});
