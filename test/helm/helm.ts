/**
 * The real helm (built by scripts/test from the Go module proxy into .tools/bin, once), and what
 * the tests need from it: rendered objects, failures with their message, and the injector
 * settings the chart renders. A missing helm is built here with the same block of scripts/test,
 * under a lock, so `npx vitest run test/helm` works on its own too.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, sleep } from '../helpers/sidecar.ts';
import type { K8sObject } from './k8s-validate.ts';

export const HELM = join(ROOT, '.tools', 'bin', 'helm');
export const CHART = join(ROOT, 'charts', 'portcullis');
/** Release name and namespace used throughout the tests. */
export const RELEASE = 'pc';
export const NAMESPACE = 'portcullis-system';

let ready = false;

/** Builds .tools/bin/helm with the delimited block of scripts/test when it is missing. */
export async function ensureHelm(): Promise<string> {
  if (ready || existsSync(HELM)) {
    ready = true;
    return HELM;
  }
  const lock = join(tmpdir(), 'portcullis-helm-build.lock');
  const deadline = Date.now() + 600_000;
  while (!existsSync(HELM)) {
    try {
      mkdirSync(lock);
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > deadline) throw new Error('timed out waiting for another worker to build helm');
      await sleep(500);
      continue;
    }
    try {
      if (existsSync(HELM)) break;
      const script = readFileSync(join(ROOT, 'scripts', 'test'), 'utf8');
      const block = /# >>> helm \(issue 6\) >>>\n([\s\S]*?)# <<< helm \(issue 6\) <<</.exec(script)?.[1];
      if (!block) throw new Error('scripts/test has no helm block');
      execFileSync('bash', ['-euo', 'pipefail', '-c', `log() { printf '[helm] %s\\n' "$*" >&2; }\n${block}`], {
        cwd: ROOT,
        stdio: 'inherit',
        timeout: 590_000,
      });
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  ready = true;
  return HELM;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with `args`; never throws on a non-zero exit. */
export async function helm(args: string[]): Promise<HelmResult> {
  const bin = await ensureHelm();
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: ROOT, timeout: 60_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, HELM_CACHE_HOME: join(tmpdir(), 'portcullis-helm-cache') } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** `--set`-style arguments from a flat record; values are passed with --set-json so types are exact. */
export function setArgs(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
}

/** `helm template` of the chart; throws with helm's message when it fails. */
export async function template(values: Record<string, unknown> = {}, extra: string[] = []): Promise<K8sObject[]> {
  const r = await helm(['template', RELEASE, CHART, '--namespace', NAMESPACE, ...setArgs(values), ...extra]);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return parseManifests(r.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  const docs = parseAllDocuments(text);
  const out: K8sObject[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
    const v = d.toJS() as K8sObject | null;
    if (v !== null) out.push(v);
  }
  return out;
}

export function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const hit = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (hit.length !== 1) {
    throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${hit.length}: ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  }
  return hit[0] as K8sObject;
}

/** The settings.json the chart renders for the injector. */
export function settingsJson(objects: readonly K8sObject[]): string {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name?.endsWith('-settings'));
  const text = (cm?.['data'] as Record<string, string> | undefined)?.['settings.json'];
  if (text === undefined) throw new Error('no settings ConfigMap in the rendered chart');
  return text;
}
