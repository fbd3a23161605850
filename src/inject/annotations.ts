/**
 * The pod-facing interface of the injector: the opt-in label, the annotations a pod tunes itself
 * with, and the ones the injector writes. Every `portcullis.dev/` annotation the injector does
 * not know is an error, so a typo cannot silently mean "no limit".
 */

/** Opt-in label (the webhook's objectSelector): `portcullis.dev/inject: enabled`. */
export const INJECT_LABEL = 'portcullis.dev/inject';
export const PREFIX = 'portcullis.dev/';

/** A pod's annotations, as the injector reads them. */
export type Annotations = Readonly<Record<string, string>>;

export const ANNOTATION = {
  /** "disabled" opts a labelled pod out (also accepted as a label value). */
  inject: 'portcullis.dev/inject',
  /** The serving port the sidecar takes over: a number or a container port name. */
  port: 'portcullis.dev/port',
  /** The app container (default: the one that declares the serving port). */
  container: 'portcullis.dev/container',
  /** The port the app moves to. */
  appPort: 'portcullis.dev/app-port',
  /** The environment variable that tells the app its new port. */
  appPortEnv: 'portcullis.dev/app-port-env',
  /** A ConfigMap in the pod's namespace with the key portcullis.yaml; mounted as a directory. */
  config: 'portcullis.dev/config',
  image: 'portcullis.dev/image',
  cpuRequest: 'portcullis.dev/cpu-request',
  cpuLimit: 'portcullis.dev/cpu-limit',
  memoryRequest: 'portcullis.dev/memory-request',
  memoryLimit: 'portcullis.dev/memory-limit',
  /** Written by the injector: the marker that stops a second injection. */
  injected: 'portcullis.dev/injected',
  /** Written by the injector for pods without a ConfigMap: the config file, projected by the downward API. */
  generatedConfig: 'portcullis.dev/generated-config',
} as const;

export type LimitKind = 'count' | 'duration' | 'boolean';

/** Inline limits for the simple case: one annotation per config key, named after it. */
export const LIMIT_ANNOTATIONS: readonly { annotation: string; path: readonly string[]; kind: LimitKind }[] = [
  { annotation: 'portcullis.dev/inflight-max', path: ['inflight', 'max'], kind: 'count' },
  { annotation: 'portcullis.dev/inflight-per-client', path: ['inflight', 'perClient'], kind: 'count' },
  { annotation: 'portcullis.dev/inflight-queue-size', path: ['inflight', 'queue', 'size'], kind: 'count' },
  { annotation: 'portcullis.dev/inflight-queue-timeout', path: ['inflight', 'queue', 'timeout'], kind: 'duration' },
  { annotation: 'portcullis.dev/connections-max', path: ['connections', 'max'], kind: 'count' },
  { annotation: 'portcullis.dev/connections-per-client', path: ['connections', 'perClient'], kind: 'count' },
  { annotation: 'portcullis.dev/dry-run', path: ['dryRun'], kind: 'boolean' },
];

export const RESOURCE_ANNOTATIONS: readonly { annotation: string; section: 'requests' | 'limits'; resource: 'cpu' | 'memory' }[] = [
  { annotation: ANNOTATION.cpuRequest, section: 'requests', resource: 'cpu' },
  { annotation: ANNOTATION.cpuLimit, section: 'limits', resource: 'cpu' },
  { annotation: ANNOTATION.memoryRequest, section: 'requests', resource: 'memory' },
  { annotation: ANNOTATION.memoryLimit, section: 'limits', resource: 'memory' },
];

const KNOWN = new Set<string>([...Object.values(ANNOTATION), ...LIMIT_ANNOTATIONS.map((l) => l.annotation)]);

/** Problems with `portcullis.dev/` annotation names: unknown ones, with a suggestion. */
export function unknownAnnotations(annotations: Annotations): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(annotations)) {
    if (!key.startsWith(PREFIX) || KNOWN.has(key)) continue;
    const near = [...KNOWN].map((k) => ({ k, d: distance(k, key) })).sort((a, b) => a.d - b.d)[0];
    const hint = near && near.d <= 3 ? ` (did you mean ${near.k}?)` : '';
    problems.push(`unknown annotation ${key}${hint}`);
  }
  return problems;
}

/** The value as the config file would hold it: digits become numbers, true/false booleans. */
export function limitValue(kind: LimitKind, raw: string): unknown {
  const v = raw.trim();
  if ((kind === 'count' || kind === 'duration') && /^-?\d+$/.test(v)) return Number(v);
  if (kind === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  return v;
}

/** Kubernetes resource quantity (resource.Quantity's grammar, without exotic exponents). */
export function isQuantity(v: string): boolean {
  return /^[+]?(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/.test(v);
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}
