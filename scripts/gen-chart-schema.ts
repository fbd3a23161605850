/**
 * Writes charts/portcullis/values.schema.json. The chart's own keys are described here; the
 * `defaults` subtree is taken from schema/portcullis.schema.json (generated from the zod config
 * schema), so a limit key means the same, with the same bounds, in values.yaml and in a config
 * file. Every object is closed (additionalProperties: false). Run after changing either:
 *   node_modules/.bin/deno run --allow-read --allow-write scripts/gen-chart-schema.ts   (npm run gen:chart-schema)
 * test/helm/chart-schema.test.ts fails while the committed file is stale.
 */

type Schema = Record<string, unknown>;

/** Config keys a pod's sidecar takes from `defaults`; listen, admin and upstream.url come from the pod. */
export const DEFAULTS_KEYS = ['upstream', 'connections', 'inflight', 'upgrade', 'clientKey', 'routes', 'paths', 'reject', 'dryRun', 'telemetry', 'drain'] as const;

const closed = (description: string, properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({
  description,
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const str = (description: string, extra: Schema = {}): Schema => ({ description, type: 'string', ...extra });
const int = (description: string, minimum: number, maximum?: number): Schema => ({
  description,
  type: 'integer',
  minimum,
  ...(maximum !== undefined ? { maximum } : {}),
});
const stringMap = (description: string): Schema => ({ description, type: 'object', additionalProperties: { type: 'string' } });

const DURATION = '^\\d+(\\.\\d+)?(ms|s|m|h)$';
const GO_DURATION = '^(\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h))+$';
const QUANTITY = '^[+]?(\\d+(\\.\\d*)?|\\.\\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\\d+)?$';
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

const port = (description: string): Schema => int(description, 1, 65535);
const quantities = (description: string): Schema => ({
  description,
  type: 'object',
  propertyNames: { pattern: '^[a-zA-Z0-9./-]+$' },
  additionalProperties: { anyOf: [{ type: 'string', pattern: QUANTITY }, { type: 'number', minimum: 0 }] },
});
const resources = (description: string): Schema =>
  closed(description, { requests: quantities('resource requests'), limits: quantities('resource limits') }, []);

const labelSelector = (description: string): Schema =>
  closed(
    description,
    {
      matchLabels: stringMap('labels that must all match'),
      matchExpressions: {
        type: 'array',
        items: closed(
          'a label selector requirement',
          {
            key: str('label key', { minLength: 1 }),
            operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
            values: { type: 'array', items: { type: 'string' } },
          },
          ['key', 'operator'],
        ),
      },
    },
    [],
  );

const image = (description: string, emptyMeansDefault: boolean): Schema =>
  closed(description, {
    repository: str('image repository', emptyMeansDefault ? {} : { minLength: 1 }),
    tag: str('image tag'),
    pullPolicy: { type: 'string', enum: [...(emptyMeansDefault ? [''] : []), 'Always', 'IfNotPresent', 'Never'] },
  });

/** Removes `default` keywords (values.yaml holds the values) while keeping the rest of each schema. */
function withoutDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDefaults);
  if (typeof node !== 'object' || node === null) return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'default') continue;
    if (k === 'properties' && typeof v === 'object' && v !== null) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, withoutDefaults(s)]));
    } else out[k] = withoutDefaults(v);
  }
  return out;
}

/** The values schema, from the config file's JSON Schema. */
export function chartValuesSchema(configSchema: Schema): Schema {
  const props = configSchema['properties'] as Record<string, Schema>;
  const defaultsProps: Record<string, Schema> = {};
  for (const key of DEFAULTS_KEYS) {
    const s = props[key];
    if (s === undefined) throw new Error(`schema/portcullis.schema.json has no property ${key}`);
    defaultsProps[key] = withoutDefaults(s) as Schema;
  }
  // upstream.url is the pod's: http://127.0.0.1:<the app's new port>.
  const upstream = defaultsProps['upstream'] as Schema & { properties: Record<string, Schema> };
  const { url: _perPod, ...upstreamProps } = upstream.properties;
  defaultsProps['upstream'] = { ...upstream, properties: upstreamProps };

  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'portcullis chart values',
    type: 'object',
    additionalProperties: false,
    required: ['image', 'injector', 'webhook', 'sidecar', 'defaults'],
    properties: {
      nameOverride: str('overrides the chart name in object names', { pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$', maxLength: 63 }),
      fullnameOverride: str('overrides the full name of every object', { pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$', maxLength: 63 }),
      image: image('the portcullis image (injector, and sidecar unless sidecar.image says otherwise)', false),
      imagePullSecrets: { type: 'array', items: closed('a Secret name', { name: str('Secret name', { minLength: 1 }) }) },
      injector: closed('the injector Deployment', {
        replicas: int('injector replicas', 1),
        port: port('HTTPS port inside the pod'),
        shutdownDelay: str('keep serving this long after SIGTERM', { pattern: DURATION }),
        resources: resources('injector container resources'),
        podAnnotations: stringMap('extra pod annotations'),
        podLabels: stringMap('extra pod labels'),
        nodeSelector: stringMap('node selector'),
        tolerations: { type: 'array', items: { type: 'object' } },
        affinity: { type: 'object' },
        priorityClassName: str('priority class; empty for none'),
      }),
      podDisruptionBudget: closed('PodDisruptionBudget when injector.replicas > 1', {
        minAvailable: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^\\d+%$' }] },
      }),
      serviceAccount: closed('the injector ServiceAccount', {
        create: { type: 'boolean' },
        name: str('ServiceAccount name'),
        annotations: stringMap('ServiceAccount annotations'),
      }),
      webhook: closed('the MutatingWebhookConfiguration', {
        failurePolicy: { description: 'Ignore: a webhook outage never blocks pod creation', type: 'string', enum: ['Ignore', 'Fail'] },
        timeoutSeconds: int('seconds the API server waits for the injector', 1, 30),
        objectSelector: labelSelector('pods sent to the injector (the opt-in label)'),
        namespaceSelector: labelSelector('namespaces whose pods are sent to the injector'),
        excludeNamespaces: { type: 'array', items: { type: 'string', pattern: DNS_LABEL, maxLength: 63 }, uniqueItems: true },
      }),
      tls: closed('Helm-generated TLS', { validityDays: int('validity of the generated CA and certificate, days', 1, 36500) }),
      certManager: closed('TLS from cert-manager', {
        enabled: { type: 'boolean' },
        issuerRef: closed('issuer of the serving certificate; empty name: the chart creates its own CA', {
          name: str('issuer name'),
          kind: { type: 'string', enum: ['Issuer', 'ClusterIssuer'] },
          group: str('issuer API group', { minLength: 1 }),
        }),
        duration: str('serving certificate lifetime (Go duration)', { pattern: GO_DURATION }),
        renewBefore: str('renew this long before expiry (Go duration)', { pattern: GO_DURATION }),
        caDuration: str("lifetime of the chart's own CA (Go duration)", { pattern: GO_DURATION }),
      }),
      sidecar: closed('the injected sidecar', {
        image: image('sidecar image; empty parts come from image', true),
        nativeSidecar: {
          description: 'auto: native sidecar on Kubernetes >= 1.29; true/false force it',
          enum: ['auto', true, false],
        },
        adminPort: port('admin port (/healthz /readyz /stats /config /metrics)'),
        appPort: port('the port the app moves to'),
        appPortEnv: str("the app's environment variable holding its new port", { pattern: ENV_NAME }),
        runAsUser: int('non-root user and group ID', 1, 2147483647),
        otlpEndpoint: str('OTEL_EXPORTER_OTLP_ENDPOINT; empty: no span export', { pattern: '^(https?://.+)?$' }),
        extraEnv: {
          type: 'array',
          items: closed(
            'a Kubernetes EnvVar',
            { name: str('variable name', { pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$' }), value: { type: 'string' }, valueFrom: { type: 'object' } },
            ['name'],
          ),
        },
        probes: closed('sidecar probe periods', {
          readinessPeriodSeconds: int('seconds between readiness probes', 1, 300),
          livenessPeriodSeconds: int('seconds between liveness probes', 1, 300),
        }),
        graceMarginSeconds: int('added to drain.delay + drain.timeout for terminationGracePeriodSeconds', 0, 3600),
        resources: resources('sidecar container resources'),
      }),
      defaults: {
        description: "the sidecar's config file for pods without a ConfigMap: the config file's keys (schema/portcullis.schema.json)",
        type: 'object',
        properties: defaultsProps,
        additionalProperties: false,
      },
    },
  };
}

export function chartValuesSchemaText(configSchemaText: string): string {
  return `${JSON.stringify(chartValuesSchema(JSON.parse(configSchemaText) as Schema), null, 2)}\n`;
}

declare const Deno: {
  readTextFile(p: URL): Promise<string>;
  writeTextFile(p: URL, s: string): Promise<void>;
};

if ((import.meta as { main?: boolean }).main) {
  const source = new URL('../schema/portcullis.schema.json', import.meta.url);
  const target = new URL('../charts/portcullis/values.schema.json', import.meta.url);
  await Deno.writeTextFile(target, chartValuesSchemaText(await Deno.readTextFile(source)));
  console.log(`wrote ${target.pathname}`);
}
