/**
 * A pod without a cluster: the example Deployment (examples/k8s) is injected by the real
 * injector with the real chart's settings, then its two containers run as the kubelet would run
 * them: the rendered command, args and environment (downward-API fields and $(VAR) references
 * resolved), image paths mapped to this repository (/app/dist/main.js -> dist/main.js,
 * /app/app.mjs -> examples/app/app.mjs), and the limits ConfigMap laid out as the kubelet lays out
 * a ConfigMap volume (..data symlinks, swapped atomically on an edit).
 *
 * Differences from a pod, all forced by "loopback only" in tests: the ports are free ones chosen
 * here (the example's numbers are changed, its port names are not, and the Service targets the
 * name), the app binds 127.0.0.1 instead of 0.0.0.0, and the sidecar's config gets
 * `listen`/`admin` hosts 127.0.0.1 appended (in a pod it listens on all interfaces).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { injectPod } from '../../src/inject/inject.ts';
import type { Container, Pod } from '../../src/inject/k8s.ts';
import type { InjectorSettings } from '../../src/inject/settings.ts';
import { configMapVolume } from '../helpers/configmap.ts';
import { ROOT, cleanup, ensureBuilt, waitFor } from '../helpers/sidecar.ts';
import { freePort } from '../helpers/upstream.ts';
import { parseManifests } from '../helm/helm.ts';
import type { K8sObject } from '../helm/k8s-validate.ts';
import { validateAll } from '../helm/k8s-validate.ts';
import { chartSettings } from './fixtures.ts';
import { cleanEnv, startProcess } from './process.ts';

const EXAMPLES = join(ROOT, 'examples', 'k8s');
const POD_NAME = 'example-app-5d8f7c6b9d-x2x7q';
const NODE_NAME = 'node-1';
const NAMESPACE = 'default';

/** The image's paths, mapped to this repository. */
const IMAGE_PATHS: Record<string, string> = {
  node: process.execPath,
  '/app/dist/main.js': join(ROOT, 'dist', 'main.js'),
  '/app/app.mjs': join(ROOT, 'examples', 'app', 'app.mjs'),
};

function loadExamples(): K8sObject[] {
  return ['app-deployment.yaml', 'app-service.yaml', 'limits-configmap.yaml'].flatMap((f) =>
    parseManifests(readFileSync(join(EXAMPLES, f), 'utf8')),
  );
}

/** The pod the ReplicaSet controller creates from the Deployment's template. */
function podFromTemplate(deployment: any): Pod {
  const t = structuredClone(deployment.spec.template);
  return { metadata: { ...t.metadata, generateName: 'example-app-5d8f7c6b9d-', namespace: NAMESPACE }, spec: t.spec };
}

/** The container's environment as the kubelet builds it: fieldRefs resolved, $(VAR) expanded from earlier entries. */
function kubeletEnv(c: Container): Record<string, string> {
  const fields: Record<string, string> = { 'metadata.name': POD_NAME, 'metadata.namespace': NAMESPACE, 'spec.nodeName': NODE_NAME };
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    const ref = (e.valueFrom as { fieldRef?: { fieldPath: string } } | undefined)?.fieldRef?.fieldPath;
    if (ref !== undefined) {
      const v = fields[ref];
      if (v === undefined) throw new Error(`no downward-API value for ${ref}`);
      env[e.name] = v;
    } else if (e.value !== undefined) {
      env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m);
    } else throw new Error(`env ${e.name}: unsupported source`);
  }
  return env;
}

function argvOf(c: Container, replace: Record<string, string>): { file: string; argv: string[] } {
  const map = (s: string) => replace[s] ?? IMAGE_PATHS[s] ?? s;
  const [file, ...rest] = [...(c.command ?? []), ...(c.args ?? [])].map(map);
  if (!file) throw new Error(`container ${c.name} has no command`);
  return { file, argv: rest };
}

/** The port a probe or handler aims at, resolving a port name within the container. */
function portOf(c: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  const p = c.ports?.find((x) => x.name === port);
  if (!p) throw new Error(`container ${c.name} has no port named ${port}`);
  return p.containerPort;
}

async function get(url: string): Promise<{ status: number; text: string; headers: Headers }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, text: await r.text(), headers: r.headers };
}

let settings: InjectorSettings;
let ports: { serving: number; app: number; admin: number };
beforeAll(async () => {
  ports = { serving: await freePort(), app: await freePort(), admin: await freePort() };
  settings = await chartSettings('1.30.0', { 'sidecar.adminPort': ports.admin });
  await ensureBuilt();
});
afterEach(cleanup);

describe('the example pod, injected and run as the kubelet would', () => {
  test('the examples are valid Kubernetes, and the Service targets the port by name', async () => {
    const objects = loadExamples();
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(['Deployment/example-app', 'Service/example-app', 'ConfigMap/example-app-portcullis']);
    expect(await validateAll(objects)).toEqual([]);
    const deployment = objects[0] as any;
    const service = objects[1] as any;
    expect(deployment.spec.template.metadata.labels['portcullis.dev/inject']).toBe('enabled');
    expect(service.spec.ports[0].targetPort).toBe('http');
    expect(deployment.spec.template.spec.containers[0].ports.map((p: any) => p.name)).toContain('http');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  test('traffic, probes, a live ConfigMap edit and a SIGTERM drain', async () => {
    const [deployment, , configMap] = loadExamples() as any[];
    const pod = podFromTemplate(deployment);
    // Free ports instead of 3000: the number changes, the name `http` does not.
    const http = pod.spec.containers[0]!.ports!.find((p) => p.name === 'http')!;
    http.containerPort = ports.serving;
    pod.metadata!.annotations = { ...pod.metadata!.annotations, 'portcullis.dev/app-port': String(ports.app) };

    const result = injectPod(pod, settings);
    if (result.action !== 'inject') throw new Error(`not injected: ${JSON.stringify(result)}`);
    const injected = result.pod;
    expect(await validateAll([{ apiVersion: 'v1', kind: 'Pod', ...injected, metadata: { ...injected.metadata, name: POD_NAME } }])).toEqual([]);
    const sidecar = injected.spec.initContainers!.find((c) => c.name === 'portcullis')!;
    const app = injected.spec.containers.find((c) => c.name === 'app')!;
    expect(injected.spec.volumes?.find((v) => v.name === 'portcullis-config')).toEqual({ name: 'portcullis-config', configMap: { name: 'example-app-portcullis' } });

    // The ConfigMap volume, as the kubelet lays it out, at the sidecar's mount.
    const mount = sidecar.volumeMounts!.find((m) => m.name === 'portcullis-config')!;
    const cmText: string = configMap.data['portcullis.yaml'];
    expect(parseYaml(cmText)).not.toHaveProperty('listen');
    const loopback = '\nlisten: { host: 127.0.0.1 }\nadmin: { host: 127.0.0.1 }\n';
    const volume = configMapVolume(cmText + loopback);

    // The app, with the environment the injector gave it (APP_PORT = the moved port).
    const appEnv = kubeletEnv(app);
    expect(appEnv['APP_PORT']).toBe(String(ports.app));
    const appCmd = argvOf(app, {});
    expect(appCmd.argv).toEqual([IMAGE_PATHS['/app/app.mjs']]);
    const appProc = startProcess(appCmd.file, appCmd.argv, cleanEnv({ ...appEnv, APP_HOST: '127.0.0.1' }), ROOT);
    await appProc.waitForLog((l) => l['msg'] === 'example app started', 'example app started');

    // The sidecar: the rendered command, args and environment.
    const sidecarEnv = kubeletEnv(sidecar);
    expect(sidecarEnv['OTEL_RESOURCE_ATTRIBUTES']).toBe(`k8s.pod.name=${POD_NAME},k8s.namespace.name=${NAMESPACE},k8s.node.name=${NODE_NAME}`);
    const sidecarCmd = argvOf(sidecar, { [`${mount.mountPath}/portcullis.yaml`]: volume.file });
    expect(sidecarCmd.argv).toEqual([
      IMAGE_PATHS['/app/dist/main.js'],
      'run',
      '--config',
      volume.file,
      '--admin-port',
      String(ports.admin),
      '--port',
      String(ports.serving),
      '--upstream',
      `http://127.0.0.1:${ports.app}`,
    ]);
    const proc = startProcess(sidecarCmd.file, sidecarCmd.argv, cleanEnv({ ...sidecarEnv, OTEL_SDK_DISABLED: 'true' }), ROOT);
    const started = await proc.waitForLog((l) => l['msg'] === 'portcullis started', 'portcullis started');
    expect(started).toMatchObject({ port: ports.serving, adminPort: ports.admin, upstream: `http://127.0.0.1:${ports.app}`, inflightMax: 20 });
    const admin = `http://127.0.0.1:${ports.admin}`;
    const stats = async () => (await (await fetch(`${admin}/stats`)).json()) as any;

    // Traffic to the pod's serving port goes through the sidecar to the app.
    const hello = await get(`http://127.0.0.1:${ports.serving}/`);
    expect(hello.status).toBe(200);
    expect(hello.text).toBe('hello from the example app\n');
    expect((await stats()).totals.admitted).toBe(1);

    // The sidecar's probes answer on its admin port.
    for (const probe of [sidecar.readinessProbe, sidecar.livenessProbe]) {
      const h = probe!.httpGet as { path: string; port: string | number };
      expect((await get(`http://127.0.0.1:${portOf(sidecar, h.port)}${h.path}`)).status).toBe(200);
    }
    // The app's readiness probe, rewritten, reaches the app directly: the sidecar never sees it.
    const appProbe = app.readinessProbe!.httpGet as { path: string; port: string | number };
    expect(portOf(app, appProbe.port)).toBe(ports.app);
    expect((await get(`http://127.0.0.1:${portOf(app, appProbe.port)}${appProbe.path}`)).status).toBe(200);
    expect(app.livenessProbe!.tcpSocket!.port).toBe(ports.app);
    expect((await stats()).totals.admitted).toBe(1);

    // A live ConfigMap edit (kubelet-style ..data swap) lowers the global limit to 1.
    const edited = parseYaml(cmText) as any;
    edited.inflight.max = 1;
    edited.inflight.queue.size = 0;
    volume.update(stringifyYaml(edited) + loopback);
    await waitFor('the edited limit in /stats', async () => (await stats()).limiters.find((l: any) => l.name === 'global')?.max === 1, { timeoutMs: 10_000 });
    const slow = fetch(`http://127.0.0.1:${ports.serving}/slow?ms=1500`, { signal: AbortSignal.timeout(10_000) });
    await waitFor('the slow request in flight', async () => (await stats()).limiters.find((l: any) => l.name === 'global')?.inflight === 1);
    const second = await get(`http://127.0.0.1:${ports.serving}/`);
    expect(second.status).toBe(503);
    expect(second.headers.get('x-portcullis-reason')).toBe('inflight_limit');

    // SIGTERM: /readyz turns 503, the request in flight still completes, the sidecar exits 0.
    proc.child.kill('SIGTERM');
    await waitFor('/readyz 503 while draining', async () => (await get(`${admin}/readyz`)).status === 503);
    const done = await slow;
    expect(done.status).toBe(200);
    expect(await done.text()).toBe('slept 1500ms\n');
    expect(await proc.exit).toEqual({ code: 0, signal: null });
    expect(proc.logs.map((l) => l['msg'])).toEqual(expect.arrayContaining(['config reloaded', 'portcullis stopped']));
    // Nothing above reached the app except through the sidecar or as the app's own probe.
    appProc.child.kill('SIGTERM');
    expect((await appProc.exit).code).toBe(0);
  });
});
