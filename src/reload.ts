/**
 * Live reload: on a watch event, a poll, or SIGHUP, read the file, plan (core/reload-plan.ts),
 * and either apply in one step or keep the running config and say why. Readiness is never
 * touched by a reload.
 */
import { readFile } from 'node:fs/promises';
import type { LoadedConfig } from './core/config-load.ts';
import type { ConfigOverrides } from './core/config-overrides.ts';
import type { Logger } from './core/log.ts';
import { planReload } from './core/reload-plan.ts';
import { watchConfig, type ConfigWatch } from './runtime/config-watch.ts';
import type { Sidecar } from './sidecar.ts';

export interface ReloaderOptions {
  source: string;
  overrides: ConfigOverrides;
  running: LoadedConfig;
  sidecar: Sidecar;
  logger: Logger;
  /** Counted per result (metrics hook). */
  onResult?: (result: 'applied' | 'invalid' | 'restart_required') => void;
}

export function startReloader(options: ReloaderOptions): ConfigWatch {
  const { source, overrides, sidecar, logger } = options;
  let running = options.running;
  let lastFailure: string | undefined;

  const reload = async (trigger: string): Promise<void> => {
    const started = performance.now();
    let text: string | Error;
    try {
      text = await readFile(source, 'utf8');
    } catch (err) {
      text = err as Error;
    }
    const plan = planReload(running, text, source, overrides);
    const at = new Date().toISOString();
    switch (plan.result) {
      case 'unchanged':
        if (lastFailure !== undefined) {
          // The file is back to what is running: the failure is over, say so once.
          lastFailure = undefined;
          logger.info('config recovered', { source, version: plan.version, trigger });
          sidecar.setLastReload({ at, result: 'unchanged', version: plan.version });
        } else if (trigger === 'SIGHUP') logger.info('config unchanged', { source, version: plan.version, trigger });
        return;
      case 'invalid': {
        // The same broken content is reported once, not at every poll.
        const key = `${plan.version}:${plan.error}`;
        if (key === lastFailure && trigger !== 'SIGHUP') return;
        lastFailure = key;
        logger.error('config invalid', { source, trigger, kept: running.version, problems: plan.problems });
        sidecar.setLastReload({ at, result: 'invalid', version: plan.version, error: plan.error, problems: [...plan.problems] });
        options.onResult?.('invalid');
        return;
      }
      case 'applied': {
        lastFailure = undefined;
        const previous = running.version;
        running = { config: plan.config, version: plan.version, source, loadedAt: new Date() };
        sidecar.update(running);
        const ms = Math.round((performance.now() - started) * 100) / 100;
        if (plan.restartRequired.length > 0) {
          logger.warn('config requires restart', { source, fields: plan.restartRequired, version: plan.version });
          options.onResult?.('restart_required');
        } else options.onResult?.('applied');
        logger.info('config reloaded', { source, trigger, version: plan.version, previous, ms, notApplied: plan.restartRequired });
        sidecar.setLastReload({
          at,
          result: plan.restartRequired.length > 0 ? 'restart_required' : 'applied',
          version: plan.version,
          ...(plan.restartRequired.length > 0 ? { error: `requires restart: ${plan.restartRequired.join(', ')} (not applied)` } : {}),
        });
        return;
      }
    }
  };

  const { reload: r } = running.config;
  return watchConfig({ path: source, watch: r.watch, pollInterval: r.pollInterval, debounce: r.debounce, logger, reload });
}
