/**
 * issue 10: the client-key seam. CIDR matching (checked against node's own net.BlockList),
 * IPv6 grouping by prefix, X-Forwarded-For with realip semantics, and keys from a header.
 */
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CidrSet, formatIpv6, groupAddress, parseCidr } from '../../src/core/cidr.ts';
import { ClientIdentity } from '../../src/core/client-key.ts';
import type { Config } from '../../src/core/config-schema.ts';

type ClientKeyConfig = Config['clientKey'];
const config = (c: Partial<ClientKeyConfig>): ClientKeyConfig => ({ from: 'socket', trustedProxies: [], ipv6Prefix: 64, ...c }) as ClientKeyConfig;

const mapped = new net.BlockList();
mapped.addSubnet('::ffff:0:0', 96, 'ipv6');
/** IPv6 addresses that are not IPv4-mapped (those count as IPv4 here, as node's socket addresses do). */
const ipv6 = fc.ipV6().filter((a) => !mapped.check(a, 'ipv6'));
/** Eight 16-bit words, and their uncompressed spelling (no parser of ours involved). */
const words = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
const full = (w: readonly number[]) => w.map((x) => x.toString(16)).join(':');

describe('issue 10: CIDR matching', () => {
  it('IPv4: matches exactly what net.BlockList matches', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (base, bits, addr) => {
        const oracle = new net.BlockList();
        oracle.addSubnet(base, bits, 'ipv4');
        const set = new CidrSet([`${base}/${bits}`]);
        expect(set.has(addr)).toBe(oracle.check(addr, 'ipv4'));
        expect(set.has(base)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('IPv6: matches exactly what net.BlockList matches', () => {
    fc.assert(
      fc.property(ipv6, fc.integer({ min: 0, max: 128 }), ipv6, (base, bits, addr) => {
        const oracle = new net.BlockList();
        oracle.addSubnet(base, bits, 'ipv6');
        const set = new CidrSet([`${base}/${bits}`]);
        expect(set.has(addr)).toBe(oracle.check(addr, 'ipv6'));
        expect(set.has(base)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('an address near the base: a flipped bit inside the prefix does not match, one after it does', () => {
    fc.assert(
      fc.property(words, fc.integer({ min: 1, max: 128 }), fc.integer({ min: 0, max: 127 }), (w, bits, flip) => {
        const other = w.slice();
        other[flip >> 4] = (other[flip >> 4] as number) ^ (0x8000 >>> (flip & 15));
        const [base, addr] = [full(w), full(other)];
        if (mapped.check(base, 'ipv6') || mapped.check(addr, 'ipv6')) return;
        const oracle = new net.BlockList();
        oracle.addSubnet(base, bits, 'ipv6');
        expect(new CidrSet([`${base}/${bits}`]).has(addr)).toBe(flip >= bits);
        expect(oracle.check(addr, 'ipv6')).toBe(flip >= bits);
      }),
      { numRuns: 2000 },
    );
  });

  it('families stay apart; an IPv4-mapped address is its IPv4 address; a bare address is a /32 or /128', () => {
    const set = new CidrSet(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']);
    expect(set.has('10.1.2.3')).toBe(true);
    expect(set.has('::ffff:10.1.2.3')).toBe(true);
    expect(set.has('11.0.0.1')).toBe(false);
    expect(set.has('2001:db8:ffff::1')).toBe(true);
    expect(set.has('2001:db9::1')).toBe(false);
    expect(set.has('192.0.2.1')).toBe(true);
    expect(set.has('192.0.2.2')).toBe(false);
    expect(new CidrSet(['::/0']).has('10.0.0.1')).toBe(false);
    expect(new CidrSet(['0.0.0.0/0']).has('::1')).toBe(false);
    expect(new CidrSet(['fe80::/10']).has('fe80::1%eth0')).toBe(true);
    for (const junk of ['', 'unknown', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1::2::3', 'g::1', '1.2.3.4/8']) expect(set.has(junk), junk).toBe(false);
  });

  it('parseCidr accepts CIDRs and bare addresses of both families and refuses the rest', () => {
    for (const ok of ['10.0.0.0/8', '127.0.0.1/32', '0.0.0.0/0', '192.0.2.1', '::1', '::/0', '2001:db8::/32', 'fe80::1/128', '::ffff:10.0.0.0/104']) {
      expect(parseCidr(ok), ok).toBeDefined();
    }
    for (const bad of ['', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/08', 'localhost', '10.0.0.0/8/8', '1.2.3.256/8', ' 10.0.0.0/8']) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });
});

describe('issue 10: IPv6 grouping by prefix', () => {
  it('two addresses get the same key exactly when they share the prefix (net.BlockList as the judge)', () => {
    fc.assert(
      fc.property(ipv6, ipv6, fc.integer({ min: 0, max: 128 }), (a, b, prefix) => {
        const ka = groupAddress(a, prefix);
        const oracle = new net.BlockList();
        oracle.addSubnet(a, prefix, 'ipv6');
        expect(ka === groupAddress(b, prefix)).toBe(oracle.check(b, 'ipv6'));
        // The key is the network, canonical (RFC 5952), and names its prefix.
        if (prefix < 128) expect(ka).toMatch(new RegExp(`/${prefix}$`));
        const net0 = ka.split('/')[0] as string;
        expect(oracle.check(net0, 'ipv6')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('an address that differs only after the prefix shares the key, one that differs inside it does not', () => {
    fc.assert(
      fc.property(words, fc.integer({ min: 0, max: 128 }), fc.integer({ min: 0, max: 127 }), (w, prefix, flip) => {
        const other = w.slice();
        other[flip >> 4] = (other[flip >> 4] as number) ^ (0x8000 >>> (flip & 15));
        if (mapped.check(full(w), 'ipv6') || mapped.check(full(other), 'ipv6')) return;
        expect(groupAddress(full(w), prefix) === groupAddress(full(other), prefix)).toBe(flip >= prefix);
      }),
      { numRuns: 2000 },
    );
  });

  it('keys are canonical: however the address is spelled, one key', () => {
    expect(groupAddress('2001:DB8:0:0:1:2:3:4', 64)).toBe('2001:db8::/64');
    expect(groupAddress('2001:0db8:0000:0000:ffff::1', 64)).toBe('2001:db8::/64');
    expect(groupAddress('2001:db8:1:2:3:4:5:6', 128)).toBe('2001:db8:1:2:3:4:5:6');
    expect(groupAddress('2001:db8:0:0:1:0:0:1', 128)).toBe('2001:db8::1:0:0:1');
    expect(groupAddress('::1', 64)).toBe('::/64');
    expect(groupAddress('fe80::1%eth0', 64)).toBe('fe80::/64');
    // IPv4, IPv4-mapped and what is no address at all are not grouped.
    expect(groupAddress('192.0.2.7', 64)).toBe('192.0.2.7');
    expect(groupAddress('::ffff:192.0.2.7', 64)).toBe('192.0.2.7');
    expect(groupAddress('unknown', 64)).toBe('unknown');
  });

  it('formatIpv6 follows RFC 5952: the longest run of zeros (first of equals, at least two) becomes ::', () => {
    const f = (w: number[]) => formatIpv6(Uint16Array.from(w));
    expect(f([0, 0, 0, 0, 0, 0, 0, 0])).toBe('::');
    expect(f([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])).toBe('2001:db8::1:0:0:1');
    expect(f([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])).toBe('2001:db8:0:1:1:1:1:1');
    expect(f([1, 0, 0, 2, 0, 0, 0, 3])).toBe('1:0:0:2::3');
    expect(f([0, 0, 0, 0, 0, 0, 0, 1])).toBe('::1');
  });
});

describe('issue 10: ClientIdentity', () => {
  const raw = (...pairs: [string, string][]) => pairs.flat();

  it('from socket (the default): the peer address, IPv6 grouped, headers ignored', () => {
    const id = new ClientIdentity(config({}));
    const peer = '127.0.0.1';
    expect(id.trusts(peer)).toBe(false);
    const headers = raw(['X-Forwarded-For', '203.0.113.7']);
    expect(id.address(peer, false, headers)).toBe(peer);
    expect(id.key(peer, headers)).toBe(peer);
    expect(id.key('2001:db8:1:2:aaaa::1', [])).toBe('2001:db8:1:2::/64');
    expect(id.socketKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(id.socketKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(id.socketKey(undefined)).toBe('unknown');
  });

  it('from forwarded-for: the rightmost address not in trustedProxies, only when the peer is trusted', () => {
    const id = new ClientIdentity(config({ from: 'forwarded-for', trustedProxies: ['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8'] }));
    const at = (peer: string, ...xff: string[]) => {
      const headers = raw(...xff.map((v): [string, string] => ['X-Forwarded-For', v]));
      return id.address(peer, id.trusts(peer), headers);
    };
    expect(at('127.0.0.1', '198.51.100.1')).toBe('198.51.100.1');
    expect(at('127.0.0.1', '192.0.2.1, 198.51.100.1, 10.0.0.2')).toBe('198.51.100.1');
    // Several header lines are one list, in order.
    expect(at('127.0.0.1', '192.0.2.1', '198.51.100.1,10.0.0.2')).toBe('198.51.100.1');
    // Spoofed entries to the left of the first untrusted one do not matter.
    expect(at('127.0.0.1', '10.0.0.9, 198.51.100.1')).toBe('198.51.100.1');
    // Every entry trusted: the leftmost (nginx real_ip_recursive).
    expect(at('127.0.0.1', '10.0.0.3, 10.0.0.2')).toBe('10.0.0.3');
    // Ports and brackets, IPv6.
    expect(at('127.0.0.1', '198.51.100.1:4711')).toBe('198.51.100.1');
    expect(at('127.0.0.1', '[2001:db8::1]:443, fd00::5')).toBe('2001:db8::1');
    expect(at('127.0.0.1', '2001:db8::2')).toBe('2001:db8::2');
    // Garbage where the address should be, or nothing: the peer.
    expect(at('127.0.0.1', 'unknown')).toBe('127.0.0.1');
    expect(at('127.0.0.1', '')).toBe('127.0.0.1');
    expect(at('127.0.0.1')).toBe('127.0.0.1');
    // An untrusted peer is its own client whatever it says.
    expect(at('192.0.2.50', '198.51.100.1')).toBe('192.0.2.50');
    // The key is the address, IPv6 grouped.
    expect(id.key('2001:db8:5:6:7::1', [])).toBe('2001:db8:5:6::/64');
  });

  it('from header: the named header (any spelling of its name), else the address', () => {
    const id = new ClientIdentity(config({ from: 'header', header: 'X-Tenant' }));
    expect(id.key('127.0.0.1', raw(['x-tenant', 'acme']))).toBe('acme');
    expect(id.key('127.0.0.1', raw(['Host', 'a'], ['X-TENANT', 'globex'], ['x-tenant', 'second']))).toBe('globex');
    expect(id.key('127.0.0.1', raw(['Host', 'a']))).toBe('127.0.0.1');
    expect(id.key('127.0.0.1', raw(['x-tenant', '']))).toBe('127.0.0.1');
    expect(id.key('2001:db8::1', [])).toBe('2001:db8::/64');
  });

  it('update applies a new config in place', () => {
    const id = new ClientIdentity(config({}));
    expect(id.trusts('127.0.0.1')).toBe(false);
    id.update(config({ trustedProxies: ['127.0.0.0/8'], ipv6Prefix: 48 }));
    expect(id.trusts('127.0.0.1')).toBe(true);
    expect(id.trusts('::ffff:127.0.0.1')).toBe(true);
    expect(id.key('2001:db8:1:2::1', [])).toBe('2001:db8:1::/48');
  });
});
