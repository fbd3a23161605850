/**
 * Offline validation of Kubernetes objects, two ways, both from the kubernetes-models packages
 * (generated from the Kubernetes OpenAPI spec; @kubernetes-models/cert-manager from
 * cert-manager's CRDs):
 *
 * 1. the model's JSON-Schema validator (types, required fields, enums, formats such as quantity)
 *    picked by apiVersion/kind;
 * 2. unknown fields: the OpenAPI schema leaves objects open, but the API server (strict field
 *    validation, kubectl's default) rejects a misspelt field, so every key is also checked
 *    against the model's TypeScript interface with the TypeScript compiler's type checker.
 */
import ts from 'typescript';
import { join } from 'node:path';
import { ROOT } from '../helpers/sidecar.ts';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** The model module and interface of apiVersion/kind. */
function modelOf(apiVersion: string, kind: string): { module: string; iface: string } {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [undefined, apiVersion];
  const module = group?.endsWith('cert-manager.io')
    ? `@kubernetes-models/cert-manager/${group}/${version}/${kind}`
    : `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
  return { module, iface: `I${kind}` };
}

/** JSON-Schema errors of one object ([] when valid); throws when no model knows its kind. */
export async function schemaErrors(obj: K8sObject): Promise<string[]> {
  const { module } = modelOf(obj.apiVersion, obj.kind);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(module)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`no model for ${obj.apiVersion} ${obj.kind} (${module}): ${(err as Error).message}`);
  }
  const Model = mod[obj.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (!Model) throw new Error(`${module} exports no ${obj.kind}`);
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

// ---------------------------------------------------------------------------------------------
// unknown fields, from the models' TypeScript interfaces

const VIRTUAL = join(ROOT, 'test', 'helm', '__k8s_models__.ts');

/** Every kind the chart, the examples and the injector produce. */
export const KINDS = [
  'v1 Pod',
  'v1 Service',
  'v1 ServiceAccount',
  'v1 ConfigMap',
  'v1 Secret',
  'apps/v1 Deployment',
  'policy/v1 PodDisruptionBudget',
  'admissionregistration.k8s.io/v1 MutatingWebhookConfiguration',
  'cert-manager.io/v1 Issuer',
  'cert-manager.io/v1 Certificate',
] as const;

let models: { checker: ts.TypeChecker; types: Map<string, ts.Type> } | undefined;

/** One TypeScript program over the model interfaces of KINDS, built on first use (about a second). */
function modelTypes(): { checker: ts.TypeChecker; types: Map<string, ts.Type> } {
  if (models) return models;
  const list = KINDS.map((key) => {
    const [apiVersion, kind] = key.split(' ') as [string, string];
    return { key, ...modelOf(apiVersion, kind) };
  });
  const source =
    list.map((m, i) => `import type { ${m.iface} as T${i} } from '${m.module}';`).join('\n') +
    `\nexport interface All {\n${list.map((m, i) => `  ${JSON.stringify(m.key)}: T${i};`).join('\n')}\n}\n`;
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === VIRTUAL ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === VIRTUAL || fileExists(name);
  const program = ts.createProgram([VIRTUAL], options, host);
  const file = program.getSourceFile(VIRTUAL);
  const diags = ts.getPreEmitDiagnostics(program, file);
  if (diags.length > 0) throw new Error(`model types: ${ts.flattenDiagnosticMessageText(diags[0]!.messageText, '\n')}`);
  const checker = program.getTypeChecker();
  const all = checker.getExportsOfModule(checker.getSymbolAtLocation(file!)!).find((s) => s.name === 'All');
  if (!all) throw new Error('model types: no All');
  const allType = checker.getDeclaredTypeOfSymbol(all);
  const types = new Map<string, ts.Type>();
  for (const m of list) types.set(m.key, checker.getTypeOfSymbol(allType.getProperty(m.key)!));
  models = { checker, types };
  return models;
}

function objectPart(c: ts.TypeChecker, type: ts.Type): ts.Type | undefined {
  const t = c.getNonNullableType(type);
  if (t.isUnion()) {
    const objects = t.types.filter((m) => (m.flags & ts.TypeFlags.Object) !== 0);
    return objects.length === 1 ? objects[0] : undefined;
  }
  return (t.flags & ts.TypeFlags.Object) !== 0 ? t : undefined;
}

function walk(c: ts.TypeChecker, value: unknown, type: ts.Type, path: string, errors: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const t = objectPart(c, type);
  if (!t) return;
  if (Array.isArray(value)) {
    const elem = c.getIndexTypeOfType(t, ts.IndexKind.Number);
    if (elem) value.forEach((v, i) => walk(c, v, elem, `${path}[${i}]`, errors));
    return;
  }
  const index = c.getIndexTypeOfType(t, ts.IndexKind.String);
  if (c.getPropertiesOfType(t).length === 0 && !index) return;
  for (const [k, v] of Object.entries(value)) {
    const p = t.getProperty(k);
    if (p) walk(c, v, c.getTypeOfSymbol(p), `${path}.${k}`, errors);
    else if (index) walk(c, v, index, `${path}.${k}`, errors);
    else errors.push(`${path.slice(1) || '(root)'}.${k}: unknown field`);
  }
}

/** Fields of `obj` its model does not have (what strict field validation would reject). */
export function unknownFields(obj: K8sObject): string[] {
  const { checker, types } = modelTypes();
  const type = types.get(`${obj.apiVersion} ${obj.kind}`);
  if (!type) throw new Error(`${obj.apiVersion} ${obj.kind} is not in KINDS`);
  const errors: string[] = [];
  walk(checker, obj, type, '', errors);
  return errors;
}

/** Every problem with the objects, schema errors and unknown fields, each prefixed with kind/name. */
export async function validateAll(objects: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of objects) {
    const name = `${o.kind}/${o.metadata?.name ?? '?'}`;
    for (const e of await schemaErrors(o)) problems.push(`${name}: ${e}`);
    for (const e of unknownFields(o)) problems.push(`${name}: ${e}`);
  }
  return problems;
}
