/**
 * The one owner of the running config. Everything that follows the config (admission, the socket
 * gate, telemetry, the reject catalogue, the path rules, client identity, slow clients, upgrades,
 * the server's own timeouts) registers as a `Configurable` and gets each applied config through
 * that one call, in registration order, in one synchronous step. Reload attempts (applied or not)
 * go to listeners: the admin `/config` view reads the last one here, metrics count them.
 */
import type { Config } from './config-schema.ts';
import type { LoadedConfig } from './config-load.ts';

/** Follows the running config: applies a validated one in place (never rebuilt: in-flight state stays). */
export interface Configurable {
  apply(config: Config, version: string): void;
}

/** A Configurable from a function, for collaborators that keep their own update method. */
export function configurable(apply: (config: Config, version: string) => void): Configurable {
  return { apply };
}

/** The outcome of one reload attempt, as `/config` shows it. */
export interface ReloadResult {
  at: string;
  result: 'applied' | 'unchanged' | 'invalid' | 'restart_required';
  version?: string;
  error?: string;
  problems?: unknown[];
}

export type ReloadListener = (result: ReloadResult) => void;

/** What `/config` answers. */
export interface ConfigView {
  version: string;
  source: string;
  loadedAt: string;
  lastReload: ReloadResult | null;
  config: Config;
}

export class RunningConfig {
  private current: LoadedConfig;
  private readonly followers: Configurable[] = [];
  private readonly listeners: ReloadListener[] = [];
  private last: ReloadResult | undefined;
  /** Applied reloads since start, so a reader of /stats can tell whether two snapshots saw the same limits. */
  generation = 0;

  constructor(loaded: LoadedConfig) {
    this.current = loaded;
  }

  get loaded(): LoadedConfig {
    return this.current;
  }

  get config(): Config {
    return this.current.config;
  }

  get version(): string {
    return this.current.version;
  }

  /** Registers `part` to receive every config applied from now on; returns it, for assembly in one line. */
  follow<T extends Configurable>(part: T): T {
    this.followers.push(part);
    return part;
  }

  /** Registers a listener for reload results. */
  onReload(listener: ReloadListener): void {
    this.listeners.push(listener);
  }

  /** Applies a validated config to every follower, in one step. */
  apply(next: LoadedConfig): void {
    this.current = next;
    this.generation++;
    for (const f of this.followers) f.apply(next.config, next.version);
  }

  /** Records the outcome of a reload attempt and tells the listeners. */
  report(result: ReloadResult): void {
    this.last = result;
    for (const l of this.listeners) l(result);
  }

  view(): ConfigView {
    const c = this.current;
    return { version: c.version, source: c.source, loadedAt: c.loadedAt.toISOString(), lastReload: this.last ?? null, config: c.config };
  }
}
