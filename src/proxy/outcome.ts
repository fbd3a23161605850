/**
 * How an exchange ended, in the two vocabularies that need it: what the client is told when the
 * app fails (`upstreamFailure`), and what the permit's release reports to a limit algorithm
 * (`releaseOutcome`).
 */
import type { ReleaseOutcome } from '../core/release-outcome.ts';

export type UpstreamFailure = { status: 502 | 504; error: string };

/** Maps undici's errors to what the client is told. Refused or reset: 502 at once; no head in time: 504. */
export function upstreamFailure(err: unknown): UpstreamFailure {
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { status: 504, error: 'upstream_timeout' };
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { status: 504, error: 'upstream_connect_timeout' };
    case 'ECONNREFUSED':
    case 'ENOENT':
      return { status: 502, error: 'upstream_refused' };
    default:
      return { status: 502, error: 'upstream_reset' };
  }
}

/**
 * Why an exchange stopped short, when it did: `upstream` the app failed (timeout, refused, reset,
 * a bad upgrade); `ours` portcullis answered or cut for reasons that say nothing about the app
 * (an internal error, a request undici would not send, a slow client cut).
 */
export type Failure = 'upstream' | 'ours';

/** What an adapter knows when its exchange ends. */
export interface ExchangeEnd {
  /** The app's final status as relayed (101 for a tunnel), 0 when none was. */
  readonly status: number;
  /** The app's answer was relayed completely (every byte handed to the client's socket). */
  readonly completed: boolean;
  readonly failure: Failure | undefined;
  /** The answer waited for the client to read it before the app was done (backpressure). */
  readonly clientPaced: boolean;
}

/**
 * success: the app answered below 500 and the answer completed; dropped: the app failed (a 5xx,
 * an upstream timeout, refused, reset); ignored: anything that says nothing about the app (the
 * client went away or was cut, an internal error, or a success whose answer waited for its
 * reader: its RTT timed the client, and a client must not be able to teach the limit that the
 * app is slow).
 */
export function releaseOutcome(end: ExchangeEnd): ReleaseOutcome {
  if (end.failure === 'upstream') return 'dropped';
  if (end.failure === 'ours') return 'ignored';
  if (end.status >= 500) return 'dropped';
  return end.completed && end.status > 0 && !end.clientPaced ? 'success' : 'ignored';
}
