/**
 * The chart with the real helm: lint --strict, rendering with the default values and with the
 * value sets users reach for, every rendered object validated against the Kubernetes OpenAPI
 * models (and for unknown fields), the TLS material it generates, and values.schema.json
 * refusing bad values with a message that names the value.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { isMap, isScalar, parseDocument } from 'yaml';
import type { YAMLMap } from 'yaml';
import { parseSettings } from '../../src/inject/settings.ts';
import { CHART, NAMESPACE, RELEASE, find, helm, parseManifests, setArgs, settingsJson, template } from './helm.ts';
import { validateAll } from './k8s-validate.ts';

const FULL = `${RELEASE}-portcullis`;

/** Value sets rendered, linted and validated; `kube` is the cluster version helm pretends. */
const VALUE_SETS: { name: string; values: Record<string, unknown>; kube?: string }[] = [
  { name: 'defaults', values: {} },
  { name: 'certManager with its own CA', values: { 'certManager.enabled': true } },
  {
    name: 'certManager with a ClusterIssuer',
    values: { 'certManager.enabled': true, 'certManager.issuerRef': { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' } },
  },
  { name: 'nativeSidecar true', values: { 'sidecar.nativeSidecar': true }, kube: '1.27.0' },
  { name: 'nativeSidecar false', values: { 'sidecar.nativeSidecar': false }, kube: '1.33.0' },
  { name: 'nativeSidecar auto on 1.28', values: {}, kube: '1.28.9' },
  { name: 'nativeSidecar auto on 1.29', values: {}, kube: '1.29.0' },
  {
    name: 'custom selectors',
    values: {
      'webhook.namespaceSelector': { matchLabels: { 'portcullis.dev/namespace': 'enabled' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['system'] }] },
      // null drops the default opt-in label (helm merges maps with the defaults).
      'webhook.objectSelector': { matchLabels: null, matchExpressions: [{ key: 'app.kubernetes.io/part-of', operator: 'In', values: ['shop'] }] },
      'webhook.excludeNamespaces': ['kube-system', 'monitoring'],
      'webhook.failurePolicy': 'Fail',
    },
  },
  {
    name: 'replicas 2 and everything set',
    values: {
      'injector.replicas': 2,
      'injector.tolerations': [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
      'injector.nodeSelector': { 'kubernetes.io/os': 'linux' },
      'injector.priorityClassName': 'system-cluster-critical',
      'injector.podAnnotations': { 'prometheus.io/scrape': 'false' },
      imagePullSecrets: [{ name: 'regcred' }],
      'serviceAccount.annotations': { 'example.com/role': 'injector' },
      'sidecar.otlpEndpoint': 'http://otel-collector.observability:4318',
      'sidecar.extraEnv': [{ name: 'OTEL_TRACES_SAMPLER', value: 'always_on' }, { name: 'GOMEMLIMIT_LIKE', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }],
      'sidecar.image': { repository: 'registry.example/portcullis', tag: '0.1.0-debug', pullPolicy: 'Always' },
      'defaults.inflight': { max: 64, perClient: 8, queue: { size: 32, timeout: '2s' } },
      'defaults.routes': [{ name: 'uploads', match: { prefix: '/upload', methods: ['POST'] }, inflight: { max: 4 } }],
    },
  },
];

const render = (set: (typeof VALUE_SETS)[number]) => template(set.values, set.kube ? ['--kube-version', set.kube] : []);

describe('helm lint --strict', () => {
  test.each(VALUE_SETS)('$name', async (set) => {
    const r = await helm(['lint', '--strict', CHART, '--namespace', NAMESPACE, ...setArgs(set.values), ...(set.kube ? ['--kube-version', set.kube] : [])]);
    expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.code).toBe(0);
  });
});

describe('helm template', () => {
  test.each(VALUE_SETS)('$name: every object is valid Kubernetes', async (set) => {
    const objects = await render(set);
    expect(objects.length).toBeGreaterThanOrEqual(6);
    expect(await validateAll(objects)).toEqual([]);
    // The injector accepts the settings the chart renders (it validates them at start).
    const settings = parseSettings(settingsJson(objects), 'settings.json');
    expect(settings.sidecar.name).toBe('portcullis');
    // The sidecar container the chart hands the injector is a valid container too.
    const holder = { name: 'app', image: 'app' };
    const spec = settings.nativeSidecar ? { initContainers: [settings.sidecar], containers: [holder] } : { containers: [holder, settings.sidecar] };
    expect(await validateAll([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'sidecar' }, spec }])).toEqual([]);
  });

  test('default values: the objects, and a locked-down injector', async () => {
    const objects = await template();
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual(
      [
        `ConfigMap/${FULL}-settings`,
        `Deployment/${FULL}`,
        `MutatingWebhookConfiguration/${FULL}`,
        `Secret/${FULL}-tls`,
        `Service/${FULL}`,
        `ServiceAccount/${FULL}`,
      ].sort(),
    );
    const deploy = find(objects, 'Deployment') as any;
    const pod = deploy.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = pod.containers[0];
    expect(c.args.slice(0, 1)).toEqual(['inject']);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', scheme: 'HTTPS' });
    expect(deploy.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'portcullis', 'app.kubernetes.io/instance': RELEASE });
    expect(find(objects, 'Service').spec).toMatchObject({ selector: deploy.spec.selector.matchLabels });
    expect(objects.some((o) => o.kind === 'PodDisruptionBudget')).toBe(false);
  });

  test('the webhook: opt-in label, Ignore, small timeout, never its own namespace', async () => {
    const wh = find(await template(), 'MutatingWebhookConfiguration') as any;
    const w = wh.webhooks[0];
    expect(w).toMatchObject({
      name: 'inject.portcullis.dev',
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
      reinvocationPolicy: 'Never',
      clientConfig: { service: { name: FULL, namespace: NAMESPACE, path: '/mutate', port: 443 } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
      objectSelector: { matchLabels: { 'portcullis.dev/inject': 'enabled' } },
    });
    expect(w.namespaceSelector).toEqual({
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE, 'kube-system', 'kube-node-lease', 'kube-public'] },
      ],
    });
  });

  test('custom selectors are passed through, the exclusions added', async () => {
    const set = VALUE_SETS.find((s) => s.name === 'custom selectors')!;
    const w = (find(await render(set), 'MutatingWebhookConfiguration') as any).webhooks[0];
    expect(w.failurePolicy).toBe('Fail');
    expect(w.objectSelector).toEqual({ matchExpressions: [{ key: 'app.kubernetes.io/part-of', operator: 'In', values: ['shop'] }] });
    expect(w.namespaceSelector).toEqual({
      matchLabels: { 'portcullis.dev/namespace': 'enabled' },
      matchExpressions: [
        { key: 'tier', operator: 'NotIn', values: ['system'] },
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE, 'kube-system', 'monitoring'] },
      ],
    });
  });

  test('generated TLS: the Secret is signed by the caBundle CA for the Service DNS names', async () => {
    const objects = await template();
    const secret = find(objects, 'Secret') as any;
    const caBundle = (find(objects, 'MutatingWebhookConfiguration') as any).webhooks[0].clientConfig.caBundle as string;
    const ca = new X509Certificate(Buffer.from(caBundle, 'base64'));
    const cert = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(secret.data['ca.crt']).toBe(caBundle);
    expect(ca.ca).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    for (const host of [FULL, `${FULL}.${NAMESPACE}`, `${FULL}.${NAMESPACE}.svc`]) expect(cert.checkHost(host)).toBe(host);
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 365 * 86_400_000);
  });

  test('certManager: Issuers and Certificates, cainjector annotation, no Secret and no caBundle', async () => {
    const objects = await template({ 'certManager.enabled': true });
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
    const wh = find(objects, 'MutatingWebhookConfiguration') as any;
    expect(wh.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(`${NAMESPACE}/${FULL}-serving`);
    expect(wh.webhooks[0].clientConfig.caBundle).toBeUndefined();
    const serving = find(objects, 'Certificate', `${FULL}-serving`) as any;
    expect(serving.spec).toMatchObject({ secretName: `${FULL}-tls`, issuerRef: { name: `${FULL}-ca`, kind: 'Issuer' } });
    expect(serving.spec.dnsNames).toContain(`${FULL}.${NAMESPACE}.svc`);
    expect((find(objects, 'Certificate', `${FULL}-ca`) as any).spec.isCA).toBe(true);
    expect((find(objects, 'Issuer', `${FULL}-ca`) as any).spec.ca.secretName).toBe(`${FULL}-ca`);
    expect((find(objects, 'Issuer', `${FULL}-selfsigned`) as any).spec.selfSigned).toEqual({});
    // The injector mounts the Secret cert-manager writes.
    const vol = (find(objects, 'Deployment') as any).spec.template.spec.volumes.find((v: any) => v.name === 'tls');
    expect(vol.secret.secretName).toBe(`${FULL}-tls`);

    const external = await template({ 'certManager.enabled': true, 'certManager.issuerRef': { name: 'corp', kind: 'ClusterIssuer', group: 'cert-manager.io' } });
    expect(external.filter((o) => o.kind === 'Issuer')).toEqual([]);
    expect((find(external, 'Certificate') as any).spec.issuerRef).toEqual({ name: 'corp', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });

  test('replicas > 1 adds a PodDisruptionBudget over the injector pods', async () => {
    const objects = await template({ 'injector.replicas': 2 });
    const pdb = find(objects, 'PodDisruptionBudget') as any;
    expect(pdb.spec).toEqual({ minAvailable: 1, selector: { matchLabels: (find(objects, 'Deployment') as any).spec.selector.matchLabels } });
  });

  test('nativeSidecar: auto follows the cluster version (>= 1.29), true/false force it', async () => {
    const native = async (values: Record<string, unknown>, kube: string) =>
      parseSettings(settingsJson(await template(values, ['--kube-version', kube])), 's').nativeSidecar;
    expect(await native({}, '1.28.9')).toBe(false);
    expect(await native({}, '1.29.0')).toBe(true);
    expect(await native({}, '1.31.2')).toBe(true);
    expect(await native({ 'sidecar.nativeSidecar': true }, '1.28.0')).toBe(true);
    expect(await native({ 'sidecar.nativeSidecar': false }, '1.33.0')).toBe(false);
  });

  test('the sidecar partial: locked down, probes on the admin port, config directory, downward API', async () => {
    const s = parseSettings(settingsJson(await template({}, ['--kube-version', '1.30.0'])), 's').sidecar as any;
    expect(s.restartPolicy).toBe('Always');
    expect(s.command).toEqual(['node', '/app/dist/main.js']);
    expect(s.args).toEqual(['run', '--config', '/etc/portcullis/portcullis.yaml', '--admin-port', '9901']);
    expect(s.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(s.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'pc-admin' });
    expect(s.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'pc-admin' });
    expect(s.ports).toEqual([{ name: 'pc-admin', containerPort: 9901, protocol: 'TCP' }]);
    expect(s.volumeMounts).toEqual([{ name: 'portcullis-config', mountPath: '/etc/portcullis', readOnly: true }]);
    expect(s.volumeMounts[0].subPath).toBeUndefined();
    const env = Object.fromEntries(s.env.map((e: any) => [e.name, e.value ?? e.valueFrom.fieldRef.fieldPath]));
    expect(env).toMatchObject({
      K8S_POD_NAME: 'metadata.name',
      K8S_NAMESPACE_NAME: 'metadata.namespace',
      K8S_NODE_NAME: 'spec.nodeName',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=$(K8S_POD_NAME),k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.node.name=$(K8S_NODE_NAME)',
    });
    // Variables referenced with $(VAR) must come earlier in the list, or the kubelet leaves them as written.
    const names = s.env.map((e: any) => e.name);
    expect(names.indexOf('OTEL_RESOURCE_ATTRIBUTES')).toBeGreaterThan(names.indexOf('K8S_NODE_NAME'));
  });

  test('long release names: every name and label value fits in 63 characters', async () => {
    const long = 'a-release-name-of-fifty-three-characters-helms-limit'.padEnd(53, 'x');
    expect(long.length).toBe(53);
    const r = await helm(['template', long, CHART, '--namespace', NAMESPACE]);
    expect(r.stderr).toBe('');
    for (const o of parseManifests(r.stdout)) {
      expect(o.metadata?.name?.length, `${o.kind} name`).toBeLessThanOrEqual(63);
      expect(o.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      for (const v of Object.values((o.metadata?.['labels'] as Record<string, string>) ?? {})) expect(v.length).toBeLessThanOrEqual(63);
    }
  });
});

describe('values.schema.json rejects bad values', () => {
  const BAD: { set: Record<string, unknown>; message: RegExp }[] = [
    { set: { 'defaults.inflight.max': -1 }, message: /defaults\/inflight\/max.*minimum/s },
    { set: { 'defaults.inflight.maxx': 3 }, message: /defaults\/inflight.*additional properties 'maxx' not allowed/s },
    { set: { 'defaults.connections.onLimit': 'drop' }, message: /defaults\/connections\/onLimit.*value must be one of/s },
    { set: { 'defaults.drain.delay': '5 seconds' }, message: /defaults\/drain\/delay/ },
    { set: { 'defaults.reject.status': 200 }, message: /defaults\/reject\/status.*minimum/s },
    { set: { 'defaults.routes': [{ name: 'x', match: { prefix: 'no-slash' } }] }, message: /defaults\/routes\/0\/match\/prefix/ },
    { set: { 'defaults.upstream.url': 'http://10.0.0.1:80' }, message: /additional properties 'url' not allowed/ },
    { set: { 'webhook.failurePolicy': 'Sometimes' }, message: /webhook\/failurePolicy.*value must be one of 'Ignore', 'Fail'/s },
    { set: { 'webhook.timeoutSeconds': 60 }, message: /webhook\/timeoutSeconds.*maximum/s },
    { set: { 'webhook.objectSelector': { matchExpressions: [{ key: 'a', operator: 'Like' }] } }, message: /objectSelector\/matchExpressions\/0\/operator/ },
    { set: { 'sidecar.nativeSidecar': 'maybe' }, message: /sidecar\/nativeSidecar.*value must be one of/s },
    { set: { 'sidecar.appPort': 70000 }, message: /sidecar\/appPort.*maximum/s },
    { set: { 'sidecar.appPortEnv': 'MY-PORT' }, message: /sidecar\/appPortEnv/ },
    { set: { 'sidecar.resources': { requests: { cpu: 'lots' } } }, message: /sidecar\/resources\/requests\/cpu/ },
    { set: { 'injector.replicas': 0 }, message: /injector\/replicas.*minimum/s },
    { set: { 'certManager.issuerRef': { name: 'x', kind: 'Vault', group: 'cert-manager.io' } }, message: /certManager\/issuerRef\/kind/ },
    { set: { imageTag: 'x' }, message: /additional properties 'imageTag' not allowed/ },
  ];
  test.each(BAD)('$set', async ({ set, message }) => {
    const r = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, ...setArgs(set)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  test('serviceAccount.create false without a name is refused by the template', async () => {
    const r = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, ...setArgs({ 'serviceAccount.create': false })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('serviceAccount.name is required when serviceAccount.create is false');
  });
});

describe('values.yaml', () => {
  test('every key the schema defines carries a "# --" comment', () => {
    const doc = parseDocument(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    const missing: string[] = [];
    let checked = 0;
    const walk = (map: YAMLMap, node: any, path: string) => {
      map.items.forEach((pair, i) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        const sub = node?.properties?.[key];
        if (!sub) return; // free-form maps (labels, selectors' matchLabels) hold data, not values keys
        const comment = [(pair.key as any)?.commentBefore, i === 0 ? map.commentBefore : undefined].filter(Boolean).join('\n');
        checked++;
        if (!/^ --/m.test(comment)) missing.push(path + key);
        if (isMap(pair.value)) walk(pair.value, sub, `${path}${key}.`);
      });
    };
    walk(doc.contents as YAMLMap, schema, '');
    expect(checked).toBeGreaterThan(80);
    expect(missing).toEqual([]);
  });

  test('limit keys are named as in the config file, and values.yaml passes its own schema', async () => {
    const values = parseDocument(readFileSync(join(CHART, 'values.yaml'), 'utf8')).toJS() as any;
    const config = JSON.parse(readFileSync(join(CHART, '..', '..', 'schema', 'portcullis.schema.json'), 'utf8'));
    const paths = (o: any, p = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? paths(v, `${p}${k}.`) : [`${p}${k}`]));
    const configHas = (path: string) => {
      let node = config;
      for (const k of path.split('.')) node = node?.properties?.[k];
      return node !== undefined;
    };
    const defaults = paths(values.defaults);
    expect(defaults).toContain('inflight.max');
    expect(defaults).toContain('connections.max');
    expect(defaults.filter((p) => !configHas(p))).toEqual([]);
    // helm validates values.yaml itself against the schema on every template: the default render passing proves it.
    await template();
  });
});

