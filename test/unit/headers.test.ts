import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { forwardRequestHeaders, forwardResponseHeaders, rawHeader } from '../../src/proxy/headers.ts';

const FWD = { client: '10.0.0.9', proto: 'http' };
/** The peer is one of clientKey.trustedProxies. */
const TRUSTED = { ...FWD, trusted: true };

/** The pairs of a flat [name, value, ...] array. */
function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('forwardRequestHeaders', () => {
  it('drops hop-by-hop headers and those named in Connection, wherever they appear', () => {
    const { headers } = forwardRequestHeaders(
      ['X-Early', '1', 'Host', 'a.example', 'Connection', 'keep-alive, X-Early, x-late', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Accept', '*/*', 'X-Late', '2', 'Upgrade', 'h2c'],
      FWD,
    );
    expect(pairs(headers)).toEqual([
      ['Host', 'a.example'],
      ['Accept', '*/*'],
      ['x-forwarded-for', '10.0.0.9'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'a.example'],
    ]);
  });

  it('from a trusted peer: appends to X-Forwarded-For and keeps an earlier proxy\'s -Proto and -Host', () => {
    const { headers } = forwardRequestHeaders(
      ['X-Forwarded-For', '203.0.113.7', 'x-forwarded-for', '198.51.100.1', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'shop.example', 'Host', 'internal:8080'],
      TRUSTED,
    );
    expect(pairs(headers)).toEqual([
      ['Host', 'internal:8080'],
      ['x-forwarded-for', '203.0.113.7, 198.51.100.1, 10.0.0.9'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-host', 'shop.example'],
    ]);
  });

  it('issue 10: from an untrusted peer: X-Forwarded-* are replaced by what this hop saw, others dropped', () => {
    const spoof = ['X-Forwarded-For', '203.0.113.7', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example', 'X-Forwarded-Port', '443', 'Host', 'shop.example:8443', 'Accept', '*/*'];
    for (const fwd of [FWD, { ...FWD, trusted: false }]) {
      expect(pairs(forwardRequestHeaders(spoof, fwd).headers)).toEqual([
        ['Host', 'shop.example:8443'],
        ['Accept', '*/*'],
        ['x-forwarded-for', '10.0.0.9'],
        ['x-forwarded-proto', 'http'],
        ['x-forwarded-host', 'shop.example:8443'],
      ]);
    }
    // No Host: no X-Forwarded-Host either, whatever the client sent.
    expect(pairs(forwardRequestHeaders(['X-Forwarded-Host', 'evil.example'], FWD).headers)).toEqual([
      ['x-forwarded-for', '10.0.0.9'],
      ['x-forwarded-proto', 'http'],
    ]);
  });

  it('hasBody: a Content-Length other than 0, or any Transfer-Encoding', () => {
    expect(forwardRequestHeaders(['Host', 'a'], FWD).hasBody).toBe(false);
    expect(forwardRequestHeaders(['Content-Length', '0'], FWD).hasBody).toBe(false);
    expect(forwardRequestHeaders(['Content-Length', '12'], FWD).hasBody).toBe(true);
    const chunked = forwardRequestHeaders(['Transfer-Encoding', 'chunked'], FWD);
    expect(chunked.hasBody).toBe(true);
    // Transfer-Encoding is hop-by-hop: undici frames the body itself.
    expect(chunked.headers).not.toContain('Transfer-Encoding');
  });

  it('property: the result is the input minus hop-by-hop in original order, then the three X-Forwarded headers', () => {
    const HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect'];
    const name = fc.oneof(
      fc.constantFrom(...HOP, 'host', 'accept', 'x-a', 'x-b', 'content-length', 'x-forwarded-for'),
      fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/),
    );
    const spelled = name.chain((n) => fc.constantFrom(n, n.toUpperCase(), n.charAt(0).toUpperCase() + n.slice(1)));
    const value = fc.stringMatching(/^[ -~]{0,20}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(spelled, value), { maxLength: 12 }), fc.boolean(), (list, trusted) => {
        const raw = list.flat();
        const named = new Set<string>();
        for (const [n, v] of list) {
          if (n.toLowerCase() !== 'connection') continue;
          for (const t of v.split(',')) {
            const tok = t.trim().toLowerCase();
            if (tok && tok !== 'close' && tok !== 'keep-alive') named.add(tok);
          }
        }
        const kept = list.filter(([n]) => {
          const l = n.toLowerCase();
          const forwarded = trusted ? ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].includes(l) : l.startsWith('x-forwarded-');
          return !HOP.includes(l) && !named.has(l) && !forwarded;
        });
        const { headers } = forwardRequestHeaders(raw, { ...FWD, trusted });
        const got = pairs(headers);
        const tail = got.slice(kept.length);
        expect(got.slice(0, kept.length)).toEqual(kept);
        expect(tail.map(([n]) => n)).toEqual(
          ['x-forwarded-for', 'x-forwarded-proto', ...(kept.some(([n]) => n.toLowerCase() === 'host') || (trusted && list.some(([n]) => n.toLowerCase() === 'x-forwarded-host')) ? ['x-forwarded-host'] : [])],
        );
      }),
    );
  });
});

describe('forwardResponseHeaders', () => {
  it('drops hop-by-hop headers and those the app names in Connection', () => {
    expect(forwardResponseHeaders({ 'content-type': 'text/plain', connection: 'keep-alive, x-internal', 'keep-alive': 'timeout=5', 'x-internal': '1', 'set-cookie': ['a=1', 'b=2'] })).toEqual({
      'content-type': 'text/plain',
      'set-cookie': ['a=1', 'b=2'],
    });
  });
});

describe('rawHeader', () => {
  it('finds the first value of a name in any spelling', () => {
    expect(rawHeader(['Host', 'a', 'TraceParent', 'tp1', 'traceparent', 'tp2'], 'traceparent')).toBe('tp1');
    expect(rawHeader(['Host', 'a'], 'traceparent')).toBeUndefined();
  });
});
