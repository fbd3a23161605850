import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/core/config-schema.ts';
import { compileRoutes, hostMatches } from '../../src/core/route-match.ts';
import type { RequestInfo } from '../../src/core/route-match.ts';

function matcher(routes: unknown[]) {
  return compileRoutes(configSchema.parse({ routes }).routes);
}

function req(over: Partial<RequestInfo> = {}): RequestInfo {
  return { method: 'GET', path: '/', host: 'example.com', headers: {}, client: '10.0.0.1', ...over };
}

describe('compileRoutes', () => {
  it('first match wins, -1 when nothing matches', () => {
    const m = matcher([
      { name: 'a', match: { prefix: '/api' } },
      { name: 'b', match: { prefix: '/api/v2' } },
    ]);
    expect(m(req({ path: '/api/v2/x' }))).toBe(0);
    expect(m(req({ path: '/other' }))).toBe(-1);
  });

  it('a route without match keys matches everything', () => {
    const m = matcher([{ name: 'x', match: { exact: '/x' } }, { name: 'all' }]);
    expect(m(req({ path: '/anything', method: 'DELETE', host: undefined }))).toBe(1);
    expect(m(req({ path: '/x' }))).toBe(0);
  });

  it('every key given must match', () => {
    const m = matcher([{ name: 'up', match: { prefix: '/upload', methods: ['POST', 'PUT'] } }]);
    expect(m(req({ path: '/upload/1', method: 'POST' }))).toBe(0);
    expect(m(req({ path: '/upload/1', method: 'GET' }))).toBe(-1);
    expect(m(req({ path: '/download', method: 'POST' }))).toBe(-1);
  });

  it('exact compares the whole path, prefix is a plain string prefix', () => {
    const m = matcher([
      { name: 'h', match: { exact: '/healthz' } },
      { name: 'p', match: { prefix: '/up' } },
    ]);
    expect(m(req({ path: '/healthz' }))).toBe(0);
    expect(m(req({ path: '/healthz/' }))).toBe(-1);
    expect(m(req({ path: '/uploads' }))).toBe(1);
  });

  it('regex searches the path (anchor it to match the whole path)', () => {
    const m = matcher([
      { name: 'anchored', match: { regex: '^/v[0-9]+/items$' } },
      { name: 'search', match: { regex: 'admin' } },
    ]);
    expect(m(req({ path: '/v12/items' }))).toBe(0);
    expect(m(req({ path: '/v12/items/3' }))).toBe(-1);
    expect(m(req({ path: '/x/admin/y' }))).toBe(1);
    // Stateless: the same path twice gives the same answer.
    expect(m(req({ path: '/x/admin/y' }))).toBe(1);
  });

  it('host: without port, case-insensitive, no host header never matches', () => {
    const m = matcher([{ name: 'h', match: { host: 'API.Example.com' } }]);
    expect(m(req({ host: 'api.example.com' }))).toBe(0);
    expect(m(req({ host: 'API.EXAMPLE.COM:8080' }))).toBe(0);
    expect(m(req({ host: 'api.example.com.' }))).toBe(0);
    expect(m(req({ host: 'xapi.example.com' }))).toBe(-1);
    expect(m(req({ host: 'api.example.co' }))).toBe(-1);
    expect(m(req({ host: undefined }))).toBe(-1);
  });

  it('host: *. matches any subdomain but not the domain itself', () => {
    const m = matcher([{ name: 'w', match: { host: '*.example.com' } }]);
    expect(m(req({ host: 'a.example.com' }))).toBe(0);
    expect(m(req({ host: 'a.B.Example.COM:443' }))).toBe(0);
    expect(m(req({ host: 'example.com' }))).toBe(-1);
    expect(m(req({ host: 'badexample.com' }))).toBe(-1);
    expect(hostMatches('.example.com', '.example.com', true)).toBe(false);
  });

  it('host: IPv6 literals keep their colons', () => {
    expect(hostMatches('[::1]:8080', '[::1]', false)).toBe(true);
    expect(hostMatches('[::1]', '[::1]', false)).toBe(true);
    expect(hostMatches('[::2]:80', '[::1]', false)).toBe(false);
  });

  it('headers: case-insensitive names, exact values, repeated headers', () => {
    const m = matcher([{ name: 'h', match: { headers: { 'X-Tenant': 'gold', accept: 'application/json' } } }]);
    expect(m(req({ headers: { 'x-tenant': 'gold', accept: 'application/json' } }))).toBe(0);
    expect(m(req({ headers: { 'x-tenant': 'Gold', accept: 'application/json' } }))).toBe(-1);
    expect(m(req({ headers: { 'x-tenant': 'gold' } }))).toBe(-1);
    expect(m(req({ headers: { 'x-tenant': ['silver', 'gold'], accept: 'application/json' } }))).toBe(0);
  });
});
