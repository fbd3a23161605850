/**
 * The injection itself, pure: a Pod as the API server hands it to the webhook, plus the chart's
 * settings, gives the JSON Patch that adds the portcullis sidecar (or a reason not to).
 *
 * What the patched pod looks like (DESIGN.md "Kubernetes"):
 * - the sidecar takes over the app's serving port, number and name, so Services and named
 *   targetPorts need no change; the app moves to `appPort`, told by an environment variable;
 * - every probe and lifecycle hook that aimed at the serving port aims at the app's new port,
 *   so kubelet checks reach the app directly and are never shed;
 * - the sidecar is a native sidecar (init container, restartPolicy Always) or a regular container;
 * - its config directory is the pod's ConfigMap, or, for pods without one, a downward-API file
 *   projected from an annotation holding the chart's defaults with the pod's inline limits;
 * - terminationGracePeriodSeconds covers the sidecar's drain.
 */
import { loadConfig } from '../core/config-load.ts';
import { ConfigError } from '../core/errors.ts';
import {
  ANNOTATION,
  INJECT_LABEL,
  LIMIT_ANNOTATIONS,
  RESOURCE_ANNOTATIONS,
  isQuantity,
  limitValue,
  unknownAnnotations,
} from './annotations.ts';
import type { Container, ContainerPort, IntOrString, PatchOperation, Pod, PortAction, Volume } from './k8s.ts';
import { CONFIG_KEY } from './settings.ts';
import type { InjectorSettings } from './settings.ts';

export interface InjectSummary {
  container: string;
  port: number;
  portName?: string;
  appPort: number;
  native: boolean;
  config: string;
}

export type InjectResult =
  | { action: 'skip'; reason: string; warnings: string[] }
  | { action: 'deny'; message: string }
  | { action: 'inject'; patch: PatchOperation[]; pod: Pod; warnings: string[]; summary: InjectSummary };

const OPT_OUT = new Set(['disabled', 'false']);
const DEFAULT_GRACE_SECONDS = 30;

export function injectPod(input: Pod, settings: InjectorSettings): InjectResult {
  const annotations = input.metadata?.annotations ?? {};
  const labels = input.metadata?.labels ?? {};
  const spec = input.spec;
  const sidecarName = settings.sidecar.name;

  const optOut = annotations[ANNOTATION.inject] ?? labels[INJECT_LABEL];
  if (optOut !== undefined && OPT_OUT.has(optOut)) return skip(`opted out (${ANNOTATION.inject}: ${optOut})`);
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  if (annotations[ANNOTATION.injected] !== undefined || all.some((c) => c.name === sidecarName)) {
    return skip('already injected');
  }
  if (spec.hostNetwork === true) {
    return skip('hostNetwork pod', ['portcullis: not injected: a hostNetwork pod shares the node\'s ports']);
  }
  if (!settings.nativeSidecar && (spec.restartPolicy === 'Never' || spec.restartPolicy === 'OnFailure')) {
    // A regular sidecar container never exits, so the pod would never complete.
    return skip(`restartPolicy ${spec.restartPolicy} without native sidecars`, [
      `portcullis: not injected: a pod with restartPolicy ${spec.restartPolicy} would never complete with a regular sidecar container (native sidecars need Kubernetes >= 1.29)`,
    ]);
  }

  const problems = unknownAnnotations(annotations);
  const warnings: string[] = [];

  // --- which container serves, on which port -------------------------------------------------
  const target = servingTarget(spec.containers, annotations);
  if (typeof target === 'string') return deny([...problems, target]);
  const { appIndex, port: servingPort, entryIndex } = target;
  const app = spec.containers[appIndex] as Container;
  const entry = entryIndex === undefined ? undefined : app.ports?.[entryIndex];
  const portName = entry?.name;

  const appPort = portNumber(annotations[ANNOTATION.appPort], settings.appPort, ANNOTATION.appPort, problems);
  const adminPort = settings.adminPort;
  if (appPort === servingPort) problems.push(`${ANNOTATION.appPort} (${appPort}) must differ from the serving port ${servingPort}`);
  if (appPort === adminPort) problems.push(`${ANNOTATION.appPort} (${appPort}) must differ from the sidecar's admin port ${adminPort}`);
  if (servingPort === adminPort) problems.push(`the serving port ${servingPort} is the sidecar's admin port; change sidecar.adminPort in the chart`);
  for (const c of all) {
    for (const p of c.ports ?? []) {
      if (c === app && p === entry) continue;
      if (p.containerPort === appPort) problems.push(`port ${appPort} (the app's new port, ${ANNOTATION.appPort}) is already declared by container ${c.name}`);
      if (p.containerPort === adminPort) problems.push(`port ${adminPort} (the sidecar's admin port) is already declared by container ${c.name}`);
    }
  }
  const appPortEnv = annotations[ANNOTATION.appPortEnv] ?? settings.appPortEnv;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(appPortEnv)) {
    problems.push(`${ANNOTATION.appPortEnv} must be an environment variable name, got ${JSON.stringify(appPortEnv)}`);
  }
  if ((spec.volumes ?? []).some((v) => v.name === settings.configVolume)) {
    problems.push(`the pod already has a volume named ${settings.configVolume}`);
  }

  // --- the sidecar's config --------------------------------------------------------------------
  const configMap = annotations[ANNOTATION.config];
  const inline = LIMIT_ANNOTATIONS.filter((l) => annotations[l.annotation] !== undefined);
  let volume: Volume;
  let generated: string | undefined;
  // The grace period covers the chart's drain as the sidecar will run it (see below for native).
  let drainMs = settings.nativeSidecar ? { ...settings.drainMs, delay: 0 } : settings.drainMs;
  if (configMap !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(configMap) || configMap.length > 253) {
      problems.push(`${ANNOTATION.config} must be a ConfigMap name, got ${JSON.stringify(configMap)}`);
    }
    if (inline.length > 0) {
      problems.push(
        `${inline.map((l) => l.annotation).join(', ')} cannot be combined with ${ANNOTATION.config}: put the limits in the ConfigMap`,
      );
    }
    volume = { name: settings.configVolume, configMap: { name: configMap } };
  } else {
    let config = structuredClone(settings.config) as Record<string, unknown>;
    for (const l of inline) config = setPath(config, l.path, limitValue(l.kind, annotations[l.annotation] as string));
    // A native sidecar is stopped only after the app has exited, when the pod has long left the
    // Service's endpoints: keeping the listener open then (drain.delay) would only answer 502.
    if (settings.nativeSidecar) config = setPath(config, ['drain', 'delay'], 0);
    generated = JSON.stringify(config);
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
    volume = {
      name: settings.configVolume,
      downwardAPI: {
        items: [{ path: CONFIG_KEY, fieldRef: { fieldPath: `metadata.annotations['${ANNOTATION.generatedConfig}']` } }],
      },
    };
  }

  // --- the sidecar container -----------------------------------------------------------------
  const sidecar = structuredClone(settings.sidecar) as Container;
  const image = annotations[ANNOTATION.image];
  if (image !== undefined) {
    if (image === '' || /\s/.test(image)) problems.push(`${ANNOTATION.image} must be an image reference, got ${JSON.stringify(image)}`);
    sidecar.image = image;
  }
  for (const r of RESOURCE_ANNOTATIONS) {
    const v = annotations[r.annotation];
    if (v === undefined) continue;
    if (!isQuantity(v)) problems.push(`${r.annotation} must be a resource quantity such as 100m or 64Mi, got ${JSON.stringify(v)}`);
    const resources = (sidecar.resources ??= {});
    (resources[r.section] ??= {})[r.resource] = v;
  }

  if (problems.length > 0) return deny(problems);

  sidecar.args = [...(sidecar.args ?? []), '--port', String(servingPort), '--upstream', `http://127.0.0.1:${appPort}`];
  const dataPort: ContainerPort = {
    ...(portName !== undefined ? { name: portName } : {}),
    containerPort: servingPort,
    protocol: 'TCP',
    ...(entry?.hostPort !== undefined ? { hostPort: entry.hostPort } : {}),
    ...(entry?.hostIP !== undefined ? { hostIP: entry.hostIP } : {}),
  };
  sidecar.ports = [dataPort, ...(sidecar.ports ?? [])];
  if (servingPort < 1024) {
    warnings.push(
      `portcullis: the sidecar listens on port ${servingPort} as a non-root user without capabilities; the node's container runtime must allow unprivileged ports (net.ipv4.ip_unprivileged_port_start)`,
    );
  }

  // --- the patched pod -------------------------------------------------------------------------
  const pod = structuredClone(input) as Pod;
  const out = pod.spec;
  const newApp = out.containers[appIndex] as Container;
  if (entryIndex !== undefined && newApp.ports) {
    newApp.ports[entryIndex] = { containerPort: appPort, protocol: 'TCP' };
  }
  const env = (newApp.env ??= []);
  const at = env.findIndex((e) => e.name === appPortEnv);
  if (at >= 0) env[at] = { name: appPortEnv, value: String(appPort) };
  else env.push({ name: appPortEnv, value: String(appPort) });

  for (const c of [...out.containers, ...(out.initContainers ?? [])]) {
    const isApp = c === newApp;
    retargetContainer(c, (p) => p === servingPort || (isApp && portName !== undefined && p === portName), appPort);
  }

  if (settings.nativeSidecar) (out.initContainers ??= []).push(sidecar);
  else out.containers.push(sidecar);
  (out.volumes ??= []).push(volume);

  const grace = Math.ceil((drainMs.delay + drainMs.timeout) / 1000) + settings.graceMarginSeconds;
  if ((out.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) < grace) out.terminationGracePeriodSeconds = grace;

  const meta = (pod.metadata ??= {});
  const newAnnotations = (meta.annotations = { ...(meta.annotations ?? {}) });
  newAnnotations[ANNOTATION.injected] = 'true';
  if (generated !== undefined) newAnnotations[ANNOTATION.generatedConfig] = generated;
  newAnnotations['kubectl.kubernetes.io/default-container'] ??= app.name;

  return {
    action: 'inject',
    pod,
    patch: diffTopLevel(input, pod),
    warnings,
    summary: {
      container: app.name,
      port: servingPort,
      ...(portName !== undefined ? { portName } : {}),
      appPort,
      native: settings.nativeSidecar,
      config: configMap !== undefined ? `configmap/${configMap}` : 'inline',
    },
  };
}

function skip(reason: string, warnings: string[] = []): InjectResult {
  return { action: 'skip', reason, warnings };
}

function deny(problems: string[]): InjectResult {
  return { action: 'deny', message: `portcullis: cannot inject this pod: ${problems.join('; ')}` };
}

/** The app container and its serving port: from the annotations, else the port named http, else the first port. */
function servingTarget(
  containers: readonly Container[],
  annotations: Readonly<Record<string, string>>,
): { appIndex: number; port: number; entryIndex?: number } | string {
  const wantContainer = annotations[ANNOTATION.container];
  const wantPort = annotations[ANNOTATION.port];
  let appIndex: number | undefined;
  if (wantContainer !== undefined) {
    appIndex = containers.findIndex((c) => c.name === wantContainer);
    if (appIndex < 0) return `${ANNOTATION.container}: no container named ${JSON.stringify(wantContainer)}`;
  }
  const candidates = appIndex === undefined ? containers.map((_, i) => i) : [appIndex];
  const isTcp = (p: ContainerPort) => p.protocol === undefined || p.protocol === 'TCP';
  const find = (pred: (p: ContainerPort) => boolean) => {
    for (const i of candidates) {
      const j = (containers[i]?.ports ?? []).findIndex((p) => isTcp(p) && pred(p));
      if (j >= 0) return { appIndex: i, entryIndex: j, port: (containers[i]?.ports?.[j] as ContainerPort).containerPort };
    }
    return undefined;
  };

  if (wantPort !== undefined) {
    if (/^\d+$/.test(wantPort)) {
      const n = Number(wantPort);
      if (n < 1 || n > 65535) return `${ANNOTATION.port} must be a port number (1-65535) or a port name, got ${JSON.stringify(wantPort)}`;
      // A port the app does not declare is fine: it is taken over all the same.
      return find((p) => p.containerPort === n) ?? { appIndex: appIndex ?? 0, port: n };
    }
    return find((p) => p.name === wantPort) ?? `${ANNOTATION.port}: no TCP container port named ${JSON.stringify(wantPort)}`;
  }
  const named = find((p) => p.name === 'http');
  if (named) return named;
  const first = appIndex ?? 0;
  const j = (containers[first]?.ports ?? []).findIndex(isTcp);
  if (j >= 0) return { appIndex: first, entryIndex: j, port: (containers[first]?.ports?.[j] as ContainerPort).containerPort };
  return `no port to take over: container ${JSON.stringify(containers[first]?.name)} declares no TCP port; set ${ANNOTATION.port}`;
}

function portNumber(raw: string | undefined, dflt: number, name: string, problems: string[]): number {
  if (raw === undefined) return dflt;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    problems.push(`${name} must be a port number (1-65535), got ${JSON.stringify(raw)}`);
    return dflt;
  }
  return n;
}

/** Points every probe and lifecycle hook of `c` that aims at a matching port at `to` instead. */
function retargetContainer(c: Container, matches: (p: IntOrString) => boolean, to: number): void {
  const actions: (PortAction | undefined)[] = [c.livenessProbe, c.readinessProbe, c.startupProbe, c.lifecycle?.postStart, c.lifecycle?.preStop];
  for (const a of actions) {
    if (!a) continue;
    if (a.httpGet && matches(a.httpGet.port)) a.httpGet.port = to;
    if (a.tcpSocket && matches(a.tcpSocket.port)) a.tcpSocket.port = to;
    if (a.grpc && matches(a.grpc.port)) a.grpc.port = to;
  }
}

type Json = Record<string, unknown>;

function setPath(obj: Json, path: readonly string[], value: unknown): Json {
  const [head, ...rest] = path;
  if (head === undefined) return obj;
  const cur = obj[head];
  const child = typeof cur === 'object' && cur !== null && !Array.isArray(cur) ? (cur as Json) : {};
  return { ...obj, [head]: rest.length === 0 ? value : setPath(child, rest, value) };
}

/**
 * The patch as whole-field operations on the fields the injector changes. Coarse on purpose: one
 * `add`/`replace` per field applies cleanly to the object we were given, whatever it contains.
 */
function diffTopLevel(before: Pod, after: Pod): PatchOperation[] {
  const ops: PatchOperation[] = [];
  if (before.metadata === undefined) {
    ops.push({ op: 'add', path: '/metadata', value: after.metadata });
  } else if (!same(before.metadata.annotations, after.metadata?.annotations)) {
    const op = before.metadata.annotations === undefined ? 'add' : 'replace';
    ops.push({ op, path: '/metadata/annotations', value: after.metadata?.annotations });
  }
  for (const key of ['containers', 'initContainers', 'volumes', 'terminationGracePeriodSeconds'] as const) {
    const a = before.spec[key];
    const b = after.spec[key];
    if (same(a, b)) continue;
    ops.push({ op: a === undefined ? 'add' : 'replace', path: `/spec/${key}`, value: b });
  }
  return ops;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
