/**
 * Which container serves, on which port, and where the app moves to: the sidecar takes over the
 * serving port (number and name), the app moves to `appPort`, told by `appPortEnv`.
 */
import { ANNOTATION } from './annotations.ts';
import type { Annotations } from './annotations.ts';
import type { Container, ContainerPort, PodSpec } from './k8s.ts';
import { ENV_VAR_NAME } from './settings.ts';
import type { InjectorSettings } from './settings.ts';

/** The serving port; `entryIndex` is unset when the port is one the app does not declare. */
export interface ServingTarget {
  appIndex: number;
  port: number;
  entryIndex?: number;
}

/** The ports of one injection, as the later steps need them. */
export interface AppPorts {
  appIndex: number;
  /** The app container, as given. */
  app: Container;
  /** The app's declaration of the serving port, as given (the sidecar declares it in its place). */
  entry: ContainerPort | undefined;
  entryIndex: number | undefined;
  servingPort: number;
  portName: string | undefined;
  appPort: number;
  appPortEnv: string;
}

/** The app container and its serving port: from the annotations, else the port named http, else the first port. */
export function servingTarget(containers: readonly Container[], annotations: Annotations): ServingTarget | string {
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

export interface AppPortsInput {
  spec: PodSpec;
  annotations: Annotations;
  settings: InjectorSettings;
  target: ServingTarget;
  /** Where what is wrong goes, in the order the pod's author should read it. */
  problems: string[];
}

/** The app's new port and its variable, checked against the serving port, the admin port and every declared port. */
export function appPorts({ spec, annotations, settings, target, problems }: AppPortsInput): AppPorts {
  const { appIndex, port: servingPort, entryIndex } = target;
  const app = spec.containers[appIndex] as Container;
  const entry = entryIndex === undefined ? undefined : app.ports?.[entryIndex];
  const appPort = portNumber(annotations[ANNOTATION.appPort], settings.appPort, ANNOTATION.appPort, problems);
  const adminPort = settings.adminPort;
  if (appPort === servingPort) problems.push(`${ANNOTATION.appPort} (${appPort}) must differ from the serving port ${servingPort}`);
  if (appPort === adminPort) problems.push(`${ANNOTATION.appPort} (${appPort}) must differ from the sidecar's admin port ${adminPort}`);
  if (servingPort === adminPort) problems.push(`the serving port ${servingPort} is the sidecar's admin port; change sidecar.adminPort in the chart`);
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    for (const p of c.ports ?? []) {
      if (c === app && p === entry) continue;
      if (p.containerPort === appPort) problems.push(`port ${appPort} (the app's new port, ${ANNOTATION.appPort}) is already declared by container ${c.name}`);
      if (p.containerPort === adminPort) problems.push(`port ${adminPort} (the sidecar's admin port) is already declared by container ${c.name}`);
    }
  }
  const appPortEnv = annotations[ANNOTATION.appPortEnv] ?? settings.appPortEnv;
  if (!ENV_VAR_NAME.test(appPortEnv)) {
    problems.push(`${ANNOTATION.appPortEnv} must be an environment variable name, got ${JSON.stringify(appPortEnv)}`);
  }
  return { appIndex, app, entry, entryIndex, servingPort, portName: entry?.name, appPort, appPortEnv };
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
