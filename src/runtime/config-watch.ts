/**
 * Notices changes to the config file the way a ConfigMap volume makes them. The kubelet writes a
 * new timestamped directory and renames `..data_tmp` over the `..data` symlink; the file itself
 * is a symlink through `..data`, so a watch on its inode goes dead at the first update. So:
 * watch the directory (it is never replaced), also poll on an interval as a fallback (some
 * filesystems send no events), and debounce both. What changed is decided by the content hash
 * (planReload), so a spurious trigger costs one small read.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../core/log.ts';

export interface ConfigWatchOptions {
  path: string;
  watch: boolean;
  pollInterval: number;
  debounce: number;
  logger: Logger;
  /** Runs a reload; never concurrently with itself. */
  reload: (trigger: string) => Promise<void>;
}

export interface ConfigWatch {
  /** Reload now (SIGHUP), through the same queue as the watcher. */
  trigger(reason: string): void;
  close(): void;
}

export function watchConfig(options: ConfigWatchOptions): ConfigWatch {
  const { logger } = options;
  let closed = false;
  let running = false;
  let again: string | undefined;
  let debounceTimer: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined;
  let rearmTimer: ReturnType<typeof setTimeout> | undefined;

  const run = (trigger: string) => {
    if (closed) return;
    if (running) {
      again = trigger;
      return;
    }
    running = true;
    options
      .reload(trigger)
      .catch((err: unknown) => logger.error('config reload failed', { error: String(err) }))
      .finally(() => {
        running = false;
        if (again !== undefined) {
          const t = again;
          again = undefined;
          run(t);
        }
      });
  };

  const schedule = (trigger: string) => {
    if (closed) return;
    if (debounceTimer !== undefined) clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      run(trigger);
    }, options.debounce);
  };

  const arm = () => {
    if (closed || !options.watch) return;
    try {
      watcher = watch(dirname(options.path), { persistent: false }, () => schedule('watch'));
      watcher.on('error', (err) => {
        // The directory itself went away or the watch broke: fall back to polling, try again later.
        logger.warn('config watch lost', { path: options.path, error: String(err) });
        watcher?.close();
        watcher = undefined;
        rearmTimer = setTimeout(arm, 1000);
        rearmTimer.unref?.();
      });
    } catch (err) {
      logger.warn('config watch unavailable', { path: options.path, error: String(err) });
      rearmTimer = setTimeout(arm, 1000);
      rearmTimer.unref?.();
    }
  };
  arm();
  // A change between the first read and the watch being armed would otherwise wait for a poll.
  if (options.watch) schedule('watch');

  const poll = options.pollInterval > 0 ? setInterval(() => run('poll'), options.pollInterval) : undefined;
  poll?.unref?.();

  return {
    trigger: (reason) => run(reason),
    close: () => {
      closed = true;
      watcher?.close();
      if (poll !== undefined) clearInterval(poll);
      if (debounceTimer !== undefined) clearTimeout(debounceTimer);
      if (rearmTimer !== undefined) clearTimeout(rearmTimer);
    },
  };
}
