/** Time as the core sees it, injectable so tests can drive queue timeouts without sleeping. */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds from an arbitrary origin, monotonic. */
  now(): number;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};
