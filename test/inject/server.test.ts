/**
 * `portcullis inject` for real: the built CLI as a child process, serving HTTPS with the TLS
 * material the chart generates (its Secret and the webhook's caBundle), answering an
 * AdmissionReview the way the API server calls it (service DNS name, CA pinned), and shutting
 * down on SIGTERM with /readyz at 503 first. The certificate swap runs in-process.
 */
import { request } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createInjectorApp } from '../../src/inject/app.ts';
import { serveInjector } from '../../src/inject/server.ts';
import { parseSettings } from '../../src/inject/settings.ts';
import { silentLogger } from '../../src/core/log.ts';
import { ROOT, cleanup, ensureBuilt, tempDir, waitFor } from '../helpers/sidecar.ts';
import { freePort } from '../helpers/upstream.ts';
import { NAMESPACE, RELEASE, find, settingsJson, template } from '../helm/helm.ts';
import type { K8sObject } from '../helm/k8s-validate.ts';
import { validateAll } from '../helm/k8s-validate.ts';
import { admissionReview, applyResponsePatch, asObject, deploymentPod } from './fixtures.ts';
import { cleanEnv, startProcess } from './process.ts';

const SERVICE_HOST = `${RELEASE}-portcullis.${NAMESPACE}.svc`;

interface Tls {
  cert: string;
  key: string;
  ca: string;
}

function tlsOf(objects: K8sObject[]): Tls {
  const secret = find(objects, 'Secret') as any;
  const b = (s: string) => Buffer.from(s, 'base64').toString('utf8');
  return { cert: b(secret.data['tls.crt']), key: b(secret.data['tls.key']), ca: b((find(objects, 'MutatingWebhookConfiguration') as any).webhooks[0].clientConfig.caBundle) };
}

/** One HTTPS request as the API server makes it: to the service name, trusting only the caBundle. */
function call(port: number, ca: string, method: string, path: string, body?: string) {
  return new Promise<{ status: number; text: string; json: any; peerCert: X509Certificate }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, servername: SERVICE_HOST, ca, method, path, headers: body ? { 'content-type': 'application/json' } : {}, agent: false },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerX509Certificate() as X509Certificate;
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, text, json, peerCert: peer });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}

let objects: K8sObject[];
beforeAll(async () => {
  objects = await template({}, ['--kube-version', '1.30.0']);
  await ensureBuilt();
});
afterEach(cleanup);

describe('portcullis inject (the built CLI, a real child process)', () => {
  test('serves AdmissionReviews over TLS with the chart-generated certificate, and drains on SIGTERM', async () => {
    const dir = tempDir();
    const tls = tlsOf(objects);
    writeFileSync(join(dir, 'tls.crt'), tls.cert);
    writeFileSync(join(dir, 'tls.key'), tls.key);
    writeFileSync(join(dir, 'settings.json'), settingsJson(objects));
    const port = await freePort();
    const proc = startProcess(
      process.execPath,
      [join(ROOT, 'dist', 'main.js'), 'inject', '--settings', join(dir, 'settings.json'), '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key'), '--port', String(port), '--host', '127.0.0.1', '--shutdown-delay', '1s'],
      cleanEnv(),
      ROOT,
    );
    const started = await proc.waitForLog((l) => l['msg'] === 'injector started', 'injector started');
    expect(started).toMatchObject({ port, nativeSidecar: true, image: 'ghcr.io/portcullis/portcullis:0.1.0', adminPort: 9901, appPort: 18080 });

    expect((await call(port, tls.ca, 'GET', '/healthz')).status).toBe(200);
    expect((await call(port, tls.ca, 'GET', '/readyz')).status).toBe(200);

    const pod = deploymentPod();
    const review = admissionReview(pod);
    const res = await call(port, tls.ca, 'POST', '/mutate', JSON.stringify(review));
    expect(res.status).toBe(200);
    expect(res.peerCert.checkHost(SERVICE_HOST)).toBe(SERVICE_HOST);
    expect(res.json.response).toMatchObject({ uid: review.request.uid, allowed: true, patchType: 'JSONPatch' });
    const { pod: patched } = applyResponsePatch(pod, res.json.response);
    expect(await validateAll([asObject(patched)])).toEqual([]);
    expect(patched.spec.initContainers?.map((c) => c.name)).toEqual(['migrate', 'portcullis']);
    const logged = await proc.waitForLog((l) => l['msg'] === 'admission', 'admission log line');
    expect(logged).toMatchObject({ uid: review.request.uid, result: 'injected', namespace: 'shop', pod: 'shop-7d9c5b8f6d-*', container: 'shop', port: 8080, appPort: 18080 });

    const bad = await call(port, tls.ca, 'POST', '/mutate', '{"not json');
    expect(bad.status).toBe(400);
    const wrong = await call(port, tls.ca, 'POST', '/mutate', JSON.stringify({ kind: 'Pod' }));
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toContain('AdmissionReview');

    // A client that trusts another CA is refused: the caBundle is what makes the call safe.
    const other = tlsOf(await template({}, ['--kube-version', '1.30.0']));
    await expect(call(port, other.ca, 'GET', '/healthz')).rejects.toThrow(/certificate/);

    proc.child.kill('SIGTERM');
    await waitFor('/readyz 503 while shutting down', async () => (await call(port, tls.ca, 'GET', '/readyz')).status === 503);
    // Still answering reviews during the shutdown delay.
    expect((await call(port, tls.ca, 'POST', '/mutate', JSON.stringify(admissionReview(deploymentPod())))).status).toBe(200);
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.logs.map((l) => l['msg'])).toContain('injector stopped');
  });

  test('bad settings stop the injector at start with the problem named', async () => {
    const dir = tempDir();
    const settings = JSON.parse(settingsJson(objects));
    settings.config.inflight.max = -1;
    writeFileSync(join(dir, 'settings.json'), JSON.stringify(settings));
    const proc = startProcess(process.execPath, [join(ROOT, 'dist', 'main.js'), 'inject', '--settings', join(dir, 'settings.json'), '--port', '0'], cleanEnv(), ROOT);
    expect((await proc.exit).code).toBe(2);
    expect(proc.output()).toContain('inflight.max: must be >= 0, got -1');
  });
});

describe('certificate rotation', () => {
  test('new certificate files are picked up without a restart', async () => {
    const dir = tempDir();
    const first = tlsOf(objects);
    const second = tlsOf(await template({}, ['--kube-version', '1.30.0']));
    writeFileSync(join(dir, 'tls.crt'), first.cert);
    writeFileSync(join(dir, 'tls.key'), first.key);
    const settings = parseSettings(settingsJson(objects), 'settings.json');
    const server = await serveInjector({
      app: createInjectorApp({ settings, logger: silentLogger, isReady: () => true }),
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      certPollMs: 50,
      logger: silentLogger,
    });
    try {
      expect((await call(server.port, first.ca, 'GET', '/healthz')).status).toBe(200);
      writeFileSync(join(dir, 'tls.key'), second.key);
      writeFileSync(join(dir, 'tls.crt'), second.cert);
      await waitFor('the new certificate', async () => (await call(server.port, second.ca, 'GET', '/healthz').catch(() => ({ status: 0 }))).status === 200);
      await expect(call(server.port, first.ca, 'GET', '/healthz')).rejects.toThrow(/certificate/);
    } finally {
      await server.close();
    }
  });
});
