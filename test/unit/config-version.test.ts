/**
 * issue 10: the config version hash. It runs on every poll over the whole file, so it must be
 * cheap (no BigInt per byte); it must also stay the same function, FNV-1a 64 (top 48 bits), so
 * versions seen in logs, /config and spans keep their meaning across the change.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configVersion } from '../../src/core/config-version.ts';

/** The former BigInt implementation, kept here as the reference. */
function reference(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(text)) {
    hash ^= BigInt(b);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0').slice(0, 12);
}

describe('issue 10: configVersion', () => {
  it('is FNV-1a 64 (top 48 bits): the published vectors', () => {
    expect(configVersion('')).toBe('cbf29ce48422');
    expect(configVersion('a')).toBe('af63dc4c8601'); // af63dc4c8601ec8c
    expect(configVersion('foobar')).toBe('85944171f739'); // 85944171f73967e8
  });

  it('equals the BigInt reference for any text (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => {
      expect(configVersion(s)).toBe(reference(s));
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => {
      expect(configVersion(s)).toBe(reference(s));
    }), { numRuns: 500 });
  });

  it('is stable, 12 hex digits, and distinct for distinct texts', () => {
    const big = 'routes:\n' + Array.from({ length: 20_000 }, (_, i) => `  - { name: r${i}, match: { prefix: /p${i} } }\n`).join('');
    expect(big.length).toBeGreaterThan(500_000);
    const v = configVersion(big);
    expect(v).toMatch(/^[0-9a-f]{12}$/);
    expect(configVersion(big)).toBe(v);
    expect(v).toBe(reference(big));
    // One byte changed anywhere changes the version.
    expect(configVersion(`${big.slice(0, 1000)}X${big.slice(1001)}`)).not.toBe(v);
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(configVersion(`inflight: { max: ${i} }\n`));
    expect(seen.size).toBe(20_000);
  });
});
