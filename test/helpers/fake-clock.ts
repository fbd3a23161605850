/** A Clock for the core's tests: time moves only when told; due timers fire in order, each at its own time. */
import type { Clock, TimerHandle } from '../../src/core/clock.ts';

export class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    this.timers.set(++this.seq, { due: this.t + ms, fn });
    return this.seq;
  }
  clearTimer(h: TimerHandle): void {
    this.timers.delete(h as number);
  }
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      let id = -1;
      let due = Infinity;
      for (const [k, v] of this.timers) if (v.due <= target && v.due < due) [id, due] = [k, v.due];
      const timer = this.timers.get(id);
      if (timer === undefined) break;
      this.timers.delete(id);
      this.t = due;
      timer.fn();
    }
    this.t = target;
  }
  get armed(): number {
    return this.timers.size;
  }
}
