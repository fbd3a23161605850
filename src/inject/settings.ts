/**
 * What the injector is told by the chart (charts/portcullis/templates/injector-settings.yaml,
 * mounted as settings.json): the sidecar container rendered by the chart's one sidecar partial,
 * the cluster-wide defaults, and where things go. Validated eagerly and frozen: a chart that
 * renders something the injector cannot use stops the injector at start, not at the first pod.
 */
import { z } from 'zod';
import { loadConfig } from '../core/config-load.ts';
import { deepFreeze } from '../core/objects.ts';
import { ConfigError, PortcullisError } from '../core/errors.ts';
import type { Container } from './k8s.ts';

/** The key of the config file in the config directory (ConfigMap key, downward-API item path). */
export const CONFIG_KEY = 'portcullis.yaml';

const port = z.int().min(1).max(65535);

/** What the app-port variable may be called (POSIX portable names), in the settings and in the annotation. */
export const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const settingsSchema = z.strictObject({
  /** The sidecar container, complete except for the per-pod parts the injector adds. */
  sidecar: z.looseObject({
    name: z.string().min(1),
    image: z.string().min(1),
    args: z.array(z.string()),
    ports: z.array(z.looseObject({ containerPort: port })).optional(),
    volumeMounts: z.array(z.looseObject({ name: z.string().min(1), mountPath: z.string().min(1) })).min(1),
    restartPolicy: z.literal('Always').optional(),
  }),
  /** true: an init container with restartPolicy Always (Kubernetes >= 1.29); false: a regular container. */
  nativeSidecar: z.boolean(),
  /** The sidecar's admin port, as rendered into the sidecar's args and probes. */
  adminPort: port,
  /** Where the app moves to unless the pod says otherwise (annotation portcullis.dev/app-port). */
  appPort: port,
  /** The environment variable that tells the app its new port (annotation portcullis.dev/app-port-env). */
  appPortEnv: z.string().regex(ENV_VAR_NAME),
  /** Name of the pod volume the sidecar's config directory is mounted from. */
  configVolume: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63),
  /** The config file for pods without a ConfigMap of their own (values.yaml `defaults`). */
  config: z.record(z.string(), z.unknown()),
  /** Seconds added to drain.delay + drain.timeout for the pod's terminationGracePeriodSeconds. */
  graceMarginSeconds: z.int().min(0).max(3600),
});

export type InjectorSettings = Readonly<
  Omit<z.output<typeof settingsSchema>, 'sidecar'> & {
    sidecar: Container;
    /** drain.delay and drain.timeout of `config`, in milliseconds. */
    drainMs: { delay: number; timeout: number };
  }
>;

/** Parses settings.json text. Throws PortcullisError (USAGE) naming every problem. */
export function parseSettings(text: string, source: string): InjectorSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PortcullisError('USAGE', `${source}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  const result = settingsSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new PortcullisError('USAGE', `${source}: invalid injector settings\n  ${problems.join('\n  ')}`);
  }
  const s = result.data;
  if (!s.sidecar.volumeMounts.some((m) => m.name === s.configVolume)) {
    throw new PortcullisError('USAGE', `${source}: sidecar.volumeMounts has no mount of the config volume ${JSON.stringify(s.configVolume)}`);
  }
  const mount = s.sidecar.volumeMounts.find((m) => m.name === s.configVolume);
  const file = `${mount?.mountPath.replace(/\/$/, '')}/${CONFIG_KEY}`;
  if (!s.sidecar.args.includes(file)) {
    throw new PortcullisError('USAGE', `${source}: sidecar.args must name the config file ${file} (the config volume's mount plus ${CONFIG_KEY})`);
  }
  if ((s.sidecar.restartPolicy === 'Always') !== s.nativeSidecar) {
    throw new PortcullisError('USAGE', `${source}: sidecar.restartPolicy must be "Always" exactly when nativeSidecar is true`);
  }
  let drain;
  try {
    drain = loadConfig(JSON.stringify(s.config), `${source} config`).config.drain;
  } catch (err) {
    if (err instanceof ConfigError) throw new PortcullisError('USAGE', err.message, { cause: err });
    throw err;
  }
  return deepFreeze({ ...s, sidecar: s.sidecar as Container, drainMs: { delay: drain.delay, timeout: drain.timeout } });
}
