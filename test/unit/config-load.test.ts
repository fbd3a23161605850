import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfigText, restartOnlyChanges } from '../../src/core/config-load.ts';
import { configVersion } from '../../src/core/config-version.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { lines, problemsOf } from '../helpers/config-problems.ts';

const root = new URL('../../', import.meta.url);
const readRepoFile = (path: string) => readFileSync(new URL(path, root), 'utf8');

const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8080 },
  admin: { host: '0.0.0.0', port: 9901 },
  upstream: { url: 'http://127.0.0.1:3000', connectTimeout: 1000, timeout: 60_000, maxSockets: 512 },
  connections: {
    max: 4096,
    perClient: 0,
    onLimit: 'reject',
    evictIdle: true,
    headerTimeout: 10_000,
    idleTimeout: 60_000,
    maxHeaderSize: 16_384,
    // issue 10: slow-client limits are on by default (Kestrel 240 B/s after 5 s; nginx 60 s).
    bodyTimeout: 60_000,
    bodyMinRate: { bytesPerSecond: 240, grace: 5000 },
    sendTimeout: 60_000,
    sendMinRate: { bytesPerSecond: 240, grace: 5000 },
  },
  inflight: { max: 256, perClient: 0, queue: { size: 0, timeout: 1000 } },
  upgrade: { allow: ['websocket'], idleTimeout: 300_000 },
  clientKey: { from: 'socket', trustedProxies: [], ipv6Prefix: 64 },
  routes: [],
  paths: { mergeSlashes: false, escapedSlashes: 'reject' },
  reject: {
    status: 503,
    clientStatus: 429,
    retryAfter: 1000,
    body: '{"error":"overloaded"}',
    contentType: 'application/json',
    reasonHeader: true,
  },
  dryRun: false,
  telemetry: { alwaysSampleRejects: true, rejectSpansPerSecond: 100 },
  drain: { delay: 5000, timeout: 25_000 },
  reload: { watch: true, pollInterval: 5000, debounce: 100 },
};

describe('defaults', () => {
  it('no file means every default (DESIGN "Config file")', () => {
    expect(loadConfig(undefined, '(none)').config).toEqual(DEFAULTS);
  });

  it('an empty mapping means every default', () => {
    expect(parseConfigText('{}\n', 'x.yaml').config).toEqual(DEFAULTS);
  });

  it('fills defaults inside partly given sections and routes', () => {
    const { config } = parseConfigText(
      'inflight: { max: 3 }\nroutes:\n  - name: r\n    inflight: { max: 1 }\n  - name: probes\n    bypass: true\n',
      'x.yaml',
    );
    expect(config.inflight).toEqual({ max: 3, perClient: 0, queue: { size: 0, timeout: 1000 } });
    expect(config.routes).toEqual([
      { name: 'r', match: {}, inflight: { max: 1, perClient: 0, queue: { size: 0, timeout: 1000 } }, bypass: false },
      { name: 'probes', match: {}, bypass: true },
    ]);
  });

  it('turns durations into milliseconds and sizes into bytes, and drops $schema', () => {
    const { config } = parseConfigText(
      '$schema: ../schema/portcullis.schema.json\nupstream: { timeout: 2s, connectTimeout: 1500 }\n' +
        'connections: { maxHeaderSize: 1MiB, idleTimeout: 1m }\ndrain: { delay: 500ms, timeout: 0 }\n',
      'x.yaml',
    );
    expect(config.upstream.timeout).toBe(2000);
    expect(config.upstream.connectTimeout).toBe(1500);
    expect(config.connections.maxHeaderSize).toBe(1024 * 1024);
    expect(config.connections.idleTimeout).toBe(60_000);
    expect(config.drain).toEqual({ delay: 500, timeout: 0 });
    expect(Object.keys(config)).not.toContain('$schema');
  });
});

describe('slow-client limits (issue 10)', () => {
  it('issue 10: take durations and rates, fill the grace, and 0 switches one off', () => {
    const { config } = parseConfigText(
      'connections:\n  bodyTimeout: 0\n  bodyMinRate: { bytesPerSecond: 1000 }\n  sendTimeout: 2m\n  sendMinRate: { bytesPerSecond: 0, grace: 500ms }\n',
      'x.yaml',
    );
    expect(config.connections).toMatchObject({
      bodyTimeout: 0,
      bodyMinRate: { bytesPerSecond: 1000, grace: 5000 },
      sendTimeout: 120_000,
      sendMinRate: { bytesPerSecond: 0, grace: 500 },
    });
  });

  it('issue 10: a negative rate or an unknown key in a rate is refused', () => {
    expect(lines('connections:\n  bodyMinRate: { bytesPerSecond: -1 }\n')).toEqual([
      '2:34 connections.bodyMinRate.bytesPerSecond: must be >= 0, got -1',
    ]);
    expect(lines('connections:\n  sendMinRate: { rate: 5 }\n').join('\n')).toMatch(/connections\.sendMinRate\.rate: unknown key "rate"/);
  });
});

describe('each kind of problem', () => {
  it('unknown key: path, position of the key, and a suggestion', () => {
    expect(lines('listen:\n  port: 8080\n  prot: 1\n')).toEqual(['3:3 listen.prot: unknown key "prot" (did you mean "port"?)']);
    expect(lines('upstream:\n  max_sockets: 3\n')).toEqual([
      '2:3 upstream.max_sockets: unknown key "max_sockets" (did you mean "maxSockets"?)',
    ]);
    expect(lines('routes:\n  - name: a\n    bypas: true\n')).toEqual(['3:5 routes[0].bypas: unknown key "bypas" (did you mean "bypass"?)']);
    expect(lines('routes:\n  - name: a\n    inflight: { max: 1, queue: { szie: 1 } }\n')).toEqual([
      '3:34 routes[0].inflight.queue.szie: unknown key "szie" (did you mean "size"?)',
    ]);
    expect(lines('nonsense: 1\n')).toEqual(['1:1 nonsense: unknown key "nonsense"']);
  });

  it('issue 10: upgrade.allow takes protocol tokens (name or name/version) only', () => {
    expect(parseConfigText('upgrade: { allow: [websocket, h2c/1, WebSocket] }\n', 'x.yaml').config.upgrade.allow).toEqual(['websocket', 'h2c/1', 'WebSocket']);
    expect(parseConfigText('upgrade: { allow: [] }\n', 'x.yaml').config.upgrade.allow).toEqual([]);
    expect(lines('upgrade: { allow: ["web socket"] }\n')).toEqual([
      '1:20 upgrade.allow[0]: must be an Upgrade protocol such as websocket (token or token/version), got "web socket"',
    ]);
  });

  it('wrong type', () => {
    expect(lines('dryRun: "yes"\n')).toEqual(['1:9 dryRun: must be true or false, got "yes"']);
    expect(lines('inflight: 5\n')).toEqual(['1:11 inflight: must be a mapping (key: value), got 5']);
    expect(lines('routes: { name: a }\n')).toEqual(['1:9 routes: must be a list, got a mapping']);
    expect(lines('reject:\n  body: 5\n')).toEqual(['2:9 reject.body: must be a string, got 5']);
    expect(lines('inflight:\n  max: 1.5\n')).toEqual(['2:8 inflight.max: must be a whole number, got 1.5']);
  });

  it('out of range: names the rule and the value', () => {
    expect(lines('routes:\n  - name: a\n    inflight:\n      max: -1\n')).toEqual(['4:12 routes[0].inflight.max: must be >= 0, got -1']);
    expect(lines('listen: { port: 70000 }\n')).toEqual(['1:17 listen.port: must be <= 65535, got 70000']);
    expect(lines('connections: { max: 0 }\n')).toEqual(['1:21 connections.max: must be >= 1, got 0']);
    expect(lines('reject: { status: 200 }\n')).toEqual(['1:19 reject.status: must be an HTTP error status (400-599), got 200']);
    expect(lines('connections: { onLimit: drop }\n')).toEqual(['1:25 connections.onLimit: must be one of "reject", "close", got "drop"']);
  });

  it('bad duration', () => {
    const hint = 'must be a duration such as 500ms, 2s or 1m, or whole milliseconds';
    expect(lines('upstream:\n  timeout: abc\n')).toEqual([`2:12 upstream.timeout: ${hint}, got "abc"`]);
    expect(lines('upstream:\n  timeout: 2 s\n')).toEqual([`2:12 upstream.timeout: ${hint}, got "2 s"`]);
    expect(lines('upstream:\n  timeout: true\n')).toEqual([`2:12 upstream.timeout: ${hint}, got true`]);
    expect(lines('upstream:\n  timeout:\n')).toEqual([`2:3 upstream.timeout: ${hint}, got null (an empty value)`]);
    expect(lines('drain: { delay: -5 }\n')).toEqual(['1:17 drain.delay: must be >= 0, got -5']);
    expect(lines('upstream: { timeout: 0s }\n')).toEqual(['1:22 upstream.timeout: must be at least 1ms, got "0s"']);
  });

  it('bad size', () => {
    expect(lines('connections:\n  maxHeaderSize: 16kb\n')).toEqual([
      '2:18 connections.maxHeaderSize: must be a size such as 16KiB or 1MiB, or whole bytes, got "16kb"',
    ]);
    expect(lines('connections:\n  maxHeaderSize: 2GiB\n')).toEqual([
      '2:18 connections.maxHeaderSize: must be between 1024 and 1048576 bytes, got "2GiB"',
    ]);
  });

  it('bad regex', () => {
    expect(lines('routes:\n  - name: a\n    match: { regex: "(" }\n')).toEqual([
      '3:21 routes[0].match.regex: must be a valid regular expression, got "("',
    ]);
  });

  it('bad match fields', () => {
    expect(lines('routes:\n  - name: a\n    match: { prefix: upload, methods: [get] }\n')).toEqual([
      '3:22 routes[0].match.prefix: must be a path starting with "/", got "upload"',
      '3:40 routes[0].match.methods[0]: must be an upper-case HTTP method, got "get"',
    ]);
    expect(lines('routes:\n  - name: a\n    match:\n      headers: { "x id": v }\n')).toEqual([
      '4:18 routes[0].match.headers["x id"]: must be an HTTP header name, got "x id"',
    ]);
  });

  it('bad upstream URL', () => {
    for (const url of ['https://127.0.0.1:3000', 'http://127.0.0.1:3000/api', 'localhost:3000', 'unix:']) {
      expect(lines(`upstream: { url: "${url}" }\n`)).toEqual([
        `1:18 upstream.url: must be http://HOST:PORT or unix:/path/to.sock, got "${url}"`,
      ]);
    }
    expect(parseConfigText('upstream: { url: "unix:/run/app.sock" }\n', 'x').config.upstream.url).toBe('unix:/run/app.sock');
  });

  it('route names: required, well formed, unique', () => {
    expect(lines('routes:\n  - match: { prefix: / }\n')).toEqual(['2:5 routes[0].name: is required']);
    expect(lines('routes:\n  - name: a b\n')).toEqual([
      `2:11 routes[0].name: must be 1-63 letters, digits, '_', '.' or '-', got "a b"`,
    ]);
    expect(lines('routes:\n  - name: a\n  - name: b\n  - name: a\n')).toEqual([
      '4:11 routes[2].name: duplicate route name "a" (also routes[0])',
    ]);
  });

  it('a bypass route with inflight limits', () => {
    expect(lines('routes:\n  - name: probes\n    bypass: true\n    inflight: { max: 1 }\n')).toEqual([
      '3:13 routes[0].bypass: a bypass route cannot have inflight limits',
    ]);
  });

  it('YAML syntax error with line:column', () => {
    expect(lines('listen:\n  port: 8080\n  host: a: b\n')).toEqual([
      '3:9 : YAML syntax error: Nested mappings are not allowed in compact mappings',
    ]);
    const [p] = problemsOf('inflight:\n  max: [1, 2\nroutes: []\n');
    expect(p?.message).toMatch(/^YAML syntax error: /);
    expect(p?.line).toBe(3);
  });

  it('empty file and comments only', () => {
    const msg = 'the file has no settings (it is empty or only comments); write {} to take every default';
    expect(lines('')).toEqual([`-:- : ${msg}`]);
    expect(lines('# nothing here\n\n   # really\n')).toEqual([`-:- : ${msg}`]);
  });

  it('a top level that is not a mapping', () => {
    expect(lines('- listen: 1\n- admin: 2\n')).toEqual(['1:1 : the top level must be a mapping of settings (key: value), got a list']);
    expect(lines('8080\n')).toEqual(['1:1 : the top level must be a mapping of settings (key: value), got 8080']);
    expect(lines('~\n')).toEqual(['1:1 : the top level must be a mapping of settings (key: value), got null (an empty value)']);
  });

  it('duplicate keys, at any depth', () => {
    expect(lines('listen:\n  port: 1\n  port: 2\n')).toEqual([
      '3:3 listen.port: duplicate key "port" (first at line 2); the later one would silently win',
    ]);
    expect(lines('routes: []\ndryRun: true\nroutes: []\n')).toEqual([
      '3:1 routes: duplicate key "routes" (first at line 1); the later one would silently win',
    ]);
    // The later value is the one validated, and its problems point at it.
    expect(lines('listen:\n  port: 1\nlisten:\n  port: -1\n')).toEqual([
      '3:1 listen: duplicate key "listen" (first at line 1); the later one would silently win',
      '4:9 listen.port: must be >= 0, got -1',
    ]);
  });

  it('more than one YAML document', () => {
    const [p] = problemsOf('dryRun: true\n---\ndryRun: false\n');
    expect(p?.message).toMatch(/^YAML syntax error: .*multiple documents/);
    expect(p?.line).toBe(2);
  });
});

describe('many problems in one file', () => {
  it('reports every one, in file order, with its line and column', () => {
    const text = [
      'listen:', //                         1
      '  port: -1', //                      2
      'upstream:', //                       3
      '  url: ftp://app', //                4
      '  timout: 5s', //                    5
      'inflight:', //                       6
      '  max: 2.5', //                      7  (a non-integer makes zod skip its refinements)
      '  queue: { size: 10, timeout: 1x }', // 8
      'routes:', //                         9
      '  - name: uploads', //               10
      '    match: { regex: "[" }', //       11
      '  - name: uploads', //               12
      '    bypass: true', //                13
      '    inflight: { max: 1 }', //        14
      'reject: { status: 600 }', //         15
    ].join('\n');
    expect(lines(text)).toEqual([
      '2:9 listen.port: must be >= 0, got -1',
      '4:8 upstream.url: must be http://HOST:PORT or unix:/path/to.sock, got "ftp://app"',
      '5:3 upstream.timout: unknown key "timout" (did you mean "timeout"?)',
      '7:8 inflight.max: must be a whole number, got 2.5',
      '8:31 inflight.queue.timeout: must be a duration such as 500ms, 2s or 1m, or whole milliseconds, got "1x"',
      '11:21 routes[0].match.regex: must be a valid regular expression, got "["',
      '12:11 routes[1].name: duplicate route name "uploads" (also routes[0])',
      '13:13 routes[1].bypass: a bypass route cannot have inflight limits',
      '15:19 reject.status: must be an HTTP error status (400-599), got 600',
    ]);
  });

  it('the error message lists them all, compiler style', () => {
    try {
      parseConfigText('listen: { port: -1 }\ndryRun: 1\n', 'conf/p.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.code).toBe('CONFIG_INVALID');
      expect(e.source).toBe('conf/p.yaml');
      expect(e.message).toBe(
        'conf/p.yaml: 2 problem(s)\n' +
          '  conf/p.yaml:1:17: listen.port: must be >= 0, got -1\n' +
          '  conf/p.yaml:2:9: dryRun: must be true or false, got 1',
      );
    }
  });
});

describe('JSON input', () => {
  it('loads the same as YAML', () => {
    const json = JSON.stringify({ inflight: { max: 7, queue: { size: 2, timeout: '250ms' } }, routes: [{ name: 'a', match: { exact: '/a' } }] }, null, 2);
    const { config } = parseConfigText(json, 'x.json');
    expect(config.inflight).toEqual({ max: 7, perClient: 0, queue: { size: 2, timeout: 250 } });
    expect(config.routes[0]?.match).toEqual({ exact: '/a' });
  });

  it('a problem in JSON has its line and column', () => {
    const json = '{\n  "inflight": {\n    "max": -3\n  },\n  "typo": true\n}\n';
    expect(lines(json)).toEqual(['3:12 inflight.max: must be >= 0, got -3', '5:3 typo: unknown key "typo"']);
  });

  it('a JSON syntax error has its line and column', () => {
    const [p] = problemsOf('{\n  "inflight": { "max": 3 \n  "dryRun": true\n}\n');
    expect(p?.message).toMatch(/^YAML syntax error: /);
    expect(p?.line).toBeGreaterThanOrEqual(2);
    expect(p?.column).toBeGreaterThanOrEqual(1);
  });
});

describe('the result', () => {
  it('is deeply frozen', () => {
    const { config } = parseConfigText('routes:\n  - name: a\n    match: { methods: [GET] }\n    inflight: { max: 1 }\n', 'x');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.listen)).toBe(true);
    expect(Object.isFrozen(config.routes)).toBe(true);
    expect(Object.isFrozen(config.routes[0])).toBe(true);
    expect(Object.isFrozen(config.routes[0]?.match.methods)).toBe(true);
    expect(Object.isFrozen(config.routes[0]?.inflight?.queue)).toBe(true);
    expect(() => {
      (config.inflight as { max: number }).max = 1;
    }).toThrow(TypeError);
  });

  it('version: 12 hex digits of FNV-1a 64, stable, changes with the content', () => {
    expect(configVersion('')).toBe('cbf29ce48422'); // FNV-1a 64 offset basis
    expect(configVersion('a')).toBe('af63dc4c8601'); // published test vector af63dc4c8601ec8c
    const text = readRepoFile('examples/portcullis.yaml');
    const v = parseConfigText(text, 'a').version;
    expect(v).toMatch(/^[0-9a-f]{12}$/);
    expect(parseConfigText(text, 'b').version).toBe(v);
    expect(parseConfigText(`${text}\n# edited\n`, 'a').version).not.toBe(v);
    expect(configVersion('dryRun: true')).not.toBe(configVersion('dryRun: false'));
    expect(configVersion('é')).toBe(configVersion('\u00e9'));
  });

  it('restartOnlyChanges names the restart-only fields that differ', () => {
    const a = parseConfigText('listen: { port: 8080 }\ninflight: { max: 1 }\n', 'a').config;
    expect(restartOnlyChanges(a, parseConfigText('listen: { port: 8080 }\ninflight: { max: 2 }\n', 'b').config)).toEqual([]);
    expect(restartOnlyChanges(a, parseConfigText('listen: { port: 8081 }\n', 'b').config)).toEqual(['listen']);
    expect(
      restartOnlyChanges(a, parseConfigText('admin: { host: 127.0.0.1 }\nupstream: { timeout: 5s }\n', 'b').config),
    ).toEqual(['admin', 'upstream']);
    // Same value, spelled differently, is no change.
    expect(restartOnlyChanges(a, parseConfigText('upstream: { timeout: 60000, url: "http://127.0.0.1:3000" }\n', 'b').config)).toEqual([]);
  });
});
