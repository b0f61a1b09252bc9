// The MAC of a container's interface on a bridge-based network (runtime/drivers/mac.ts).
import { describe, expect, it } from '@jest/globals';
import { containerMac, hostVethMac, macFromIpv4, randomLocalMac } from '../../../runtime/drivers/mac.js';

const LOCAL_UNICAST = (mac: string) => (parseInt(mac.slice(0, 2), 16) & 0b11) === 0b10;

describe('container MACs', () => {
  it('derives the MAC from the IPv4 address, as Docker does', () => {
    expect(macFromIpv4('10.200.0.5')).toBe('02:42:0a:c8:00:05');
    expect(macFromIpv4('172.17.0.2')).toBe('02:42:ac:11:00:02');
    expect(macFromIpv4('255.255.255.254')).toBe('02:42:ff:ff:ff:fe');
  });

  it('an address handed on comes with the same MAC; another address, another MAC', () => {
    expect(containerMac(undefined, '10.88.0.9')).toBe('02:42:0a:58:00:09');
    expect(containerMac(undefined, '10.88.0.9')).toBe(containerMac(undefined, '10.88.0.9'));
    expect(containerMac(undefined, '10.88.0.10')).not.toBe(containerMac(undefined, '10.88.0.9'));
  });

  it("the user's MAC wins, in lower case (the record's MAC is compared with the kernel's)", () => {
    expect(containerMac('02:AB:CD:00:00:01', '10.88.0.9')).toBe('02:ab:cd:00:00:01');
    expect(containerMac('02:ab:cd:00:00:01', undefined)).toBe('02:ab:cd:00:00:01');
  });

  it('an endpoint without IPv4 gets a random locally administered unicast MAC', () => {
    const a = containerMac(undefined, undefined);
    const b = containerMac(undefined, undefined);
    expect(a).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(LOCAL_UNICAST(a)).toBe(true);
    expect(a).not.toBe(b);
    for (let i = 0; i < 50; i++) expect(LOCAL_UNICAST(randomLocalMac())).toBe(true);
  });

  it('a host veth end gets a locally administered unicast MAC, never in the containers\' 02:42', () => {
    for (let i = 0; i < 200; i++) {
      const m = hostVethMac();
      expect(LOCAL_UNICAST(m)).toBe(true);
      expect(m.startsWith('02:42:')).toBe(false);
    }
  });
});
