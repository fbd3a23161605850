/**
 * Issue 11, one config fan-out: the running config (src/core/running-config.ts) is the one owner;
 * every Configurable gets each applied config once, in registration order; an invalid reload
 * reaches none of them; every attempt's result goes to the listeners. Driven through the real
 * reloader (src/reload.ts) on a real file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/core/config-schema.ts';
import { loadConfig } from '../../src/core/config-load.ts';
import { silentLogger } from '../../src/core/log.ts';
import { RunningConfig, configurable, type ReloadResult } from '../../src/core/running-config.ts';
import { startReloader } from '../../src/reload.ts';
import type { ConfigWatch } from '../../src/runtime/config-watch.ts';

/** A follower that records what it was given. */
function recorder(name: string, log: string[]) {
  const seen: Array<{ max: number; version: string }> = [];
  const part = configurable((c: Config, version: string) => {
    seen.push({ max: c.inflight.max, version });
    log.push(name);
  });
  return { part, seen };
}

const yaml = (max: number | string, extra = '') => `upstream:\n  url: http://127.0.0.1:9\nreload:\n  watch: false\n  pollInterval: 0s\ninflight:\n  max: ${max}\n${extra}`;

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length > 0) (cleanups.pop() as () => void)();
});

async function until<T>(what: string, f: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('config fan-out', () => {
  it('apply reaches every follower once, in registration order; report reaches every listener and /config', () => {
    const loaded = loadConfig(yaml(3), 'test');
    const running = new RunningConfig(loaded);
    const order: string[] = [];
    const a = recorder('a', order);
    const b = recorder('b', order);
    expect(running.follow(a.part)).toBe(a.part);
    running.follow(b.part);
    const results: ReloadResult[] = [];
    running.onReload((r) => results.push(r));
    running.onReload((r) => results.push(r));

    const next = loadConfig(yaml(7), 'test');
    running.apply(next);
    expect(a.seen).toEqual([{ max: 7, version: next.version }]);
    expect(b.seen).toEqual([{ max: 7, version: next.version }]);
    expect(order).toEqual(['a', 'b']);
    expect(running.generation).toBe(1);
    expect(running.config.inflight.max).toBe(7);

    const result: ReloadResult = { at: 'now', result: 'applied', version: next.version };
    running.report(result);
    expect(results).toEqual([result, result]);
    expect(running.view()).toMatchObject({ version: next.version, source: 'test', lastReload: result });
  });

  it('through the reloader: an applied reload reaches each follower once, an invalid one none; listeners get every result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-fan-out-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'portcullis.yaml');
    writeFileSync(file, yaml(3));
    const running = new RunningConfig(loadConfig(yaml(3), file));
    const order: string[] = [];
    const parts = ['admission', 'gate', 'telemetry', 'rejects'].map((n) => recorder(n, order));
    for (const p of parts) running.follow(p.part);
    const results: ReloadResult[] = [];
    running.onReload((r) => results.push(r));
    const watch: ConfigWatch = startReloader({ source: file, overrides: {}, running, logger: silentLogger });
    cleanups.push(() => watch.close());

    writeFileSync(file, yaml(9));
    watch.trigger('SIGHUP');
    await until('the applied result', () => results.find((r) => r.result === 'applied'));
    for (const p of parts) expect(p.seen.map((s) => s.max)).toEqual([9]);
    expect(order).toEqual(['admission', 'gate', 'telemetry', 'rejects']);

    writeFileSync(file, yaml('many'));
    watch.trigger('SIGHUP');
    const invalid = await until('the invalid result', () => results.find((r) => r.result === 'invalid'));
    expect(invalid.error).toMatch(/inflight\.max/);
    for (const p of parts) expect(p.seen).toHaveLength(1);
    expect(running.config.inflight.max).toBe(9);
    expect(running.view().lastReload).toBe(invalid);

    // A restart-only change is still applied for the rest and reported as restart_required.
    writeFileSync(file, yaml(11, 'listen:\n  port: 1\n'));
    watch.trigger('SIGHUP');
    await until('the restart_required result', () => results.find((r) => r.result === 'restart_required'));
    for (const p of parts) expect(p.seen.map((s) => s.max)).toEqual([9, 11]);
    expect(running.generation).toBe(2);
    expect(results.map((r) => r.result)).toEqual(['applied', 'invalid', 'restart_required']);
  });
});
