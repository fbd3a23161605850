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
  const w = new Watcher(options);
  w.arm();
  // A change between the first read and the watch being armed would otherwise wait for a poll.
  if (options.watch) w.schedule('watch');
  w.startPolling();
  return { trigger: (reason) => w.run(reason), close: () => w.close() };
}

/** One reload at a time: a trigger while one runs is remembered (the last one) and run after it. */
class Watcher {
  private closed = false;
  private running = false;
  private again: string | undefined;
  private debounceTimer: ReturnType<typeof setTimeout> | undefined;
  private watcher: FSWatcher | undefined;
  private rearmTimer: ReturnType<typeof setTimeout> | undefined;
  private poll: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: ConfigWatchOptions) {}

  run(trigger: string): void {
    if (this.closed) return;
    if (this.running) {
      this.again = trigger;
      return;
    }
    this.running = true;
    this.options
      .reload(trigger)
      .catch((err: unknown) => this.options.logger.error('config reload failed', { error: String(err) }))
      .finally(() => {
        this.running = false;
        const next = this.again;
        this.again = undefined;
        if (next !== undefined) this.run(next);
      });
  }

  schedule(trigger: string): void {
    if (this.closed) return;
    if (this.debounceTimer !== undefined) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.run(trigger);
    }, this.options.debounce);
  }

  /** Watches the file's directory (never the inode: the kubelet swaps `..data`). */
  arm(): void {
    const { options } = this;
    if (this.closed || !options.watch) return;
    try {
      this.watcher = watch(dirname(options.path), { persistent: false }, () => this.schedule('watch'));
      this.watcher.on('error', (err) => {
        // The directory itself went away or the watch broke: fall back to polling, try again later.
        options.logger.warn('config watch lost', { path: options.path, error: String(err) });
        this.watcher?.close();
        this.watcher = undefined;
        this.rearmLater();
      });
    } catch (err) {
      options.logger.warn('config watch unavailable', { path: options.path, error: String(err) });
      this.rearmLater();
    }
  }

  private rearmLater(): void {
    this.rearmTimer = setTimeout(() => this.arm(), 1000);
    this.rearmTimer.unref?.();
  }

  startPolling(): void {
    if (this.options.pollInterval <= 0) return;
    this.poll = setInterval(() => this.run('poll'), this.options.pollInterval);
    this.poll.unref?.();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.debounceTimer !== undefined) clearTimeout(this.debounceTimer);
    if (this.rearmTimer !== undefined) clearTimeout(this.rearmTimer);
  }
}
