import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config-load.ts';
import { applyOverrides, resolveSettings } from '../../src/core/config-overrides.ts';
import { lines } from '../helpers/config-problems.ts';

describe('overrides: flags > environment > file > defaults', () => {
  const file = 'listen: { port: 1111 }\nadmin: { port: 2222 }\nupstream: { url: "http://127.0.0.1:4000" }\n';

  it('resolveSettings: a flag beats the environment, the environment beats nothing', () => {
    const env = { PORTCULLIS_PORT: '7000', PORTCULLIS_UPSTREAM: 'unix:/env.sock', PORTCULLIS_CONFIG: '/etc/p.yaml', PORTCULLIS_ADMIN_PORT: '' };
    expect(resolveSettings({ port: '6000' }, env)).toEqual({
      configPath: '/etc/p.yaml',
      overrides: { port: { value: '6000', from: '--port' }, upstream: { value: 'unix:/env.sock', from: 'PORTCULLIS_UPSTREAM' } },
    });
    expect(resolveSettings({ config: 'local.yaml', adminPort: 9 }, {})).toEqual({
      configPath: 'local.yaml',
      overrides: { adminPort: { value: 9, from: '--admin-port' } },
    });
  });

  it('an override beats the file, the file beats the defaults', () => {
    const { overrides } = resolveSettings({ port: '6000' }, { PORTCULLIS_PORT: '7000', PORTCULLIS_UPSTREAM: 'unix:/env.sock' });
    const { config } = loadConfig(file, 'p.yaml', overrides);
    expect(config.listen.port).toBe(6000);
    expect(config.upstream.url).toBe('unix:/env.sock');
    expect(config.admin.port).toBe(2222);
    expect(config.listen.host).toBe('0.0.0.0');
    expect(loadConfig(undefined, '(none)', overrides).config.listen).toEqual({ host: '0.0.0.0', port: 6000 });
  });

  it('a bad override is reported like a bad file value, naming where it came from', () => {
    expect(
      lines(file, {
        port: { value: 'eighty', from: '--port' },
        adminPort: { value: '99999', from: 'PORTCULLIS_ADMIN_PORT' },
        upstream: { value: 'https://x', from: '--upstream' },
      }),
    ).toEqual([
      '-:- listen.port (from --port): must be a port number, got "eighty"',
      '-:- admin.port (from PORTCULLIS_ADMIN_PORT): must be <= 65535, got 99999',
      '-:- upstream.url (from --upstream): must be http://HOST:PORT or unix:/path/to.sock, got "https://x"',
    ]);
  });

  it('applyOverrides copies, never modifies its input', () => {
    const raw = { listen: { host: '127.0.0.1', port: 1 } };
    const out = applyOverrides(raw, { port: { value: '2', from: '--port' } });
    expect(out).toEqual({ listen: { host: '127.0.0.1', port: 2 } });
    expect(raw).toEqual({ listen: { host: '127.0.0.1', port: 1 } });
    // A section written as something else than a mapping stays, to be reported as written.
    expect(applyOverrides({ listen: 5 }, { port: { value: 2, from: '--port' } })).toEqual({ listen: 5 });
  });
});
