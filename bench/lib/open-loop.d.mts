// Types of open-loop.mjs for the TypeScript tests.
export const NOT_SENT: -1;
export function nowMs(): number;

export interface Window {
  fromMs: number;
  toMs: number;
  sent: number;
  ok: number;
  /** 503 and 429 answers. */
  rejected: number;
  /** Status 0: connection errors and timeouts. */
  errors: number;
  /** Anything else than 2xx, 429, 503. */
  otherStatus: number;
  notSent: number;
  s4xx: number;
  s5xx: number;
  sentPerS: number;
  okPerS: number;
  rejectsPerS: number;
  errorsPerS: number;
  rejectPct: number;
  okP50: number | undefined;
  okP99: number | undefined;
  okMax: number | undefined;
}

export interface RequestLog {
  /** ms since the epoch when the first request was due. */
  startedAt: number;
  rate: number | undefined;
  durationMs: number;
  count: number;
  notSent: number;
  errorKinds: Record<string, number>;
  records: { start: ArrayLike<number>; latency: ArrayLike<number>; status: ArrayLike<number> };
  window(fromMs: number, toMs: number, opts?: { by?: 'start' | 'end' }): Window;
  total(): Window;
  windows(stepMs: number, fromMs?: number, toMs?: number, opts?: { by?: 'start' | 'end' }): Window[];
}

export interface OpenLoopOptions {
  url: string;
  /** requests per second */
  rate: number;
  durationMs: number;
  /** client deadline per request (default 2000) */
  timeoutMs?: number;
  /** requests open at once at most (default 4096); past it a due request is not sent */
  maxInflight?: number;
  tickMs?: number;
  onTick?: (t: { elapsedMs: number; sent: number; inflight: number; notSent: number }) => void;
}

export function openLoop(options: OpenLoopOptions): Promise<RequestLog>;

export function requestLog(log: {
  startedAt: number;
  start: ArrayLike<number>;
  latency: ArrayLike<number>;
  status: ArrayLike<number>;
  rate?: number;
  durationMs?: number;
  notSent?: number;
  errors?: Record<string, number>;
}): RequestLog;

export interface Sampler<T> {
  samples: { t: number; value: T }[];
  done: Promise<{ samples: { t: number; value: T }[]; failures: number }>;
  stop(): Promise<{ samples: { t: number; value: T }[]; failures: number }>;
}

export function sampleJson<T>(options: { url: string; everyMs: number; durationMs: number; pick: (json: any) => T; timeoutMs?: number }): Sampler<T>;
