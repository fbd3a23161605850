/**
 * issue 10: a config that validates must not hold a value the data path cannot send or a timer
 * cannot keep. Header-valued strings are checked as RFC 9110 field values (and the reject's
 * content type as a media type), durations are capped at the longest timer Node and Deno keep.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config-load.ts';
import { ConfigError } from '../../src/core/errors.ts';

/** 2^31-1 ms: the longest setTimeout delay on Node and Deno (a longer one fires after 1 ms). */
const MAX_DURATION_MS = 2 ** 31 - 1;

/** `path: message` of every problem; [] when the config loads. */
function problems(config: object): string[] {
  try {
    loadConfig(JSON.stringify(config), 'test.json');
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
}

describe('issue 10: header values the data path cannot send', () => {
  it('reject.contentType with CR/LF, NUL or another control character is refused, naming the path', () => {
    for (const bad of ['text/plain\r\nx-injected: 1', 'text/plain\n', 'text/plain\u0000', 'text/\u0007plain', 'text/plain\u007f']) {
      const p = problems({ reject: { contentType: bad } });
      expect(p, JSON.stringify(bad)).toHaveLength(1);
      expect(p[0]).toMatch(/^reject\.contentType: must be a media type/);
    }
  });

  it('reject.contentType must be a media type (type/subtype with parameters), not any text', () => {
    for (const bad of ['json', 'application/', '/json', 'text plain', 'text/plain;', 'text/plain; charset', ' text/plain', 'text/plain ', 'tëxt/plain']) {
      expect(problems({ reject: { contentType: bad } }), JSON.stringify(bad)).toEqual([
        expect.stringMatching(/^reject\.contentType: must be a media type such as application\/json/),
      ]);
    }
    for (const good of ['application/json', 'text/plain; charset=utf-8', 'application/problem+json', 'text/html;charset="utf-8"', 'application/vnd.api+json; v=1; q="a b"']) {
      expect(problems({ reject: { contentType: good } }), good).toEqual([]);
    }
  });

  it('a route header match value or host that no request can carry is refused', () => {
    const p = problems({
      routes: [
        { name: 'a', match: { headers: { 'x-a': 'one\ntwo' } } },
        { name: 'b', match: { headers: { 'x-b': ' padded ' } } },
        { name: 'c', match: { host: 'a.example\r\nx: 1' } },
        { name: 'd', match: { host: 'two words' } },
      ],
    });
    expect(p).toEqual([
      expect.stringMatching(/^routes\[0\]\.match\.headers\["x-a"\]: must be a header value/),
      expect.stringMatching(/^routes\[1\]\.match\.headers\["x-b"\]: must be a header value/),
      expect.stringMatching(/^routes\[2\]\.match\.host: must be a host name/),
      expect.stringMatching(/^routes\[3\]\.match\.host: must be a host name/),
    ]);
    expect(problems({ routes: [{ name: 'a', match: { host: '*.example.com', headers: { 'x-a': 'v 1; b=2', 'x-empty': '' } } }] })).toEqual([]);
  });
});

describe('issue 10: durations no timer can keep', () => {
  it('a duration over the longest timer is refused with the maximum in the message', () => {
    const p = problems({ inflight: { queue: { timeout: '1000h' } }, reload: { pollInterval: '1000h' }, drain: { delay: 3_000_000_000 } });
    expect(p.sort()).toEqual([
      'drain.delay: must be at most 596h (2147483647ms, the longest timer Node and Deno keep), got 3000000000',
      'inflight.queue.timeout: must be at most 596h (2147483647ms, the longest timer Node and Deno keep), got "1000h"',
      'reload.pollInterval: must be at most 596h (2147483647ms, the longest timer Node and Deno keep), got "1000h"',
    ]);
    expect(problems({ routes: [{ name: 'r', inflight: { queue: { timeout: '597h' } } }] })).toEqual([
      expect.stringMatching(/^routes\[0\]\.inflight\.queue\.timeout: must be at most 596h/),
    ]);
  });

  it('up to the maximum is fine', () => {
    expect(problems({ inflight: { queue: { timeout: '596h' } }, drain: { timeout: MAX_DURATION_MS }, reject: { retryAfter: '24h' } })).toEqual([]);
  });
});
