import { describe, expect, it } from 'vitest';
import { formatPath } from '../../src/core/config-path.ts';

describe('config paths', () => {
  it('formatPath spells paths the DESIGN way', () => {
    expect(formatPath(['routes', 2, 'inflight', 'max'])).toBe('routes[2].inflight.max');
    expect(formatPath(['routes', 0, 'match', 'headers', 'x-id'])).toBe('routes[0].match.headers["x-id"]');
    expect(formatPath([])).toBe('');
  });
});
