// Published host addresses must be addresses of this host (engine.ts checkLocalHostIps). The
// address dump asks for the families of the published addresses only: an IPv6 dump carries a
// link-local address per container veth, so dumping both families grew with the containers.
import { describe, expect, it } from '@jest/globals';
import { checkLocalHostIps } from '../../../runtime/engine.js';
import type { Rtnl } from '../../../runtime/netlink/rtnl.js';
import type { PortMapping } from '../../../config/ports.js';

const ADDRS = [
  { family: 4, address: '192.0.2.5' },
  { family: 6, address: '2001:db8::5' },
  { family: 6, address: 'fe80::1' },
];
function fakeHost(): { host: Rtnl; asked: (4 | 6 | undefined)[] } {
  const asked: (4 | 6 | undefined)[] = [];
  const host = {
    listAddresses: async (_ifindex?: number, family?: 4 | 6) => {
      asked.push(family);
      return ADDRS.filter((a) => family === undefined || a.family === family).map((a) => ({ ...a, ifindex: 2, prefixLength: 24, cidr: `${a.address}/24` }));
    },
  } as unknown as Rtnl;
  return { host, asked };
}
const port = (hostIp: string | undefined, hostPort = 8080): PortMapping => ({ hostIp, hostPort, containerPort: 80, protocol: 'tcp' });

describe('checkLocalHostIps', () => {
  it('dumps the IPv4 addresses only when every published address is IPv4', async () => {
    const { host, asked } = fakeHost();
    await checkLocalHostIps([port('192.0.2.5')], host);
    expect(asked).toEqual([4]);
  });
  it('dumps both families for a mix, and IPv6 alone for IPv6', async () => {
    const mixed = fakeHost();
    await checkLocalHostIps([port('192.0.2.5'), port('2001:db8::5', 8081)], mixed.host);
    expect(mixed.asked).toEqual([undefined]);
    const v6 = fakeHost();
    await checkLocalHostIps([port('2001:db8::5')], v6.host);
    expect(v6.asked).toEqual([6]);
  });
  it('refuses an address the host does not have, and dumps nothing for the wildcard or loopback', async () => {
    const { host, asked } = fakeHost();
    await expect(checkLocalHostIps([port('198.51.100.7')], host)).rejects.toThrow(/198\.51\.100\.7 is not an address of this host/);
    await expect(checkLocalHostIps([port('2001:db8::9')], host)).rejects.toThrow(/not an address of this host/);
    asked.length = 0;
    await checkLocalHostIps([port(undefined), port('0.0.0.0', 8081)], host);
    expect(asked).toEqual([]);
    await checkLocalHostIps([port('127.0.0.1')], host);
    expect(asked).toEqual([4]);
  });
});
