/**
 * The patched pod and the JSON Patch that makes it: the app moved to its new port (declaration,
 * variable, and every probe and hook that aimed at the serving port), the sidecar and its config
 * volume added, the grace period raised to cover the drain, the injector's annotations written.
 */
import { ANNOTATION } from './annotations.ts';
import type { Container, IntOrString, PatchOperation, Pod, PortAction, PodSpec } from './k8s.ts';
import type { AppPorts } from './serving-port.ts';
import type { SidecarConfig } from './sidecar-config.ts';

const DEFAULT_GRACE_SECONDS = 30;

export interface PatchedPodInput {
  /** The pod as given; copied, never changed. */
  input: Pod;
  ports: AppPorts;
  sidecar: Container;
  config: SidecarConfig;
  /** true: the sidecar is an init container with restartPolicy Always. */
  nativeSidecar: boolean;
  graceMarginSeconds: number;
}

export function patchedPod({ input, ports, sidecar, config, nativeSidecar, graceMarginSeconds }: PatchedPodInput): Pod {
  const pod = structuredClone(input) as Pod;
  const out = pod.spec;
  moveApp(out, ports);
  if (nativeSidecar) (out.initContainers ??= []).push(sidecar);
  else out.containers.push(sidecar);
  (out.volumes ??= []).push(config.volume);

  const { delay, timeout } = config.drainMs;
  const grace = Math.ceil((delay + timeout) / 1000) + graceMarginSeconds;
  if ((out.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) < grace) out.terminationGracePeriodSeconds = grace;

  const meta = (pod.metadata ??= {});
  const annotations = (meta.annotations = { ...(meta.annotations ?? {}) });
  annotations[ANNOTATION.injected] = 'true';
  if (config.generated !== undefined) annotations[ANNOTATION.generatedConfig] = config.generated;
  annotations['kubectl.kubernetes.io/default-container'] ??= ports.app.name;
  return pod;
}

/** The app gives up the serving port's declaration, learns its new port, and its checks follow it. */
function moveApp(spec: PodSpec, { appIndex, entryIndex, appPort, appPortEnv, servingPort, portName }: AppPorts): void {
  const app = spec.containers[appIndex] as Container;
  if (entryIndex !== undefined && app.ports) {
    app.ports[entryIndex] = { containerPort: appPort, protocol: 'TCP' };
  }
  const env = (app.env ??= []);
  const at = env.findIndex((e) => e.name === appPortEnv);
  if (at >= 0) env[at] = { name: appPortEnv, value: String(appPort) };
  else env.push({ name: appPortEnv, value: String(appPort) });

  // Every container's probes and hooks: kubelet checks reach the app directly and are never shed.
  // Only the app's own can name the port (names are per container).
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const isApp = c === app;
    retargetContainer(c, (p) => p === servingPort || (isApp && portName !== undefined && p === portName), appPort);
  }
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

/**
 * The patch as whole-field operations on the fields the injector changes. Coarse on purpose: one
 * `add`/`replace` per field applies cleanly to the object we were given, whatever it contains.
 */
export function diffTopLevel(before: Pod, after: Pod): PatchOperation[] {
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
