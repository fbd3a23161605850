/**
 * The sidecar container of one pod: the chart's rendered container (the one sidecar partial), with
 * the pod's image and resource overrides, told where to listen and where the app now is, and
 * declaring the serving port in the app's place.
 */
import { ANNOTATION, RESOURCE_ANNOTATIONS, isQuantity } from './annotations.ts';
import type { Annotations } from './annotations.ts';
import type { Container, ContainerPort } from './k8s.ts';
import type { AppPorts } from './serving-port.ts';

export interface SidecarContainerInput {
  /** The chart's sidecar container; copied, never changed. */
  template: Container;
  annotations: Annotations;
  ports: AppPorts;
  /** Where what is wrong goes. */
  problems: string[];
}

export function sidecarContainer({ template, annotations, ports, problems }: SidecarContainerInput): Container {
  const sidecar = structuredClone(template) as Container;
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

  const { servingPort, appPort, portName, entry } = ports;
  sidecar.args = [...(sidecar.args ?? []), '--port', String(servingPort), '--upstream', `http://127.0.0.1:${appPort}`];
  const dataPort: ContainerPort = {
    ...(portName !== undefined ? { name: portName } : {}),
    containerPort: servingPort,
    protocol: 'TCP',
    ...(entry?.hostPort !== undefined ? { hostPort: entry.hostPort } : {}),
    ...(entry?.hostIP !== undefined ? { hostIP: entry.hostIP } : {}),
  };
  sidecar.ports = [dataPort, ...(sidecar.ports ?? [])];
  return sidecar;
}

/** What the pod's author should know about the sidecar's listener. */
export function listenerWarnings(servingPort: number): string[] {
  if (servingPort >= 1024) return [];
  return [
    `portcullis: the sidecar listens on port ${servingPort} as a non-root user without capabilities; the node's container runtime must allow unprivileged ports (net.ipv4.ip_unprivileged_port_start)`,
  ];
}
