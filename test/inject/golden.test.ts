/**
 * Golden patches (issue 11): the exact results the injector gave, before injectPod was split into
 * steps, for pods that walk every branch of it. Compared as JSON text, so key order counts too:
 * the JSON Patch the webhook returns must stay the same byte for byte.
 *
 * The fixture holds its own inputs (the chart's rendered settings.json and the pods), so it does
 * not move when the chart or the test pods change. To regenerate it on purpose (the old code's
 * output is the reference, so only when a change of output is intended):
 *   PORTCULLIS_UPDATE_GOLDEN=1 npx vitest run test/inject/golden.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { injectPod } from '../../src/inject/inject.ts';
import type { InjectResult } from '../../src/inject/inject.ts';
import type { AdmissionReviewResponse, Container, Pod } from '../../src/inject/k8s.ts';
import { reviewAdmission } from '../../src/inject/review.ts';
import { parseSettings } from '../../src/inject/settings.ts';
import { settingsJson, template } from '../helm/helm.ts';
import { admissionReview, applyResponsePatch, deploymentPod, shopContainer } from './fixtures.ts';

const FILE = new URL('./golden/injections.json', import.meta.url);
const UPDATE = process.env['PORTCULLIS_UPDATE_GOLDEN'] === '1';

type Mode = 'native' | 'classic';
interface GoldenCase {
  name: string;
  settings: Mode;
  pod: Pod;
  /** injectPod(pod, settings) without its `pod`, which must be the input with the patch applied. */
  result: unknown;
  /** reviewAdmission's response for a review with uid "golden", its base64 patch left out (it is `result.patch`). */
  review: unknown;
}
interface Golden {
  settings: Record<Mode, string>;
  cases: GoldenCase[];
}

// JSON.parse keeps key order, so comparing JSON.stringify texts of the parsed fixture and of a
// fresh result compares key order as well as values.
function run(pod: Pod, settingsText: string): { result: unknown; review: AdmissionReviewResponse } {
  const settings = parseSettings(settingsText, 'settings.json');
  const full = injectPod(structuredClone(pod), settings);
  let result: unknown = full;
  if (full.action === 'inject') {
    const { pod: patched, ...rest } = full;
    const applied = applyResponsePatch(pod, { patchType: 'JSONPatch', patch: base64(JSON.stringify(full.patch)) }).pod;
    if (JSON.stringify(applied) !== JSON.stringify(patched)) throw new Error('the patched pod is not the input with the patch applied');
    result = rest;
  }
  const request = admissionReview(structuredClone(pod));
  (request.request as { uid: string }).uid = 'golden';
  const review = reviewAdmission(JSON.parse(JSON.stringify(request)), settings).response;
  const { patch, ...response } = review.response;
  // The webhook's patch is the base64 of the UTF-8 of exactly JSON.stringify(result.patch).
  const expected = full.action === 'inject' ? base64(JSON.stringify(full.patch)) : undefined;
  if (patch !== expected) throw new Error(`the review's patch is not the base64 of injectPod's patch`);
  return { result, review: { ...review, response: response as AdmissionReviewResponse['response'] } };
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

if (UPDATE) {
  test('regenerate the golden injections', async () => {
    const settings: Record<Mode, string> = {
      native: settingsJson(await template({}, ['--kube-version', '1.30.0'])),
      classic: settingsJson(await template({}, ['--kube-version', '1.28.0'])),
    };
    const cases = goldenPods().map(({ name, settings: mode, pod }) => ({ name, settings: mode, pod, ...run(pod, settings[mode]) }));
    writeFileSync(FILE, layout({ settings, cases } satisfies Golden));
  });
} else {
  const golden = JSON.parse(readFileSync(FILE, 'utf8')) as Golden;
  describe('injectPod gives exactly the golden results', () => {
    test('the fixture covers injections, denials and skips on both sidecar kinds', () => {
      const actions = new Set(golden.cases.map((c) => `${c.settings} ${(c.result as InjectResult).action}`));
      expect([...actions].sort()).toEqual(['classic deny', 'classic inject', 'classic skip', 'native deny', 'native inject', 'native skip']);
    });
    test.each(golden.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      const out = run(c.pod, golden.settings[c.settings]);
      expect(JSON.stringify(out.result, null, 2)).toBe(JSON.stringify(c.result, null, 2));
      expect(JSON.stringify(out.review, null, 2)).toBe(JSON.stringify(c.review, null, 2));
    });
  });
}

/** One line per field of a case: a regenerated fixture's diff names the case and field that moved, at half the size of indented JSON. */
function layout(golden: Golden): string {
  const fields = (o: object, indent: string) =>
    Object.entries(o)
      .map(([k, v]) => `${indent}${JSON.stringify(k)}: ${JSON.stringify(v)}`)
      .join(',\n');
  const cases = golden.cases.map((c) => `    {\n${fields(c, '      ')}\n    }`).join(',\n');
  return `{\n  "settings": {\n${fields(golden.settings, '    ')}\n  },\n  "cases": [\n${cases}\n  ]\n}\n`;
}

/** The pods: every branch of injectPod at least once. Used only to regenerate the fixture. */
function goldenPods(): { name: string; settings: Mode; pod: Pod }[] {
  const both = (name: string, pod: Pod) => [
    { name: `${name} (native)`, settings: 'native' as const, pod },
    { name: `${name} (classic)`, settings: 'classic' as const, pod },
  ];
  // Refusals and skips do not depend on the sidecar kind, except where said.
  const one = (name: string, pod: Pod) => ({ name, settings: 'native' as const, pod });
  const noMetadata = deploymentPod();
  delete noMetadata.metadata;
  const bare = deploymentPod({ annotations: undefined });
  delete bare.spec.initContainers;
  delete bare.spec.volumes;
  delete bare.spec.terminationGracePeriodSeconds;
  delete bare.spec.containers[0]!.env;

  // Two containers: the app is the second, by annotation; the other one's probes and hooks aim at
  // the serving port by number and by the app's port name, a grpc probe, host port and IP.
  const helper: Container = {
    name: 'helper',
    image: 'registry.example/helper:1',
    ports: [{ name: 'http', containerPort: 7070 }],
    readinessProbe: { httpGet: { path: '/', port: 8080 } },
    livenessProbe: { grpc: { port: 8080 } },
    lifecycle: { postStart: { httpGet: { path: '/hello', port: 'web' } } },
  };
  const web: Container = {
    ...shopContainer(),
    name: 'web',
    ports: [
      { name: 'udp', containerPort: 8080, protocol: 'UDP' },
      { name: 'web', containerPort: 8080, protocol: 'TCP', hostPort: 80, hostIP: '10.0.0.1' },
    ],
    readinessProbe: { httpGet: { path: '/ready', port: 'web' } },
    livenessProbe: { grpc: { port: 8080, service: 'health' } },
    startupProbe: { tcpSocket: { port: 'web' } },
    lifecycle: { postStart: { tcpSocket: { port: 8080 } }, preStop: { httpGet: { path: '/stop', port: 'web' } } },
  };
  const twoContainers = deploymentPod({ annotations: { 'portcullis.dev/container': 'web', 'portcullis.dev/app-port': '18081' } });
  twoContainers.spec.containers = [helper, web];

  const firstPort = deploymentPod({ annotations: {} });
  firstPort.spec.containers[0]!.ports = [
    { name: 'metrics', containerPort: 9090, protocol: 'SCTP' },
    { name: 'api', containerPort: 80 },
  ];

  const adminCollision = deploymentPod();
  adminCollision.spec.containers[0]!.ports!.push({ name: 'debug', containerPort: 9901, protocol: 'TCP' });
  const noPort = deploymentPod();
  delete noPort.spec.containers[0]!.ports;
  const alreadyThere = deploymentPod();
  alreadyThere.spec.containers.push({ name: 'portcullis', image: 'x' });
  const volumeTaken = deploymentPod();
  volumeTaken.spec.volumes!.push({ name: 'portcullis-config', emptyDir: {} });
  const initPortClash = deploymentPod();
  initPortClash.spec.initContainers![0]!.ports = [{ containerPort: 18080 }];

  return [
    ...both('a Deployment pod with an inline limit', deploymentPod()),
    ...both('every inline limit, dry run on', deploymentPod({
      annotations: {
        'portcullis.dev/inflight-max': '10',
        'portcullis.dev/inflight-per-client': '2',
        'portcullis.dev/inflight-queue-size': '5',
        'portcullis.dev/inflight-queue-timeout': '1500ms',
        'portcullis.dev/connections-max': '100',
        'portcullis.dev/connections-per-client': '7',
        'portcullis.dev/dry-run': 'true',
        'other.example/keep': 'me',
      },
    })),
    ...both('a ConfigMap', deploymentPod({ annotations: { 'portcullis.dev/config': 'shop-portcullis' } })),
    ...both('a ConfigMap and a long grace period', deploymentPod({ annotations: { 'portcullis.dev/config': 'shop-portcullis' }, spec: { terminationGracePeriodSeconds: 120 } })),
    ...both('app port, its variable, image and resources', deploymentPod({
      annotations: {
        'portcullis.dev/app-port': '3000',
        'portcullis.dev/app-port-env': 'APP_PORT',
        'portcullis.dev/image': 'registry.example/portcullis:0.1.0-debug',
        'portcullis.dev/cpu-request': '10m',
        'portcullis.dev/cpu-limit': '500m',
        'portcullis.dev/memory-request': '32Mi',
        'portcullis.dev/memory-limit': '128Mi',
      },
    })),
    ...both('the serving port by name', deploymentPod({ annotations: { 'portcullis.dev/port': 'metrics' } })),
    ...both('a serving port no container declares', deploymentPod({ annotations: { 'portcullis.dev/port': '7000' } })),
    ...both('the serving port by number', deploymentPod({ annotations: { 'portcullis.dev/port': '9090' } })),
    ...both('no annotations', deploymentPod({ annotations: undefined })),
    ...both('no metadata at all', noMetadata),
    ...both('no init containers, volumes, grace period or env', bare),
    ...both('the app picked by annotation, another container aims at the port', twoContainers),
    ...both('the first TCP port, below 1024', firstPort),
    ...both('a non-ASCII annotation', deploymentPod({ annotations: { 'portcullis.dev/inflight-max': '64', 'note.example/owner': 'Zoë — 日本' } })),
    { name: 'a Job pod (native)', settings: 'native' as const, pod: deploymentPod({ spec: { restartPolicy: 'Never' } }) },
    { name: 'a Job pod (classic)', settings: 'classic', pod: deploymentPod({ spec: { restartPolicy: 'Never' } }) },
    { name: 'an OnFailure pod (classic)', settings: 'classic', pod: deploymentPod({ spec: { restartPolicy: 'OnFailure' } }) },
    one('hostNetwork', deploymentPod({ spec: { hostNetwork: true } })),
    one('opted out by annotation', deploymentPod({ annotations: { 'portcullis.dev/inject': 'disabled' } })),
    one('opted out by label', deploymentPod({ labels: { 'portcullis.dev/inject': 'false' } })),
    one('already marked injected', deploymentPod({ annotations: { 'portcullis.dev/injected': 'true' } })),
    one('a container named like the sidecar', alreadyThere),
    ...both('many problems at once', deploymentPod({
      annotations: {
        'portcullis.dev/inflight-mx': '5',
        'portcullis.dev/app-port': 'x',
        'portcullis.dev/app-port-env': 'MY-PORT',
        'portcullis.dev/config': 'Not_A_Name',
        'portcullis.dev/inflight-max': '5',
        'portcullis.dev/image': 'has space',
        'portcullis.dev/cpu-limit': 'fast',
        'portcullis.dev/memory-request': '1Gi',
      },
    })),
    ...both('bad inline limits', deploymentPod({
      annotations: { 'portcullis.dev/inflight-max': '-3', 'portcullis.dev/inflight-queue-timeout': 'soon', 'portcullis.dev/dry-run': 'yes' },
    })),
    one('the app port is the serving port', deploymentPod({ annotations: { 'portcullis.dev/app-port': '8080' } })),
    one('the app port is the admin port', deploymentPod({ annotations: { 'portcullis.dev/app-port': '9901' } })),
    one('the serving port is the admin port', deploymentPod({ annotations: { 'portcullis.dev/port': '9901' } })),
    one('the app port is declared elsewhere', deploymentPod({ annotations: { 'portcullis.dev/app-port': '9090' } })),
    one('an init container declares the app port', initPortClash),
    one('a port declared on the admin port', adminCollision),
    one('the config volume name is taken', volumeTaken),
    one('an unknown port name', deploymentPod({ annotations: { 'portcullis.dev/port': 'grpc' } })),
    one('a port number out of range', deploymentPod({ annotations: { 'portcullis.dev/port': '70000' } })),
    one('an unknown container', deploymentPod({ annotations: { 'portcullis.dev/container': 'nope', 'portcullis.dev/inflight-mx': '1' } })),
    one('no port to take over', noPort),
    one('an empty image', deploymentPod({ annotations: { 'portcullis.dev/image': '' } })),
  ];
}
