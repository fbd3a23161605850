/**
 * How a permit's request ended, as a limit algorithm learns from it: `success` (the app answered,
 * below 500), `dropped` (the app failed: a 5xx, an upstream timeout, refused or reset), `ignored`
 * (says nothing about the app: the client went away, the request was bypassed or cut).
 */
export type ReleaseOutcome = 'success' | 'dropped' | 'ignored';

/**
 * When the app's part of an exchange began and ended, as the limiter's Clock reads them
 * (`performance.now()` for the system clock), for the RTT sample of an adaptive limit. Both
 * leave out time the client sets the pace of, so a client cannot pass its own slowness off as
 * the app's latency: the sample starts when the request body was all in (`bodyDoneAt`; unset
 * for a request without a body, then it starts at admission) and ends when the app's answer was
 * done (`appDoneAt`; unset: now). The data path's exchange is this object, so releasing with it
 * allocates nothing.
 */
export interface ReleaseTiming {
  readonly bodyDoneAt: number | undefined;
  readonly appDoneAt: number | undefined;
}
