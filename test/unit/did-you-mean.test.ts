import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../src/core/did-you-mean.ts';

describe('did you mean', () => {
  it('editDistance counts inserts, deletes, substitutions, and a neighbour swap as one edit', () => {
    expect(editDistance('port', 'port')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('abc', '')).toBe(3);
    expect(editDistance('prot', 'port')).toBe(1); // swap
    expect(editDistance('szie', 'size')).toBe(1); // swap
    expect(editDistance('bypas', 'bypass')).toBe(1); // insert
    expect(editDistance('timout', 'timeout')).toBe(1);
    expect(editDistance('host', 'port')).toBe(2);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('closest: the same letters ignoring case, "_" and "-" win outright', () => {
    expect(closest('max_sockets', ['maxSockets', 'timeout'])).toBe('maxSockets');
    expect(closest('MAX-SOCKETS', ['timeout', 'maxSockets'])).toBe('maxSockets');
  });

  it('closest: a small edit away (1 for keys of 4 letters or fewer, else 2), the nearest first', () => {
    expect(closest('prot', ['host', 'port'])).toBe('port');
    expect(closest('hots', ['host', 'port'])).toBe('host');
    expect(closest('pt', ['port'])).toBeUndefined(); // two edits for a short key
    expect(closest('timout', ['timeout', 'connectTimeout'])).toBe('timeout');
    expect(closest('tmot', ['timeout'])).toBeUndefined();
    expect(closest('inflght', ['inflight', 'upstream'])).toBe('inflight');
    expect(closest('inflite', ['inflight', 'upstream'])).toBeUndefined(); // three edits
    expect(closest('upstraem', ['inflight', 'upstream'])).toBe('upstream');
    // Ties go to the first known key.
    expect(closest('bat', ['cat', 'hat'])).toBe('cat');
  });

  it('closest: nothing near, or nothing known, gives no guess', () => {
    expect(closest('nonsense', ['listen', 'admin', 'upstream'])).toBeUndefined();
    expect(closest('port', [])).toBeUndefined();
  });
});
