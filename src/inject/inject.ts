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
import { ANNOTATION, INJECT_LABEL, unknownAnnotations } from './annotations.ts';
import type { PatchOperation, Pod } from './k8s.ts';
import { diffTopLevel, patchedPod } from './patched-pod.ts';
import { appPorts, servingTarget } from './serving-port.ts';
import type { AppPorts } from './serving-port.ts';
import { sidecarConfig } from './sidecar-config.ts';
import type { SidecarConfig } from './sidecar-config.ts';
import { listenerWarnings, sidecarContainer } from './sidecar-container.ts';
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

export function injectPod(input: Pod, settings: InjectorSettings): InjectResult {
  const skipped = skipReason(input, settings);
  if (skipped) return { action: 'skip', ...skipped };

  // Every problem is collected, so the pod's author sees them all at once, in this order.
  const annotations = input.metadata?.annotations ?? {};
  const problems = unknownAnnotations(annotations);
  const target = servingTarget(input.spec.containers, annotations);
  if (typeof target === 'string') return deny([...problems, target]);
  const ports = appPorts({ spec: input.spec, annotations, settings, target, problems });
  const config = sidecarConfig({ annotations, podVolumes: input.spec.volumes, settings, problems });
  const sidecar = sidecarContainer({ template: settings.sidecar, annotations, ports, problems });
  if (problems.length > 0) return deny(problems);

  const { nativeSidecar, graceMarginSeconds } = settings;
  const pod = patchedPod({ input, ports, sidecar, config, nativeSidecar, graceMarginSeconds });
  return {
    action: 'inject',
    pod,
    patch: diffTopLevel(input, pod),
    warnings: listenerWarnings(ports.servingPort),
    summary: summary(ports, config, nativeSidecar),
  };
}

/** Why this pod is left alone, if it is: opted out, injected already, or a pod a sidecar cannot serve. */
function skipReason(pod: Pod, settings: InjectorSettings): { reason: string; warnings: string[] } | undefined {
  const annotations = pod.metadata?.annotations ?? {};
  const spec = pod.spec;
  const optOut = annotations[ANNOTATION.inject] ?? pod.metadata?.labels?.[INJECT_LABEL];
  if (optOut !== undefined && OPT_OUT.has(optOut)) return { reason: `opted out (${ANNOTATION.inject}: ${optOut})`, warnings: [] };
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  if (annotations[ANNOTATION.injected] !== undefined || all.some((c) => c.name === settings.sidecar.name)) {
    return { reason: 'already injected', warnings: [] };
  }
  if (spec.hostNetwork === true) {
    return { reason: 'hostNetwork pod', warnings: ['portcullis: not injected: a hostNetwork pod shares the node\'s ports'] };
  }
  if (!settings.nativeSidecar && (spec.restartPolicy === 'Never' || spec.restartPolicy === 'OnFailure')) {
    // A regular sidecar container never exits, so the pod would never complete.
    return {
      reason: `restartPolicy ${spec.restartPolicy} without native sidecars`,
      warnings: [
        `portcullis: not injected: a pod with restartPolicy ${spec.restartPolicy} would never complete with a regular sidecar container (native sidecars need Kubernetes >= 1.29)`,
      ],
    };
  }
  return undefined;
}

function deny(problems: string[]): InjectResult {
  return { action: 'deny', message: `portcullis: cannot inject this pod: ${problems.join('; ')}` };
}

function summary({ app, servingPort, portName, appPort }: AppPorts, config: SidecarConfig, native: boolean): InjectSummary {
  return {
    container: app.name,
    port: servingPort,
    ...(portName !== undefined ? { portName } : {}),
    appPort,
    native,
    config: config.source,
  };
}
