/**
 * issue 12: the "limit changed" line. An adaptive limit may move on every request; the log says
 * so at most once per limiter per second, folding the moves in between (from the first, to and
 * why the last, how many), writes what is folded on the next move after the second or on
 * flush(), and writes a reload's change at once.
 */
import { describe, expect, it } from 'vitest';
import { LimitChangeLog } from '../../src/core/limit-log.ts';
import type { Fields, Logger } from '../../src/core/log.ts';

function recording() {
  const lines: Array<{ level: string; msg: string } & Fields> = [];
  const logger: Logger = {
    debug: (msg, f) => lines.push({ level: 'debug', msg, ...f }),
    info: (msg, f) => lines.push({ level: 'info', msg, ...f }),
    warn: (msg, f) => lines.push({ level: 'warn', msg, ...f }),
    error: (msg, f) => lines.push({ level: 'error', msg, ...f }),
  };
  let t = 0;
  const log = new LimitChangeLog(logger, 1000, () => t);
  return { lines, log, at: (ms: number) => (t = ms) };
}

const line = (limiter: string, algorithm: string, from: number, to: number, why: string, changes: number) => ({
  level: 'info',
  msg: 'limit changed',
  limiter,
  algorithm,
  from,
  to,
  why,
  changes,
});

describe('LimitChangeLog', () => {
  it('the first move is written at once; moves within the second are folded and written by the next move after it', () => {
    const { lines, log, at } = recording();
    log.moved('global', 'gradient', { from: 20, to: 21, why: 'headroom' });
    expect(lines).toEqual([line('global', 'gradient', 20, 21, 'headroom', 1)]);
    at(100);
    log.moved('global', 'gradient', { from: 21, to: 22, why: 'headroom' });
    at(500);
    log.moved('global', 'gradient', { from: 22, to: 19, why: 'latency' });
    log.moved('global', 'gradient', { from: 19, to: 17, why: 'drop' });
    expect(lines).toHaveLength(1);
    at(1000);
    log.moved('global', 'gradient', { from: 17, to: 18, why: 'headroom' });
    expect(lines).toEqual([line('global', 'gradient', 20, 21, 'headroom', 1), line('global', 'gradient', 21, 18, 'headroom', 4)]);
  });

  it('flush() writes what was folded once its second has passed (all of it at shutdown); nothing when nothing is pending', () => {
    const { lines, log, at } = recording();
    log.moved('route:a', 'aimd', { from: 10, to: 9, why: 'drop' });
    at(200);
    log.moved('route:a', 'aimd', { from: 9, to: 8, why: 'drop' });
    log.flush();
    expect(lines).toHaveLength(1);
    at(1000);
    log.flush();
    expect(lines.at(-1)).toEqual(line('route:a', 'aimd', 9, 8, 'drop', 1));
    log.flush();
    expect(lines).toHaveLength(2);
    at(1500);
    log.moved('route:a', 'aimd', { from: 8, to: 7, why: 'timeout' });
    log.flush(true);
    expect(lines.at(-1)).toEqual(line('route:a', 'aimd', 8, 7, 'timeout', 1));
    expect(lines).toHaveLength(3);
  });

  it('each limiter has its own second', () => {
    const { lines, log, at } = recording();
    log.moved('global', 'gradient', { from: 20, to: 21, why: 'headroom' });
    at(10);
    log.moved('route:a', 'aimd', { from: 5, to: 4, why: 'drop' });
    log.moved('global', 'gradient', { from: 21, to: 22, why: 'headroom' });
    expect(lines.map((l) => l['limiter'])).toEqual(['global', 'route:a']);
  });

  it('a reload is written at once, after what was folded before it, and starts a new second', () => {
    const { lines, log, at } = recording();
    log.moved('global', 'gradient', { from: 20, to: 21, why: 'headroom' });
    at(100);
    log.moved('global', 'gradient', { from: 21, to: 25, why: 'headroom' });
    at(200);
    log.reloaded('global', 'fixed', 25, 100);
    at(300);
    log.reloaded('global', 'aimd', 100, 100);
    at(400);
    log.moved('global', 'aimd', { from: 100, to: 90, why: 'drop' });
    expect(lines).toEqual([
      line('global', 'gradient', 20, 21, 'headroom', 1),
      line('global', 'gradient', 21, 25, 'headroom', 1),
      line('global', 'fixed', 25, 100, 'reload', 1),
      line('global', 'aimd', 100, 100, 'reload', 1),
    ]);
    at(1300);
    log.flush();
    expect(lines.at(-1)).toEqual(line('global', 'aimd', 100, 90, 'drop', 1));
  });

  it('a flood of moves costs no line: 10 000 moves in 10 s are at most 11 lines, the changes all counted', () => {
    const { lines, log, at } = recording();
    for (let i = 0; i < 10_000; i++) {
      at(i);
      log.moved('global', 'gradient', { from: i, to: i + 1, why: 'headroom' });
    }
    log.flush(true);
    expect(lines.length).toBeLessThanOrEqual(11);
    expect(lines.reduce((n, l) => n + (l['changes'] as number), 0)).toBe(10_000);
  });
});
