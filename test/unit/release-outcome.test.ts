/**
 * Issue 11: a permit's release carries how its exchange ended (src/proxy/outcome.ts), so a limit
 * algorithm can learn from it: success (the app answered below 500 and the answer completed),
 * dropped (the app failed), ignored (nothing learned about the app).
 */
import { describe, expect, it } from 'vitest';
import { releaseOutcome, upstreamFailure, type ExchangeEnd } from '../../src/proxy/outcome.ts';

const end = (e: Partial<ExchangeEnd>): ExchangeEnd => ({ status: 0, completed: false, failure: undefined, clientPaced: false, ...e });

describe('release outcome', () => {
  it.each<[string, Partial<ExchangeEnd>, string]>([
    ['app answered 200, response completed', { status: 200, completed: true }, 'success'],
    ['app answered 404, response completed', { status: 404, completed: true }, 'success'],
    ['tunnel opened (101)', { status: 101, completed: true }, 'success'],
    ['app answered 503', { status: 503, completed: true }, 'dropped'],
    ['app answered 500, client left mid-body', { status: 500, completed: false }, 'dropped'],
    ['upstream timeout (504 ours)', { failure: 'upstream' }, 'dropped'],
    ['upstream refused or reset mid-body', { status: 200, failure: 'upstream' }, 'dropped'],
    ['client went away before the head', {}, 'ignored'],
    ['client went away mid-body', { status: 200, completed: false }, 'ignored'],
    ['issue 12: app answered 200 but had to wait for its reader', { status: 200, completed: true, clientPaced: true }, 'ignored'],
    ['issue 12: app answered 503 while its reader was slow', { status: 503, completed: true, clientPaced: true }, 'dropped'],
    ['cut as a slow client', { status: 200, failure: 'ours' }, 'ignored'],
    ['internal error', { failure: 'ours' }, 'ignored'],
    ['internal error after a 5xx head', { status: 502, failure: 'ours' }, 'ignored'],
  ])('%s -> %s', (_name, e, want) => {
    expect(releaseOutcome(end(e))).toBe(want);
  });

  it('upstream errors map to what the client is told', () => {
    expect(upstreamFailure({ code: 'UND_ERR_HEADERS_TIMEOUT' })).toEqual({ status: 504, error: 'upstream_timeout' });
    expect(upstreamFailure({ code: 'UND_ERR_CONNECT_TIMEOUT' })).toEqual({ status: 504, error: 'upstream_connect_timeout' });
    expect(upstreamFailure({ code: 'ECONNREFUSED' })).toEqual({ status: 502, error: 'upstream_refused' });
    expect(upstreamFailure(new Error('socket hang up'))).toEqual({ status: 502, error: 'upstream_reset' });
    expect(upstreamFailure(null)).toEqual({ status: 502, error: 'upstream_reset' });
  });
});
