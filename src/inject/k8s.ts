/**
 * The few Kubernetes API shapes the injector reads and writes (core/v1 Pod, admission/v1
 * AdmissionReview), typed loosely on purpose: fields the injector does not touch pass through
 * unchanged, so a newer API server's fields are never dropped. Types only; no runtime code.
 */

export type IntOrString = number | string;

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: string;
  [k: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
  [k: string]: unknown;
}

/** The part of a Probe or a LifecycleHandler that names a port. */
export interface PortAction {
  httpGet?: { port: IntOrString; [k: string]: unknown };
  tcpSocket?: { port: IntOrString; [k: string]: unknown };
  grpc?: { port: number; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  livenessProbe?: PortAction;
  readinessProbe?: PortAction;
  startupProbe?: PortAction;
  lifecycle?: { postStart?: PortAction; preStop?: PortAction; [k: string]: unknown };
  resources?: { requests?: Record<string, IntOrString>; limits?: Record<string, IntOrString>; [k: string]: unknown };
  volumeMounts?: { name: string; mountPath: string; [k: string]: unknown }[];
  restartPolicy?: string;
  [k: string]: unknown;
}

export interface Volume {
  name: string;
  [k: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  hostNetwork?: boolean;
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  [k: string]: unknown;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec: PodSpec;
  [k: string]: unknown;
}

/** One RFC 6902 operation; the injector only ever adds or replaces. */
export interface PatchOperation {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

/** admission.k8s.io/v1 AdmissionReview as the API server sends it (the fields we read). */
export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: string;
  object?: unknown;
  dryRun?: boolean;
  [k: string]: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch document. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}
