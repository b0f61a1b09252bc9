import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { capacity, checkStaticAddress, defaultGateway, nextCandidates, parsePool } from '../../../runtime/ipam/allocator.js';

const take = (it: Iterable<string>, n: number): string[] => {
  const out: string[] = [];
  for (const x of it) {
    if (out.length >= n) break;
    out.push(x);
  }
  return out;
};

describe('defaultGateway', () => {
  it('is the first usable address', () => {
    expect(defaultGateway('10.88.0.0/16')).toBe('10.88.0.1');
    expect(defaultGateway('fd00:88::/64')).toBe('fd00:88::1');
    expect(defaultGateway('192.168.7.252/30')).toBe('192.168.7.253');
  });
});

describe('parsePool', () => {
  it('defaults the gateway and the range to the usable addresses', () => {
    const p = parsePool({ subnet: '10.88.0.0/24' });
    expect(p).toMatchObject({ gateway: 0x0a580001n, first: 0x0a580001n, last: 0x0a5800fen });
    expect(capacity(p)).toBe(253n);
  });

  it('excludes network and broadcast for IPv4, only the anycast address for IPv6', () => {
    expect([...nextCandidates(parsePool({ subnet: '10.0.0.0/29' }))]).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect([...nextCandidates(parsePool({ subnet: 'fd00::/126' }))]).toEqual(['fd00::2', 'fd00::3']);
  });

  it('accepts a /30 (gateway plus one container) and refuses /31 and /32', () => {
    const p = parsePool({ subnet: '10.0.0.0/30' });
    expect([...nextCandidates(p)]).toEqual(['10.0.0.2']);
    expect(() => parsePool({ subnet: '10.0.0.0/31' }, 'network p2p')).toThrow('subnet 10.0.0.0/31 of network p2p is too small: IPv4 subnets need a prefix of /30 or shorter to hold a gateway and a container');
    expect(() => parsePool({ subnet: '10.0.0.1/32' })).toThrow(UserError);
  });

  it('accepts a /126 and refuses /127 and /128 for IPv6', () => {
    expect(capacity(parsePool({ subnet: 'fd00::/126' }))).toBe(2n);
    expect(() => parsePool({ subnet: 'fd00::/127' })).toThrow('/126 or shorter');
    expect(() => parsePool({ subnet: 'fd00::1/128' })).toThrow(UserError);
  });

  it.each([
    [{ subnet: '10.88.0.0/16', gateway: '10.89.0.1' }, 'gateway 10.89.0.1 of network web is not in subnet 10.88.0.0/16'],
    [{ subnet: '10.88.0.0/16', gateway: '10.88.0.0' }, 'gateway 10.88.0.0 of network web is the network address of subnet 10.88.0.0/16'],
    [{ subnet: '10.88.0.0/16', gateway: '10.88.255.255' }, 'gateway 10.88.255.255 of network web is the broadcast address of subnet 10.88.0.0/16'],
    [{ subnet: '10.88.0.0/16', gateway: 'fd00::1' }, 'gateway fd00::1 of network web is not in subnet 10.88.0.0/16 (it is IPv6, the subnet IPv4)'],
    [{ subnet: 'fd00::/64', gateway: 'fd00::' }, 'gateway fd00:: of network web is the network address of subnet fd00::/64'],
    [{ subnet: '10.88.0.0/16', rangeStart: '10.88.1.0', rangeEnd: '10.88.0.9' }, 'range of network web is empty: start 10.88.1.0 is after end 10.88.0.9'],
    [{ subnet: '10.88.0.0/16', rangeEnd: '10.89.0.9' }, 'range end 10.89.0.9 of network web is not in subnet 10.88.0.0/16'],
    [{ subnet: '10.88.0.0/16', rangeStart: '10.88.0.1', rangeEnd: '10.88.0.1' }, 'range of network web holds only its gateway 10.88.0.1'],
    [{ subnet: '10.88.0.0/16', gateway: '10.1' }, 'invalid gateway of network web "10.1"'],
  ])('refuses %j', (spec, message) => {
    expect(() => parsePool(spec, 'network web')).toThrow(message);
  });

  it('allows a gateway outside the dynamic range', () => {
    const p = parsePool({ subnet: '10.88.0.0/24', gateway: '10.88.0.254', rangeStart: '10.88.0.10', rangeEnd: '10.88.0.12' });
    expect([...nextCandidates(p)]).toEqual(['10.88.0.10', '10.88.0.11', '10.88.0.12']);
    expect(capacity(p)).toBe(3n);
  });
});

describe('nextCandidates', () => {
  const pool = parsePool({ subnet: '10.0.0.0/29' }); // gateway .1, range .1-.6

  it('starts after the hint, wraps once, and ends with the hint itself', () => {
    expect([...nextCandidates(pool, '10.0.0.4')]).toEqual(['10.0.0.5', '10.0.0.6', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('wraps to the start when the hint is the last address', () => {
    expect([...nextCandidates(pool, '10.0.0.6')]).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  });

  it('ignores a hint outside the range, of the other family, or unparsable', () => {
    const all = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'];
    for (const hint of ['10.0.0.7', '10.9.0.3', 'fd00::3', 'garbage', '']) expect([...nextCandidates(pool, hint)]).toEqual(all);
  });

  it('skips a gateway in the middle of the range', () => {
    const p = parsePool({ subnet: '10.0.0.0/29', gateway: '10.0.0.4' });
    expect([...nextCandidates(p, '10.0.0.2')]).toEqual(['10.0.0.3', '10.0.0.5', '10.0.0.6', '10.0.0.1', '10.0.0.2']);
  });

  it('skips reserved addresses', () => {
    expect([...nextCandidates(pool, undefined, new Set(['10.0.0.3', '10.0.0.5']))]).toEqual(['10.0.0.2', '10.0.0.4', '10.0.0.6']);
  });

  it('is lazy on a huge IPv6 subnet and wraps at its end', () => {
    const v6 = parsePool({ subnet: 'fd00:88::/64' });
    expect(capacity(v6)).toBe((1n << 64n) - 2n);
    expect(take(nextCandidates(v6, 'fd00:88::ffff:ffff:ffff:fffe'), 3)).toEqual(['fd00:88::ffff:ffff:ffff:ffff', 'fd00:88::2', 'fd00:88::3']);
    expect(take(nextCandidates(v6, 'fd00:88::1:0:0:41'), 2)).toEqual(['fd00:88::1:0:0:42', 'fd00:88::1:0:0:43']);
  });

  it('visits each address of a /22 exactly once from any hint', () => {
    const p = parsePool({ subnet: '10.1.0.0/22' });
    const seen = [...nextCandidates(p, '10.1.2.77')];
    expect(seen).toHaveLength(1021);
    expect(new Set(seen).size).toBe(1021);
    expect(seen[0]).toBe('10.1.2.78');
    expect(seen.at(-1)).toBe('10.1.2.77');
    expect(seen).not.toContain('10.1.0.1');
  });
});

describe('checkStaticAddress', () => {
  const pool = parsePool({ subnet: '10.88.0.0/16', rangeStart: '10.88.1.0', rangeEnd: '10.88.1.255' });

  it('accepts any usable address of the subnet, also outside the dynamic range, canonicalized', () => {
    expect(checkStaticAddress(pool, '10.88.0.5', 'network web')).toBe('10.88.0.5');
    expect(checkStaticAddress(parsePool({ subnet: 'fd00::/64' }), 'FD00::0:5')).toBe('fd00::5');
  });

  it.each([
    ['10.89.0.5', 'address 10.89.0.5 requested on network web is not in subnet 10.88.0.0/16'],
    ['10.88.0.0', 'address 10.88.0.0 requested on network web is the network address of subnet 10.88.0.0/16'],
    ['10.88.255.255', 'address 10.88.255.255 requested on network web is the broadcast address of subnet 10.88.0.0/16'],
    ['10.88.0.1', 'address 10.88.0.1 requested on network web is its gateway'],
    ['fd00::5', 'address fd00::5 requested on network web is not in subnet 10.88.0.0/16 (it is IPv6, the subnet IPv4)'],
    ['10.88.5', 'invalid static address for network web "10.88.5"'],
  ])('refuses %s', (ip, message) => {
    expect(() => checkStaticAddress(pool, ip, 'network web')).toThrow(message);
  });
});
