import { describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { UserError } from '../../../config/errors.js';
import {
  addressFromBytes, broadcastOf, canonicalAddress, contains, formatAddress, hostIpsOverlap, overlaps, parseAddress, parseAddressOf, parseInterfaceAddress, parseSubnet, subnetOf, subnetSize,
} from '../../../config/address.js';

describe('parseAddress', () => {
  it('parses IPv4 and IPv6 into canonical text', () => {
    expect(canonicalAddress('10.88.0.5')).toBe('10.88.0.5');
    expect(canonicalAddress('FD00:0:0::5')).toBe('fd00::5');
    expect(canonicalAddress('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(parseAddress('0.0.0.1')).toEqual({ family: 4, value: 1n });
    expect(parseAddress('::1')).toEqual({ family: 6, value: 1n });
  });

  it.each(['10.1', '0x0a.0.0.1', '010.0.0.1', ' 10.0.0.1', '10.0.0.256', 'fe80::1%eth0', '', '1::2::3', 'web'])('refuses %j', (text) => {
    expect(() => parseAddress(text, 'gateway of network web')).toThrow(UserError);
  });

  it('names what it was parsing', () => {
    expect(() => parseAddress('10.1', 'gateway of network web')).toThrow('invalid gateway of network web "10.1": expected an IPv4 address like 10.88.0.5 or an IPv6 address like fd00::5');
  });
});

describe('parseSubnet', () => {
  it('parses and canonicalizes', () => {
    expect(parseSubnet('10.88.0.0/16')).toEqual({ family: 4, network: 0x0a580000n, prefixLength: 16, cidr: '10.88.0.0/16' });
    expect(parseSubnet('FD00:0:0::/64').cidr).toBe('fd00::/64');
    expect(subnetSize(parseSubnet('fd00::/64'))).toBe(1n << 64n);
    expect(subnetSize(parseSubnet('0.0.0.0/0'))).toBe(1n << 32n);
  });

  it('refuses host bits and suggests the network', () => {
    expect(() => parseSubnet('10.88.0.5/16')).toThrow('invalid subnet "10.88.0.5/16": host bits are set; did you mean 10.88.0.0/16?');
    expect(() => parseSubnet('fd00::1/64')).toThrow('did you mean fd00::/64?');
  });

  it.each(['10.88.0.0', '10.88.0.0/33', '10.88.0.0/016', '10.88.0.0/', 'fd00::/129', '10.1/8', '/8', '10.88.0.0/16/1', 'x/8'])('refuses %j', (text) => {
    expect(() => parseSubnet(text)).toThrow(UserError);
  });
});

describe('contains', () => {
  it('checks membership at the boundaries', () => {
    expect(contains('10.88.0.0/16', '10.88.0.0')).toBe(true);
    expect(contains('10.88.0.0/16', '10.88.255.255')).toBe(true);
    expect(contains('10.88.0.0/16', '10.89.0.0')).toBe(false);
    expect(contains('10.88.0.0/16', '10.87.255.255')).toBe(false);
    expect(contains('fd00::/64', 'fd00::ffff:ffff:ffff:ffff')).toBe(true);
    expect(contains('fd00::/64', 'fd00:0:0:1::')).toBe(false);
  });

  it('never mixes families', () => {
    expect(contains('0.0.0.0/0', '::1')).toBe(false);
    expect(contains('::/0', '10.0.0.1')).toBe(false);
    expect(contains('::ffff:0:0/96', '10.0.0.1')).toBe(false);
  });
});

describe('overlaps', () => {
  it.each([
    ['10.0.0.0/8', '10.88.0.0/16', true],
    ['10.88.0.0/16', '10.0.0.0/8', true],
    ['10.88.0.0/16', '10.88.0.0/16', true],
    ['10.88.0.0/16', '10.89.0.0/16', false],
    ['10.88.0.0/25', '10.88.0.128/25', false],
    ['10.88.0.0/24', '10.88.0.128/25', true],
    ['0.0.0.0/0', '192.168.1.0/24', true],
    ['fd00::/48', 'fd00:0:0:5::/64', true],
    ['fd00::/64', 'fd00:0:0:1::/64', false],
    ['10.0.0.0/8', '::/0', false],
  ])('%s vs %s → %s', (a, b, expected) => {
    expect(overlaps(a, b)).toBe(expected);
  });
});

describe('one canonical form', () => {
  it('writes an IPv4-mapped IPv6 address as the IPv4 address it is', () => {
    expect(canonicalAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalAddress('::FFFF:a00:1')).toBe('10.0.0.1');
    expect(() => parseAddressOf(6, '::ffff:10.0.0.1', 'annotation io.tsrun.ip6')).toThrow('annotation io.tsrun.ip6: not an IPv6 address');
    expect(formatAddress(parseAddressOf(4, '::ffff:10.0.0.1', 'x'))).toBe('10.0.0.1');
  });

  it('keeps ::ffff:0:0/96 the IPv6 prefix it is', () => {
    expect(parseSubnet('::ffff:0:0/96').cidr).toBe('::ffff:0:0/96');
  });
});

describe('interface addresses', () => {
  it('allow host bits and give a bare address a host prefix', () => {
    const ia = parseInterfaceAddress('10.1.2.3/23');
    expect(ia.prefixLength).toBe(23);
    expect(subnetOf(ia).cidr).toBe('10.1.2.0/23');
    expect(formatAddress(broadcastOf(ia))).toBe('10.1.3.255');
    expect(parseInterfaceAddress('fd00::2').prefixLength).toBe(128);
    expect(subnetOf(parseInterfaceAddress('fd00:1:2:3::9/60')).cidr).toBe('fd00:1:2::/60');
  });

  it.each(['10.1/8', '10.0.0.1/33', 'fd00::/129', '1.2.3.4/x', 'fd00::1/', '10.0.0.1/08'])('refuses %j', (text) => {
    expect(() => parseInterfaceAddress(text)).toThrow(UserError);
  });
});

describe('the wildcard rule of published ports', () => {
  it.each([
    [undefined, '10.0.0.1', true],
    [undefined, '::1', true],
    ['0.0.0.0', '10.0.0.1', true],
    ['0.0.0.0', '::1', false],
    ['::', 'fd00::1', true],
    ['::', '0.0.0.0', false],
    ['10.0.0.1', '10.0.0.2', false],
    ['10.0.0.1', '10.0.0.1', true],
  ])('%s and %s overlap: %s', (a, b, expected) => {
    expect(hostIpsOverlap(a, b)).toBe(expected);
    expect(hostIpsOverlap(b, a)).toBe(expected);
  });
});

// IPv4 is parsed, and network and broadcast addresses are computed, without ipaddr.js (whose first
// IPv4 parse in a cold process compiled its regular expressions): the same answers as ipaddr.js.
describe('the IPv4 parser and the masks agree with ipaddr.js', () => {
  const ipaddr = createRequire(import.meta.url)('ipaddr.js') as typeof import('ipaddr.js');
  const FOUR_PART = /^(0|[1-9]\d*)(\.(0|[1-9]\d*)){3}$/;
  const valueOf = (ip: { toByteArray(): number[] }) => ip.toByteArray().reduce((v, b) => (v << 8n) | BigInt(b), 0n);
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);

  it.each(['0.0.0.0', '255.255.255.255', '10.88.0.5', '1.2.3.4', '256.1.1.1', '1.2.3.256', '1.2.3.2555', '99999999999999999999.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.', '.1.2.3', '01.2.3.4', '1.2.3.04', '1.2.3.4 ', '+1.2.3.4', '1.2.3.-4', '1e2.2.3.4', '١.2.3.4'])('%j', (text) => {
    const old = FOUR_PART.test(text) && ipaddr.IPv4.isValid(text) ? valueOf(ipaddr.IPv4.parse(text)) : undefined;
    const got = (() => {
      try {
        return parseAddress(text);
      } catch {
        return undefined;
      }
    })();
    expect(got === undefined ? undefined : got.value).toBe(old);
    if (got) expect(got.family).toBe(4);
  });

  it('IPv6 is printed as ipaddr.js prints it (RFC 5952), zero runs of every length and place', () => {
    const cases: number[][] = [[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0], [0xfe80, 0, 0, 0, 0x200, 0x5eff, 0xfe00, 0x5301], [1, 0, 1, 0, 1, 0, 1, 0], [1, 0, 0, 1, 0, 0, 1, 1], [1, 0, 0, 1, 0, 0, 0, 1], [0, 0, 1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]];
    for (let i = 0; i < 3000; i++) cases.push(Array.from({ length: 8 }, () => (rand(2) === 0 ? 0 : rand(3) === 0 ? rand(16) : rand(65536))));
    for (const groups of cases) {
      const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
      expect(formatAddress(addressFromBytes(bytes))).toBe(ipaddr.fromByteArray(bytes).toString());
    }
  });

  it('random addresses, prefixes and byte arrays', () => {
    for (let i = 0; i < 2000; i++) {
      const v4 = [rand(256), rand(256), rand(256), rand(256)];
      const text4 = v4.join('.');
      const p4 = rand(33);
      expect(parseAddress(text4).value).toBe(valueOf(ipaddr.IPv4.parse(text4)));
      expect(addressFromBytes(v4)).toEqual({ family: 4, value: valueOf(ipaddr.IPv4.parse(text4)) });
      const ia4 = parseInterfaceAddress(`${text4}/${p4}`);
      expect(subnetOf(ia4).network).toBe(valueOf(ipaddr.IPv4.networkAddressFromCIDR(`${text4}/${p4}`)));
      expect(broadcastOf(ia4).value).toBe(valueOf(ipaddr.IPv4.broadcastAddressFromCIDR(`${text4}/${p4}`)));
      const v6 = Array.from({ length: 16 }, () => (rand(3) === 0 ? 0 : rand(256)));
      const text6 = ipaddr.fromByteArray(v6).toString();
      const p6 = rand(129);
      expect(addressFromBytes(v6)).toEqual({ family: 6, value: valueOf(ipaddr.IPv6.parse(text6)) });
      const ia6 = parseInterfaceAddress(`${text6}/${p6}`, 'address');
      if (ia6.address.family === 6) {
        expect(subnetOf(ia6).network).toBe(valueOf(ipaddr.IPv6.networkAddressFromCIDR(`${text6}/${p6}`)));
        expect(broadcastOf(ia6).value).toBe(valueOf(ipaddr.IPv6.broadcastAddressFromCIDR(`${text6}/${p6}`)));
      }
    }
  });
});
