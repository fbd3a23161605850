/**
 * The steps injectPod is made of (issue 11), each on its own with small hand-made settings: which
 * port serves, where the app moves, the sidecar's config and container, the patched pod and its
 * patch. The whole injection is compared exactly in golden.test.ts and against DESIGN.md in
 * inject.test.ts; these pin what each step promises its caller.
 */
import { describe, expect, test } from 'vitest';
import type { Container, Pod } from '../../src/inject/k8s.ts';
import { diffTopLevel, patchedPod } from '../../src/inject/patched-pod.ts';
import { appPorts, servingTarget } from '../../src/inject/serving-port.ts';
import { sidecarConfig } from '../../src/inject/sidecar-config.ts';
import { listenerWarnings, sidecarContainer } from '../../src/inject/sidecar-container.ts';
import { parseSettings } from '../../src/inject/settings.ts';
import type { InjectorSettings } from '../../src/inject/settings.ts';

function settings(nativeSidecar: boolean, config: Record<string, unknown> = { drain: { delay: '5s', timeout: '20s' } }): InjectorSettings {
  return parseSettings(
    JSON.stringify({
      sidecar: {
        name: 'portcullis',
        image: 'registry.example/portcullis:1',
        args: ['run', '--config', '/etc/portcullis/portcullis.yaml'],
        volumeMounts: [{ name: 'pc-config', mountPath: '/etc/portcullis' }],
        ...(nativeSidecar ? { restartPolicy: 'Always' } : {}),
      },
      nativeSidecar,
      adminPort: 9901,
      appPort: 18080,
      appPortEnv: 'PORT',
      configVolume: 'pc-config',
      config,
      graceMarginSeconds: 5,
    }),
    'settings.json',
  );
}
const native = settings(true);
const classic = settings(false);

const app = (): Container => ({
  name: 'app',
  ports: [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'api', containerPort: 8000 },
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
  ],
  readinessProbe: { httpGet: { path: '/', port: 'http' } },
});

describe('servingTarget', () => {
  test('the port named http, else the first TCP port, else an annotated port', () => {
    expect(servingTarget([app()], {})).toEqual({ appIndex: 0, entryIndex: 2, port: 8080 });
    const noHttp = app();
    noHttp.ports = noHttp.ports!.slice(0, 2);
    expect(servingTarget([noHttp], {})).toEqual({ appIndex: 0, entryIndex: 1, port: 8000 });
    expect(servingTarget([app()], { 'portcullis.dev/port': 'api' })).toEqual({ appIndex: 0, entryIndex: 1, port: 8000 });
    expect(servingTarget([app()], { 'portcullis.dev/port': '7000' })).toEqual({ appIndex: 0, port: 7000 });
  });

  test('a UDP port is never taken over', () => {
    expect(servingTarget([app()], { 'portcullis.dev/port': 'dns' })).toBe('portcullis.dev/port: no TCP container port named "dns"');
  });

  test('the container annotation narrows the search', () => {
    const other: Container = { name: 'other', ports: [{ name: 'http', containerPort: 9000 }] };
    expect(servingTarget([other, app()], {})).toMatchObject({ appIndex: 0, port: 9000 });
    expect(servingTarget([other, app()], { 'portcullis.dev/container': 'app' })).toMatchObject({ appIndex: 1, port: 8080 });
  });
});

describe('appPorts', () => {
  test('resolves the ports the later steps need, the app and its entry as given', () => {
    const spec = { containers: [app()] };
    const problems: string[] = [];
    const ports = appPorts({ spec, annotations: {}, settings: native, target: { appIndex: 0, entryIndex: 2, port: 8080 }, problems });
    expect(problems).toEqual([]);
    expect(ports).toMatchObject({ appIndex: 0, entryIndex: 2, servingPort: 8080, portName: 'http', appPort: 18080, appPortEnv: 'PORT' });
    expect(ports.app).toBe(spec.containers[0]);
    expect(ports.entry).toBe(spec.containers[0]!.ports![2]);
  });

  test('the serving port declaration itself is no collision; any other is, in the order found', () => {
    const spec = { containers: [app()], initContainers: [{ name: 'init', ports: [{ containerPort: 9901 }] }] };
    const problems: string[] = [];
    appPorts({ spec, annotations: { 'portcullis.dev/app-port': '8000', 'portcullis.dev/app-port-env': '1X' }, settings: native, target: { appIndex: 0, entryIndex: 2, port: 8080 }, problems });
    expect(problems).toEqual([
      "port 8000 (the app's new port, portcullis.dev/app-port) is already declared by container app",
      "port 9901 (the sidecar's admin port) is already declared by container init",
      'portcullis.dev/app-port-env must be an environment variable name, got "1X"',
    ]);
  });

  test('a bad app port is named and the chart default used meanwhile', () => {
    const problems: string[] = [];
    const ports = appPorts({ spec: { containers: [app()] }, annotations: { 'portcullis.dev/app-port': '0' }, settings: native, target: { appIndex: 0, port: 8080 }, problems });
    expect(problems).toEqual(['portcullis.dev/app-port must be a port number (1-65535), got "0"']);
    expect(ports.appPort).toBe(18080);
    expect(ports.entry).toBeUndefined();
  });
});

describe('sidecarConfig', () => {
  test('a ConfigMap: mounted as it is, the chart drain as each sidecar kind runs it', () => {
    const annotations = { 'portcullis.dev/config': 'shop' };
    const problems: string[] = [];
    const c = sidecarConfig({ annotations, podVolumes: [], settings: native, problems });
    expect(c).toEqual({ volume: { name: 'pc-config', configMap: { name: 'shop' } }, generated: undefined, drainMs: { delay: 0, timeout: 20_000 }, source: 'configmap/shop' });
    expect(sidecarConfig({ annotations, podVolumes: [], settings: classic, problems }).drainMs).toEqual({ delay: 5_000, timeout: 20_000 });
    expect(problems).toEqual([]);
  });

  test('inline limits: the chart defaults with the pod limits, drain read from what was generated', () => {
    const problems: string[] = [];
    const c = sidecarConfig({ annotations: { 'portcullis.dev/inflight-max': '7' }, podVolumes: undefined, settings: native, problems });
    expect(problems).toEqual([]);
    expect(JSON.parse(c.generated ?? '')).toEqual({ drain: { delay: 0, timeout: '20s' }, inflight: { max: 7 } });
    expect(c.drainMs).toEqual({ delay: 0, timeout: 20_000 });
    expect(c.source).toBe('inline');
    expect(c.volume).toEqual({
      name: 'pc-config',
      downwardAPI: { items: [{ path: 'portcullis.yaml', fieldRef: { fieldPath: "metadata.annotations['portcullis.dev/generated-config']" } }] },
    });
    expect(native.config).toEqual({ drain: { delay: '5s', timeout: '20s' } }); // the settings are not touched
  });

  test('problems name the annotation they come from; a taken volume name is one', () => {
    const problems: string[] = [];
    sidecarConfig({ annotations: { 'portcullis.dev/inflight-max': 'x' }, podVolumes: [{ name: 'pc-config' }], settings: classic, problems });
    expect(problems).toEqual(['the pod already has a volume named pc-config', 'portcullis.dev/inflight-max: must be a whole number, got "x"']);
  });

  test('issue 12: a pod inflight-max replaces an adaptive global limit of the chart defaults (a limiter has one or the other)', () => {
    const adaptive = settings(false, { inflight: { adaptive: { algorithm: 'gradient', max: 50 }, queue: { size: 3 } } });
    const problems: string[] = [];
    const pinned = sidecarConfig({ annotations: { 'portcullis.dev/inflight-max': '7' }, podVolumes: undefined, settings: adaptive, problems });
    expect(problems).toEqual([]);
    expect(JSON.parse(pinned.generated ?? '')).toEqual({ inflight: { max: 7, queue: { size: 3 } } });
    // Other inline limits keep the adaptive one.
    const kept = sidecarConfig({ annotations: { 'portcullis.dev/inflight-queue-size': '9' }, podVolumes: undefined, settings: adaptive, problems });
    expect(problems).toEqual([]);
    expect(JSON.parse(kept.generated ?? '')).toEqual({ inflight: { adaptive: { algorithm: 'gradient', max: 50 }, queue: { size: 9 } } });
  });
});

describe('sidecarContainer', () => {
  const ports = appPorts({ spec: { containers: [app()] }, annotations: {}, settings: native, target: { appIndex: 0, entryIndex: 2, port: 8080 }, problems: [] });

  test('the template with the pod overrides, told the ports; the template itself untouched', () => {
    const template = structuredClone(native.sidecar);
    const problems: string[] = [];
    const c = sidecarContainer({ template: native.sidecar, annotations: { 'portcullis.dev/image': 'x:2', 'portcullis.dev/cpu-limit': '1' }, ports, problems });
    expect(problems).toEqual([]);
    expect(native.sidecar).toEqual(template);
    expect(c.image).toBe('x:2');
    expect(c.resources).toEqual({ limits: { cpu: '1' } });
    expect(c.args).toEqual(['run', '--config', '/etc/portcullis/portcullis.yaml', '--port', '8080', '--upstream', 'http://127.0.0.1:18080']);
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
  });

  test('the host port and IP of the taken-over declaration move with it', () => {
    const withHost = { ...ports, entry: { name: 'http', containerPort: 8080, hostPort: 80, hostIP: '10.0.0.1' } };
    const c = sidecarContainer({ template: native.sidecar, annotations: {}, ports: withHost, problems: [] });
    expect(c.ports?.[0]).toEqual({ name: 'http', containerPort: 8080, protocol: 'TCP', hostPort: 80, hostIP: '10.0.0.1' });
  });

  test('a privileged port is warned about', () => {
    expect(listenerWarnings(1024)).toEqual([]);
    expect(listenerWarnings(80)[0]).toContain('listens on port 80 as a non-root user');
  });
});

describe('patchedPod and diffTopLevel', () => {
  const pod = (): Pod => ({
    metadata: { name: 'p' },
    spec: {
      containers: [app(), { name: 'peer', ports: [{ name: 'http', containerPort: 7000 }], livenessProbe: { httpGet: { port: 'http' } }, readinessProbe: { tcpSocket: { port: 8080 } } }],
      terminationGracePeriodSeconds: 60,
    },
  });

  test('the app moves, probes follow by number everywhere and by name only in the app; the input is untouched', () => {
    const input = pod();
    const ports = appPorts({ spec: input.spec, annotations: {}, settings: classic, target: { appIndex: 0, entryIndex: 2, port: 8080 }, problems: [] });
    const config = sidecarConfig({ annotations: { 'portcullis.dev/config': 'cm' }, podVolumes: undefined, settings: classic, problems: [] });
    const sidecar: Container = { name: 'portcullis' };
    const out = patchedPod({ input, ports, sidecar, config, nativeSidecar: false, graceMarginSeconds: 5 });
    expect(input).toEqual(pod());
    const [movedApp, peer, added] = out.spec.containers;
    expect(movedApp?.ports?.[2]).toEqual({ containerPort: 18080, protocol: 'TCP' });
    expect(movedApp?.env).toEqual([{ name: 'PORT', value: '18080' }]);
    expect(movedApp?.readinessProbe?.httpGet?.port).toBe(18080);
    expect(peer?.livenessProbe?.httpGet?.port).toBe('http'); // the peer's own port named http
    expect(peer?.readinessProbe?.tcpSocket?.port).toBe(18080);
    expect(added).toBe(sidecar);
    expect(out.spec.volumes).toEqual([config.volume]);
    expect(out.spec.terminationGracePeriodSeconds).toBe(60); // 5 + 20 + 5 s fits: never lowered
    expect(out.metadata?.annotations).toEqual({ 'portcullis.dev/injected': 'true', 'kubectl.kubernetes.io/default-container': 'app' });

    expect(diffTopLevel(input, out).map((o) => `${o.op} ${o.path}`)).toEqual(['add /metadata/annotations', 'replace /spec/containers', 'add /spec/volumes']);
    expect(diffTopLevel(input, structuredClone(input))).toEqual([]);
  });

  test('a native sidecar goes last among the init containers; the grace period is raised to cover the drain', () => {
    const input = pod();
    input.spec.terminationGracePeriodSeconds = 10;
    input.spec.initContainers = [{ name: 'init' }];
    const ports = appPorts({ spec: input.spec, annotations: {}, settings: native, target: { appIndex: 0, entryIndex: 2, port: 8080 }, problems: [] });
    const config = { ...sidecarConfig({ annotations: {}, podVolumes: undefined, settings: native, problems: [] }), drainMs: { delay: 1_000, timeout: 20_500 } };
    const out = patchedPod({ input, ports, sidecar: { name: 'portcullis' }, config, nativeSidecar: true, graceMarginSeconds: 5 });
    expect(out.spec.initContainers?.map((c) => c.name)).toEqual(['init', 'portcullis']);
    expect(out.spec.containers.map((c) => c.name)).toEqual(['app', 'peer']);
    expect(out.spec.terminationGracePeriodSeconds).toBe(27); // ceil(21.5) + 5
    expect(out.metadata?.annotations?.['portcullis.dev/generated-config']).toBe(config.generated);
  });
});
