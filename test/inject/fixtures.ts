/**
 * AdmissionReview requests shaped like the API server's: a pod created by a ReplicaSet for a
 * Deployment (generateName, no name yet, defaults applied, the ServiceAccount admission plugin's
 * token volume already in), and the helpers to apply the webhook's JSON Patch the way the API
 * server does (a real RFC 6902 implementation, fast-json-patch, with validation on).
 */
import { randomUUID } from 'node:crypto';
import jsonpatch from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { Container, Pod } from '../../src/inject/k8s.ts';
import { parseSettings } from '../../src/inject/settings.ts';
import type { InjectorSettings } from '../../src/inject/settings.ts';
import { settingsJson, template } from '../helm/helm.ts';

const TOKEN_VOLUME = 'kube-api-access-x7k2p';
const tokenMount = { name: TOKEN_VOLUME, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' };
const defaults = { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' };

/** The "shop" app: named ports http (8080) and metrics (9090), three probes, a preStop, an init container. */
export function shopContainer(): Container {
  return {
    name: 'shop',
    image: 'registry.example/shop:1.4.2',
    ports: [
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9090, protocol: 'TCP' },
    ],
    env: [
      { name: 'PORT', value: '8080' },
      { name: 'LOG_LEVEL', value: 'info' },
    ],
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    readinessProbe: { httpGet: { path: '/ready', port: 'http', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 5, successThreshold: 1, failureThreshold: 3 },
    livenessProbe: { tcpSocket: { port: 8080 }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
    startupProbe: { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 2, successThreshold: 1, failureThreshold: 30 },
    lifecycle: { preStop: { sleep: { seconds: 5 } } },
    volumeMounts: [tokenMount],
    ...defaults,
  };
}

export function deploymentPod(patch: { labels?: Record<string, string>; annotations?: Record<string, string> | undefined; spec?: Record<string, unknown> } = {}): Pod {
  const annotations = 'annotations' in patch ? patch.annotations : { 'portcullis.dev/inflight-max': '64' };
  return {
    metadata: {
      generateName: 'shop-7d9c5b8f6d-',
      namespace: 'shop',
      labels: { app: 'shop', 'pod-template-hash': '7d9c5b8f6d', 'portcullis.dev/inject': 'enabled', ...patch.labels },
      ...(annotations !== undefined ? { annotations } : {}),
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'shop-7d9c5b8f6d',
          uid: '0f3c0a54-7a38-4a4e-9d58-3c1d2b3a1f00',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      volumes: [
        {
          name: TOKEN_VOLUME,
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
            ],
            defaultMode: 420,
          },
        },
      ],
      initContainers: [
        { name: 'migrate', image: 'registry.example/shop:1.4.2', command: ['/app/migrate', '--wait'], resources: {}, volumeMounts: [tokenMount], ...defaults },
      ],
      containers: [shopContainer()],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      ...patch.spec,
    },
    status: {},
  };
}

export function admissionReview(
  object: unknown,
  { operation = 'CREATE', kind = 'Pod', resource = 'pods', namespace = 'shop', subResource }: { operation?: string; kind?: string; resource?: string; namespace?: string; subResource?: string } = {},
) {
  const gvk = { group: '', version: 'v1', kind };
  const gvr = { group: '', version: 'v1', resource };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: gvk,
      resource: gvr,
      ...(subResource ? { subResource } : {}),
      requestKind: gvk,
      requestResource: gvr,
      namespace,
      operation,
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: 'a2a3a5b0-0c6e-4a55-bb05-5ab3e1f0f3d1',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

/** Decodes a response's patch and applies it to `pod` as the API server would; throws when it does not apply. */
export function applyResponsePatch(pod: Pod, response: { patch?: string; patchType?: string }): { pod: Pod; ops: Operation[] } {
  if (response.patch === undefined) return { pod, ops: [] };
  if (response.patchType !== 'JSONPatch') throw new Error(`patchType ${response.patchType}`);
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
  const result = jsonpatch.applyPatch(structuredClone(pod), ops, true, false);
  return { pod: result.newDocument as Pod, ops };
}

/** A pod object with apiVersion and kind, for the schema validator. */
export const asObject = (pod: Pod) => ({ apiVersion: 'v1', kind: 'Pod', ...pod, metadata: { ...pod.metadata } });

const settingsCache = new Map<string, InjectorSettings>();

/** The injector settings the real chart renders for a cluster of version `kube`, with `values`. */
export async function chartSettings(kube: string, values: Record<string, unknown> = {}): Promise<InjectorSettings> {
  const key = `${kube} ${JSON.stringify(values)}`;
  let s = settingsCache.get(key);
  if (!s) {
    s = parseSettings(settingsJson(await template(values, ['--kube-version', kube])), 'settings.json');
    settingsCache.set(key, s);
  }
  return s;
}
