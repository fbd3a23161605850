/**
 * Issue 10, item 3: the request-target normalizer. Examples pin the rules; fast-check properties
 * over hostile targets check that the output is a fixed point (idempotent), has no dot segment and
 * no escaped unreserved character, and is read by a WHATWG URL parser as exactly the same path.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PATH_PROBLEMS, createPathNormalizer, isPathProblem, type EscapedSlashAction, type PathSettings } from '../../src/core/path-normalize.ts';

const ACTIONS: EscapedSlashAction[] = ['reject', 'keep', 'decode'];
const n = (target: string, settings: Partial<PathSettings> = {}) =>
  createPathNormalizer({ mergeSlashes: false, escapedSlashes: 'reject', ...settings })(target);

describe('issue 10: path normalization', () => {
  it('an already normal target comes back as the same string', () => {
    for (const t of ['/', '/slow', '/api/v2/users?id=1&x=%2e', '/static/app.v2.js', "/a!$&'()*+,;=:@b", '/a?b#'.slice(0, 4)]) {
      expect(n(t)).toBe(t);
    }
  });

  it.each([
    ['/%73low', '/slow'],
    ['/sl%6fw', '/slow'],
    ['/%7euser/%41', '/~user/A'],
    ['/x/../slow', '/slow'],
    ['/./slow', '/slow'],
    ['/slow/.', '/slow/'],
    ['/slow/..', '/'],
    ['/..', '/'],
    ['/../../a', '/a'],
    ['/a/b/../c/./d', '/a/c/d'],
    ['/%2e%2e/slow', '/slow'],
    ['/x/%2E%2e/slow', '/slow'],
    ['/x/.%2e/slow', '/slow'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a..b/...', '/a..b/...'],
    ['//slow', '/slow'],
    ['///slow', '/slow'],
    ['/x/..//slow', '/slow'],
    ['/a//b', '/a//b'],
    ['/x//../slow', '/x/slow'],
    ['/SLOW', '/SLOW'],
    ['/a%3bb%3F', '/a%3Bb%3F'],
    ['/a%25b', '/a%25b'],
    ['/a{b}|^`"c', '/a%7Bb%7D%7C%5E%60%22c'],
    ['/a[b]', '/a%5Bb%5D'],
    ['http://x/slow', '/slow'],
    ['HTTPS://user@x:8443/a/../b?q', '/b?q'],
    ['http://x', '/'],
    ['http://x?q=1', '/?q=1'],
    ['/slow?q=/../x%2e', '/slow?q=/../x%2e'],
    ['/slow?q=\\x', '/slow?q=\\x'],
    ['/slow#/../x', '/slow'],
    ['/a/./b?q#f', '/a/b?q'],
  ])('%s -> %s', (input, want) => {
    expect(n(input)).toBe(want);
  });

  it('merges every run of slashes with mergeSlashes', () => {
    expect(n('/a//b///c', { mergeSlashes: true })).toBe('/a/b/c');
    expect(n('/x//../slow', { mergeSlashes: true })).toBe('/slow');
    expect(n('/a//', { mergeSlashes: true })).toBe('/a/');
    expect(n('//', { mergeSlashes: true })).toBe('/');
  });

  it('refuses NUL, malformed escapes, asterisk-form and other forms', () => {
    expect(n('/a%00b')).toBe(PATH_PROBLEMS.nul);
    expect(n('/a\u0000b')).toBe(PATH_PROBLEMS.nul);
    for (const t of ['/a%', '/a%4', '/a%G1', '/a%4g/b', '/%%41']) expect(n(t), t).toBe(PATH_PROBLEMS.malformedEscape);
    expect(n('*')).toBe(PATH_PROBLEMS.asterisk);
    for (const t of ['ftp://x/a', 'x/a', 'example.com:80', '']) expect(n(t), t).toBe(PATH_PROBLEMS.form);
    expect(n('/caf\u0100')).toBe(PATH_PROBLEMS.character);
  });

  it('%2F, %5C and a raw backslash follow escapedSlashes', () => {
    for (const t of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%5cb', '/a\\b']) expect(n(t), t).toBe(PATH_PROBLEMS.escapedSlash);
    const keep = { escapedSlashes: 'keep' } as const;
    expect(n('/a%2fb', keep)).toBe('/a%2Fb');
    expect(n('/x%2F..%2Fslow', keep)).toBe('/x%2F..%2Fslow');
    expect(n('/a\\..\\b', keep)).toBe('/a%5C..%5Cb');
    const decode = { escapedSlashes: 'decode' } as const;
    expect(n('/x%2F..%2Fslow', decode)).toBe('/slow');
    expect(n('/x\\..%5cslow', decode)).toBe('/slow');
    expect(n('/a%2F%2Fb', { ...decode, mergeSlashes: true })).toBe('/a/b');
  });

  // Targets made of the pieces that matter: separators, dots, escapes (good, bad, unreserved,
  // slashes), characters that must be escaped, and the odd query or fragment.
  const piece = fc.oneof(
    fc.constantFrom('/', '//', '.', '..', '/./', '/../', '\\', '%2e', '%2E', '.%2e', '%2f', '%2F', '%5c', '%5C', '%41', '%7e', '%7E'),
    fc.constantFrom('%25', '%3b', '%3F', '%00', '%', '%G', '%4', '%e9', '?', '#', '{', ' ', '|', '^', '`', '"', '[', ']', '~', '@', ':'),
    fc.stringMatching(/^[a-zA-Z0-9_-]{1,4}$/),
  );
  const target = fc.oneof(
    fc.array(piece, { maxLength: 12 }).map((p) => `/${p.join('')}`),
    fc.array(piece, { maxLength: 8 }).map((p) => `http://h.test/${p.join('')}`),
  );
  const settings = fc.record({ mergeSlashes: fc.boolean(), escapedSlashes: fc.constantFrom(...ACTIONS) });
  const pathOf = (t: string) => {
    const q = t.indexOf('?');
    return q === -1 ? t : t.slice(0, q);
  };

  it('property: idempotent; no dot segments, no unreserved escapes; WHATWG reads the same path', () => {
    fc.assert(
      fc.property(target, settings, (t, s) => {
        const normalize = createPathNormalizer(s);
        const out = normalize(t);
        if (isPathProblem(out)) return;
        expect(normalize(out)).toBe(out);
        const path = pathOf(out);
        expect(path.startsWith('/')).toBe(true);
        expect(path.startsWith('//')).toBe(false);
        for (const seg of path.split('/')) expect(seg === '.' || seg === '..', `dot segment in ${path}`).toBe(false);
        expect(/%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2D|2E|5F|7E)/i.test(path), `unreserved escape in ${path}`).toBe(false);
        expect(/%[0-9a-f]?[a-f]|%[a-f][0-9A-F]/.test(path), `lower-case hex in ${path}`).toBe(false);
        expect(path.includes('\\')).toBe(false);
        if (s.escapedSlashes !== 'keep') expect(/%2F|%5C/.test(path)).toBe(false);
        if (s.mergeSlashes) expect(path.includes('//')).toBe(false);
        expect(new URL(path, 'http://x').pathname).toBe(path);
      }),
      { numRuns: 3000 },
    );
  });

  it('property: what WHATWG resolves from the raw target is what the normalizer resolves (no %2F/%5C involved)', () => {
    fc.assert(
      fc.property(target, (t) => {
        const out = n(t, { escapedSlashes: 'decode' });
        // A raw space cannot come from the HTTP parser, and WHATWG trims a trailing one.
        if (isPathProblem(out) || /%2f|%5c|\\|#| /i.test(t)) return;
        // WHATWG leaves unreserved escapes alone; decode them on its side too before comparing.
        const whatwg = new URL(t.startsWith('/') ? `http://x${t}` : t).pathname;
        expect(pathOf(out)).toBe(n(whatwg, { escapedSlashes: 'decode' }));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('issue 10: route patterns must be normalized paths', () => {
  it('a route exact or prefix that no normalized request could match is a config problem with its path', async () => {
    const { parseConfigText } = await import('../../src/core/config-load.ts');
    const { ConfigError } = await import('../../src/core/errors.ts');
    const text = [
      'routes:',
      '  - { name: a, match: { exact: /x/../slow } }',
      "  - { name: b, match: { prefix: '/%73low' } }",
      "  - { name: c, match: { prefix: '/a%G1' } }",
      "  - { name: ok, match: { prefix: '/api/', exact: '/a%2Fb' } }",
      '',
    ].join('\n');
    let problems: Array<{ path: string; message: string }> = [];
    try {
      parseConfigText(text, 'x.yaml');
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems.map((p) => ({ path: p.path, message: p.message }));
    }
    expect(problems).toEqual([
      { path: 'routes[0].match.exact', message: expect.stringContaining('write "/slow", got "/x/../slow"') },
      { path: 'routes[1].match.prefix', message: expect.stringContaining('write "/slow", got "/%73low"') },
      { path: 'routes[2].match.prefix', message: expect.stringContaining('malformed percent-escape') },
    ]);
  });
});
