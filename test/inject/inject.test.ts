/**
 * The injector's pure core: AdmissionReview requests shaped like the API server's in, the JSON
 * Patch out, applied with a real RFC 6902 implementation, the patched pod validated against the
 * Kubernetes schema and checked against DESIGN.md "Kubernetes". Settings come from the real
 * chart (helm template), so chart and injector are tested together.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { reviewAdmission } from '../../src/inject/review.ts';
import { injectPod } from '../../src/inject/inject.ts';
import type { Container, Pod } from '../../src/inject/k8s.ts';
import type { InjectorSettings } from '../../src/inject/settings.ts';
import { loadConfig } from '../../src/core/config-load.ts';
import { validateAll } from '../helm/k8s-validate.ts';
import { admissionReview, applyResponsePatch, asObject, chartSettings, deploymentPod } from './fixtures.ts';

let native: InjectorSettings;
let classic: InjectorSettings;
beforeAll(async () => {
  native = await chartSettings('1.30.0');
  classic = await chartSettings('1.28.0');
});

/** Runs one review, applies its patch, validates the result; returns both. */
async function admit(pod: Pod, settings: InjectorSettings, opts: Parameters<typeof admissionReview>[1] = {}) {
  const review = admissionReview(pod, opts);
  const out = reviewAdmission(JSON.parse(JSON.stringify(review)), settings);
  expect(out.response).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
  expect(out.response.response.uid).toBe(review.request.uid);
  const { pod: patched, ops } = applyResponsePatch(pod, out.response.response);
  return { out, patched, ops, response: out.response.response };
}

const sidecarOf = (pod: Pod, settings: InjectorSettings): Container => {
  const list = settings.nativeSidecar ? pod.spec.initContainers : pod.spec.containers;
  const c = list?.find((x) => x.name === 'portcullis');
  if (!c) throw new Error('no sidecar');
  return c;
};
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('a Deployment pod (named ports, httpGet and tcpSocket probes, an init container)', () => {
  test('native sidecar: the patch applies, the pod is valid, and it is what DESIGN.md says', async () => {
    const pod = deploymentPod();
    const { patched, response, ops } = await admit(pod, native);
    expect(response.allowed).toBe(true);
    expect(ops.map((o) => `${o.op} ${o.path}`)).toEqual([
      'replace /metadata/annotations',
      'replace /spec/containers',
      'replace /spec/initContainers',
      'replace /spec/volumes',
    ]);
    expect(await validateAll([asObject(patched)])).toEqual([]);

    // The native sidecar comes after the pod's own init containers, restartPolicy Always.
    expect(patched.spec.initContainers?.map((c) => c.name)).toEqual(['migrate', 'portcullis']);
    expect(patched.spec.containers.map((c) => c.name)).toEqual(['shop']);
    const sidecar = sidecarOf(patched, native);
    expect(sidecar.restartPolicy).toBe('Always');

    // It takes over the serving port, number and name, so Services and targetPort: http are unchanged.
    expect(sidecar.ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'pc-admin', containerPort: 9901, protocol: 'TCP' },
    ]);
    expect(sidecar.args).toEqual([
      'run',
      '--config',
      '/etc/portcullis/portcullis.yaml',
      '--admin-port',
      '9901',
      '--port',
      '8080',
      '--upstream',
      'http://127.0.0.1:18080',
    ]);
    expect(sidecar.command).toEqual(['node', '/app/dist/main.js']);

    // The app moves to 18080, told by PORT (replaced in place), its other port untouched.
    const app = patched.spec.containers[0]!;
    expect(app.ports).toEqual([
      { containerPort: 18080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ]);
    expect(app.env).toEqual([
      { name: 'PORT', value: '18080' },
      { name: 'LOG_LEVEL', value: 'info' },
    ]);
    // Probes reach the app directly, never through the sidecar.
    expect(app.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 18080, scheme: 'HTTP' });
    expect(app.livenessProbe?.tcpSocket).toEqual({ port: 18080 });
    expect(app.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 18080, scheme: 'HTTP' });
    expect(app.lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    // The sidecar's own probes are on its admin port.
    expect(sidecar.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'pc-admin' });
    expect(sidecar.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'pc-admin' });

    // Locked down.
    expect(sidecar['securityContext']).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // The config directory: a volume mounted as a directory, here projected from the generated annotation.
    expect(sidecar.volumeMounts).toEqual([{ name: 'portcullis-config', mountPath: '/etc/portcullis', readOnly: true }]);
    expect(patched.spec.volumes?.map((v) => v.name)).toEqual(['kube-api-access-x7k2p', 'portcullis-config']);
    expect(patched.spec.volumes?.[1]).toEqual({
      name: 'portcullis-config',
      downwardAPI: { items: [{ path: 'portcullis.yaml', fieldRef: { fieldPath: "metadata.annotations['portcullis.dev/generated-config']" } }] },
    });
    const annotations = patched.metadata?.annotations ?? {};
    expect(annotations['portcullis.dev/injected']).toBe('true');
    expect(annotations['kubectl.kubernetes.io/default-container']).toBe('shop');
    const generated = loadConfig(annotations['portcullis.dev/generated-config'], 'annotation').config;
    expect(generated.inflight.max).toBe(64); // the pod's portcullis.dev/inflight-max
    expect(generated.connections.max).toBe(4096); // the chart's defaults
    expect(generated.drain).toEqual({ delay: 0, timeout: 25_000 }); // native: stopped after the app, no delay
    // drain 0 + 25 s + 5 s margin fits the default 30 s: unchanged.
    expect(patched.spec.terminationGracePeriodSeconds).toBe(30);

    // Pod, namespace and node for telemetry, from the downward API (the pod has no name yet).
    expect(envOf(sidecar)).toMatchObject({
      K8S_POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME)',
    });
    // Everything else the API server put in is still there.
    expect(patched.spec.tolerations).toEqual(pod.spec['tolerations']);
    expect(patched.metadata?.ownerReferences).toEqual(pod.metadata?.ownerReferences);
  });

  test('classic sidecar: a regular container, drain delay kept, grace period raised to cover it', async () => {
    const { patched, response } = await admit(deploymentPod(), classic);
    expect(response.allowed).toBe(true);
    expect(await validateAll([asObject(patched)])).toEqual([]);
    expect(patched.spec.initContainers?.map((c) => c.name)).toEqual(['migrate']);
    expect(patched.spec.containers.map((c) => c.name)).toEqual(['shop', 'portcullis']);
    const sidecar = sidecarOf(patched, classic);
    expect(sidecar.restartPolicy).toBeUndefined();
    const generated = loadConfig(patched.metadata?.annotations?.['portcullis.dev/generated-config'], 'annotation').config;
    // SIGTERM reaches app and sidecar together: keep serving while endpoints update, then drain.
    expect(generated.drain).toEqual({ delay: 5_000, timeout: 25_000 });
    expect(patched.spec.terminationGracePeriodSeconds).toBe(35);
  });

  test('re-injecting an injected pod changes nothing', async () => {
    for (const settings of [native, classic]) {
      const { patched } = await admit(deploymentPod(), settings);
      const again = await admit(patched, settings);
      expect(again.response).toEqual({ uid: again.response.uid, allowed: true });
      expect(again.patched).toEqual(patched);
      expect(again.out.result).toBe('skipped');
      expect(again.out.reason).toBe('already injected');
    }
    // The marker alone is enough, and so is a container of that name.
    const marked = deploymentPod({ annotations: { 'portcullis.dev/injected': 'true' } });
    expect(injectPod(marked, native)).toMatchObject({ action: 'skip', reason: 'already injected' });
    const withContainer = deploymentPod();
    withContainer.spec.containers.push({ name: 'portcullis', image: 'x' });
    expect(injectPod(withContainer, native)).toMatchObject({ action: 'skip', reason: 'already injected' });
  });

  test('an opted-out pod is admitted untouched', async () => {
    const pod = deploymentPod({ annotations: { 'portcullis.dev/inject': 'disabled' } });
    const { response, patched, out } = await admit(pod, native);
    expect(response).toEqual({ uid: response.uid, allowed: true });
    expect(patched).toEqual(pod);
    expect(out.reason).toContain('opted out');
  });
});

describe('annotations', () => {
  test('a ConfigMap per workload: mounted as a directory, no generated config', async () => {
    const pod = deploymentPod({ annotations: { 'portcullis.dev/config': 'shop-portcullis' } });
    const { patched } = await admit(pod, native);
    expect(await validateAll([asObject(patched)])).toEqual([]);
    expect(patched.spec.volumes?.find((v) => v.name === 'portcullis-config')).toEqual({
      name: 'portcullis-config',
      configMap: { name: 'shop-portcullis' },
    });
    expect(patched.metadata?.annotations?.['portcullis.dev/generated-config']).toBeUndefined();
    expect(sidecarOf(patched, native).volumeMounts?.[0]?.['subPath']).toBeUndefined();
    // The grace period covers the chart's drain as each mode runs it (native: no delay).
    expect(patched.spec.terminationGracePeriodSeconds).toBe(30);
    const { patched: classicPod } = await admit(pod, classic);
    expect(classicPod.spec.terminationGracePeriodSeconds).toBe(35);
    // A longer grace period of the pod's own is kept.
    const long = deploymentPod({ annotations: { 'portcullis.dev/config': 'shop-portcullis' }, spec: { terminationGracePeriodSeconds: 120 } });
    expect((await admit(long, classic)).patched.spec.terminationGracePeriodSeconds).toBe(120);
  });

  test('app port, its variable, image and resources', async () => {
    const pod = deploymentPod({
      annotations: {
        'portcullis.dev/app-port': '3000',
        'portcullis.dev/app-port-env': 'APP_PORT',
        'portcullis.dev/image': 'registry.example/portcullis:0.1.0-debug',
        'portcullis.dev/cpu-request': '10m',
        'portcullis.dev/memory-limit': '128Mi',
      },
    });
    const { patched } = await admit(pod, classic);
    expect(await validateAll([asObject(patched)])).toEqual([]);
    const sidecar = sidecarOf(patched, classic);
    expect(sidecar.image).toBe('registry.example/portcullis:0.1.0-debug');
    expect(sidecar.resources).toEqual({ requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '128Mi' } });
    expect(sidecar.args?.slice(-2)).toEqual(['--upstream', 'http://127.0.0.1:3000']);
    const app = patched.spec.containers[0]!;
    expect(envOf(app)).toEqual({ PORT: '8080', LOG_LEVEL: 'info', APP_PORT: '3000' });
    expect(app.readinessProbe?.httpGet?.port).toBe(3000);
  });

  test('the serving port by annotation: a name, or a number no container declares', async () => {
    const byName = injectPod(deploymentPod({ annotations: { 'portcullis.dev/port': 'metrics' } }), native);
    expect(byName).toMatchObject({ action: 'inject', summary: { port: 9090, portName: 'metrics', container: 'shop' } });
    const pod = deploymentPod({ annotations: { 'portcullis.dev/port': '7000' } });
    const r = injectPod(pod, native);
    expect(r).toMatchObject({ action: 'inject', summary: { port: 7000, container: 'shop' } });
    if (r.action !== 'inject') throw new Error();
    // Nothing declared on 7000, so the app's ports and probes stay; the sidecar declares 7000 unnamed.
    expect(r.pod.spec.containers[0]?.ports).toEqual(pod.spec.containers[0]?.ports);
    expect(sidecarOf(r.pod, native).ports?.[0]).toEqual({ containerPort: 7000, protocol: 'TCP' });
  });

  test('a pod without any annotations gets them added', async () => {
    const pod = deploymentPod({ annotations: undefined });
    const { patched, ops } = await admit(pod, native);
    expect(ops[0]).toMatchObject({ op: 'add', path: '/metadata/annotations' });
    expect(patched.metadata?.annotations?.['portcullis.dev/injected']).toBe('true');
  });

  test.each([
    [{ 'portcullis.dev/inflight-max': '-3' }, 'portcullis.dev/inflight-max: must be >= 0, got -3'],
    [{ 'portcullis.dev/inflight-max': 'lots' }, 'portcullis.dev/inflight-max: must be a whole number, got "lots"'],
    [{ 'portcullis.dev/inflight-queue-timeout': 'soon' }, 'portcullis.dev/inflight-queue-timeout: must be a duration'],
    [{ 'portcullis.dev/dry-run': 'yes' }, 'portcullis.dev/dry-run'],
    [{ 'portcullis.dev/inflight-mx': '5' }, 'unknown annotation portcullis.dev/inflight-mx (did you mean portcullis.dev/inflight-max?)'],
    [{ 'portcullis.dev/config': 'shop', 'portcullis.dev/inflight-max': '5' }, 'cannot be combined with portcullis.dev/config'],
    [{ 'portcullis.dev/config': 'Not_A_Name' }, 'portcullis.dev/config must be a ConfigMap name'],
    [{ 'portcullis.dev/app-port': '8080' }, 'must differ from the serving port 8080'],
    [{ 'portcullis.dev/app-port': '9090' }, 'already declared by container shop'],
    [{ 'portcullis.dev/port': 'grpc' }, 'portcullis.dev/port: no TCP container port named "grpc"'],
    [{ 'portcullis.dev/container': 'nope' }, 'portcullis.dev/container: no container named "nope"'],
    [{ 'portcullis.dev/cpu-limit': 'fast' }, 'portcullis.dev/cpu-limit must be a resource quantity'],
    [{ 'portcullis.dev/app-port-env': 'MY-PORT' }, 'portcullis.dev/app-port-env must be an environment variable name'],
  ])('%o is refused with a message that names it', async (annotations, message) => {
    const { response, patched } = await admit(deploymentPod({ annotations }), native);
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(400);
    expect(response.status?.message).toContain(message);
    expect(response.status?.message).toMatch(/^portcullis: cannot inject this pod: /);
    expect(response.patch).toBeUndefined();
    expect(patched).toEqual(deploymentPod({ annotations }));
  });

  test('a pod whose ports collide with the sidecar admin port is refused', () => {
    const pod = deploymentPod();
    pod.spec.containers[0]!.ports!.push({ name: 'debug', containerPort: 9901, protocol: 'TCP' });
    expect(injectPod(pod, native)).toMatchObject({ action: 'deny', message: expect.stringContaining("port 9901 (the sidecar's admin port)") });
  });

  test('a pod without any port to take over is refused', () => {
    const pod = deploymentPod();
    delete pod.spec.containers[0]!.ports;
    expect(injectPod(pod, native)).toMatchObject({ action: 'deny', message: expect.stringContaining('no port to take over') });
  });
});

describe('pods that are not injected', () => {
  test('a Job pod is left alone without native sidecars (a regular sidecar would never exit)', async () => {
    const job = deploymentPod({ spec: { restartPolicy: 'Never' } });
    const { response, patched } = await admit(job, classic);
    expect(response.allowed).toBe(true);
    expect(response.warnings?.[0]).toContain('would never complete');
    expect(patched).toEqual(job);
    // With native sidecars a Job pod is injected: the sidecar does not hold up completion.
    expect((await admit(job, native)).response.patch).toBeDefined();
  });

  test('hostNetwork pods are left alone', async () => {
    const pod = deploymentPod({ spec: { hostNetwork: true } });
    const { response } = await admit(pod, native);
    expect(response.allowed).toBe(true);
    expect(response.patch).toBeUndefined();
  });

  test('UPDATE, other kinds and subresources pass untouched', () => {
    for (const opts of [{ operation: 'UPDATE' }, { kind: 'ConfigMap', resource: 'configmaps' }, { subResource: 'ephemeralcontainers' }]) {
      const out = reviewAdmission(admissionReview(deploymentPod(), opts), native);
      expect(out.response.response).toEqual({ uid: out.response.response.uid, allowed: true });
      expect(out.result).toBe('ignored');
    }
  });

  test('a body that is not an AdmissionReview v1 is an error (400 at the edge)', () => {
    expect(() => reviewAdmission({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1beta1', request: { uid: 'x' } }, native)).toThrow(/admission.k8s.io\/v1/);
    expect(() => reviewAdmission({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1' }, native)).toThrow(/uid/);
    expect(() => reviewAdmission(admissionReview({ spec: {} }), native)).toThrow(/not a Pod/);
  });
});
