/**
 * The sidecar's config directory: the pod's ConfigMap, or, for pods without one, a downward-API
 * file projected from an annotation holding the chart's defaults with the pod's inline limits.
 * Also the drain the sidecar will run with it, which the pod's grace period must cover.
 */
import { loadConfig } from '../core/config-load.ts';
import { ConfigError } from '../core/errors.ts';
import { ANNOTATION, LIMIT_ANNOTATIONS, limitValue } from './annotations.ts';
import type { Annotations } from './annotations.ts';
import type { Volume } from './k8s.ts';
import { CONFIG_KEY } from './settings.ts';
import type { InjectorSettings } from './settings.ts';

type Json = Record<string, unknown>;

export interface SidecarConfig {
  /** The pod volume the sidecar's config directory is mounted from. */
  volume: Volume;
  /** The config file text for the generated-config annotation; unset with a ConfigMap. */
  generated: string | undefined;
  /** drain.delay and drain.timeout in milliseconds, as the sidecar will run them. */
  drainMs: { delay: number; timeout: number };
  /** For the summary: `configmap/<name>` or `inline`. */
  source: string;
}

export interface SidecarConfigInput {
  annotations: Annotations;
  /** The pod's own volumes: none may have the config volume's name. */
  podVolumes: readonly Volume[] | undefined;
  settings: InjectorSettings;
  /** Where what is wrong goes. */
  problems: string[];
}

export function sidecarConfig({ annotations, podVolumes, settings, problems }: SidecarConfigInput): SidecarConfig {
  if ((podVolumes ?? []).some((v) => v.name === settings.configVolume)) {
    problems.push(`the pod already has a volume named ${settings.configVolume}`);
  }
  const configMap = annotations[ANNOTATION.config];
  const inline = LIMIT_ANNOTATIONS.filter((l) => annotations[l.annotation] !== undefined);
  if (configMap !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(configMap) || configMap.length > 253) {
      problems.push(`${ANNOTATION.config} must be a ConfigMap name, got ${JSON.stringify(configMap)}`);
    }
    if (inline.length > 0) {
      problems.push(`${inline.map((l) => l.annotation).join(', ')} cannot be combined with ${ANNOTATION.config}: put the limits in the ConfigMap`);
    }
    return {
      volume: { name: settings.configVolume, configMap: { name: configMap } },
      generated: undefined,
      drainMs: chartDrainMs(settings),
      source: `configmap/${configMap}`,
    };
  }
  let config = structuredClone(settings.config) as Json;
  for (const l of inline) config = setPath(config, l.path, limitValue(l.kind, annotations[l.annotation] as string));
  // A pod's fixed max wins over an adaptive global limit in the chart's defaults (a limiter has one or the other).
  if (inline.some((l) => l.path.join('.') === 'inflight.max')) config = withoutAdaptive(config);
  // A native sidecar is stopped only after the app has exited, when the pod has long left the
  // Service's endpoints: keeping the listener open then (drain.delay) would only answer 502.
  if (settings.nativeSidecar) config = setPath(config, ['drain', 'delay'], 0);
  const generated = JSON.stringify(config);
  let drainMs = chartDrainMs(settings);
  try {
    const drain = loadConfig(generated, 'generated config').config.drain;
    drainMs = { delay: drain.delay, timeout: drain.timeout };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) {
      const from = inline.find((l) => l.path.join('.') === p.path);
      problems.push(`${from ? from.annotation : `chart defaults ${p.path}`}: ${p.message}`);
    }
  }
  const item = { path: CONFIG_KEY, fieldRef: { fieldPath: `metadata.annotations['${ANNOTATION.generatedConfig}']` } };
  return { volume: { name: settings.configVolume, downwardAPI: { items: [item] } }, generated, drainMs, source: 'inline' };
}

/** The chart's drain as the sidecar will run it: a native sidecar runs without the delay (see above). */
function chartDrainMs(settings: InjectorSettings): { delay: number; timeout: number } {
  return settings.nativeSidecar ? { ...settings.drainMs, delay: 0 } : settings.drainMs;
}

function withoutAdaptive(config: Json): Json {
  const inflight = config['inflight'];
  if (typeof inflight !== 'object' || inflight === null || Array.isArray(inflight) || !('adaptive' in inflight)) return config;
  const { adaptive: _replaced, ...rest } = inflight as Json;
  return { ...config, inflight: rest };
}

function setPath(obj: Json, path: readonly string[], value: unknown): Json {
  const [head, ...rest] = path;
  if (head === undefined) return obj;
  const cur = obj[head];
  const child = typeof cur === 'object' && cur !== null && !Array.isArray(cur) ? (cur as Json) : {};
  return { ...obj, [head]: rest.length === 0 ? value : setPath(child, rest, value) };
}
