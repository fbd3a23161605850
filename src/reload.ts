/**
 * Live reload: on a watch event, a poll, or SIGHUP, read the file, plan (core/reload-plan.ts),
 * and either apply in one step to the running config (which fans it out to everything that
 * follows it) or keep it and say why. Every attempt's result goes to the running config's
 * listeners (/config, metrics). Readiness is never touched by a reload.
 */
import { readFile } from 'node:fs/promises';
import type { ConfigOverrides } from './core/config-overrides.ts';
import type { Logger } from './core/log.ts';
import { planReload, type ReloadPlan } from './core/reload-plan.ts';
import type { RunningConfig } from './core/running-config.ts';
import { watchConfig, type ConfigWatch } from './runtime/config-watch.ts';

export interface ReloaderOptions {
  source: string;
  overrides: ConfigOverrides;
  running: RunningConfig;
  logger: Logger;
}

type Plan = ReloadPlan;

export function startReloader(options: ReloaderOptions): ConfigWatch {
  const { source, overrides, running, logger } = options;
  let lastFailure: string | undefined;

  const unchanged = (plan: Extract<Plan, { result: 'unchanged' }>, trigger: string, at: string): void => {
    if (lastFailure !== undefined) {
      // The file is back to what is running: the failure is over, say so once.
      lastFailure = undefined;
      logger.info('config recovered', { source, version: plan.version, trigger });
      running.report({ at, result: 'unchanged', version: plan.version });
    } else if (trigger === 'SIGHUP') logger.info('config unchanged', { source, version: plan.version, trigger });
  };

  const invalid = (plan: Extract<Plan, { result: 'invalid' }>, trigger: string, at: string): void => {
    // The same broken content is reported once, not at every poll.
    const key = `${plan.version}:${plan.error}`;
    if (key === lastFailure && trigger !== 'SIGHUP') return;
    lastFailure = key;
    logger.error('config invalid', { source, trigger, kept: running.version, problems: plan.problems });
    running.report({ at, result: 'invalid', version: plan.version, error: plan.error, problems: [...plan.problems] });
  };

  const applied = (plan: Extract<Plan, { result: 'applied' }>, trigger: string, at: string, started: number): void => {
    lastFailure = undefined;
    const previous = running.version;
    running.apply({ config: plan.config, version: plan.version, source, loadedAt: new Date() });
    const ms = Math.round((performance.now() - started) * 100) / 100;
    const restart = plan.restartRequired.length > 0;
    if (restart) logger.warn('config requires restart', { source, fields: plan.restartRequired, version: plan.version });
    logger.info('config reloaded', { source, trigger, version: plan.version, previous, ms, notApplied: plan.restartRequired });
    running.report({
      at,
      result: restart ? 'restart_required' : 'applied',
      version: plan.version,
      ...(restart ? { error: `requires restart: ${plan.restartRequired.join(', ')} (not applied)` } : {}),
    });
  };

  const reload = async (trigger: string): Promise<void> => {
    const started = performance.now();
    let text: string | Error;
    try {
      text = await readFile(source, 'utf8');
    } catch (err) {
      text = err as Error;
    }
    const plan = planReload(running.loaded, text, source, overrides);
    const at = new Date().toISOString();
    switch (plan.result) {
      case 'unchanged':
        return unchanged(plan, trigger, at);
      case 'invalid':
        return invalid(plan, trigger, at);
      case 'applied':
        return applied(plan, trigger, at, started);
    }
  };

  const { reload: r } = running.config;
  return watchConfig({ path: source, watch: r.watch, pollInterval: r.pollInterval, debounce: r.debounce, logger, reload });
}
