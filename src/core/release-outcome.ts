/**
 * How a permit's request ended, as a limit algorithm learns from it: `success` (the app answered,
 * below 500), `dropped` (the app failed: a 5xx, an upstream timeout, refused or reset), `ignored`
 * (says nothing about the app: the client went away, the request was bypassed or cut).
 */
export type ReleaseOutcome = 'success' | 'dropped' | 'ignored';
