// The VXLAN source filter's two sets, from the registered hosts (runtime/overlay/host.ts): what
// the agent programs and what a firewall rebuild restores must be the same split.
import { describe, expect, it } from '@jest/globals';
import { splitUnderlay, underlayLink } from '../../../runtime/overlay/host.js';
import type { Rtnl } from '../../../runtime/netlink/rtnl.js';

describe('splitUnderlay', () => {
  it("puts this host's address in local and every other host's, once and sorted, in peers", () => {
    const hosts = [
      { hostId: 'b', address: '10.0.0.9' },
      { hostId: 'me', address: '10.0.0.5' },
      { hostId: 'c', address: '10.0.0.2' },
      { hostId: 'd', address: '10.0.0.9' }, // two ids on one address (a re-registered host)
    ];
    expect(splitUnderlay(hosts, 'me')).toEqual({ local: ['10.0.0.5'], peers: ['10.0.0.2', '10.0.0.9'] });
  });

  it('has no local address for a host not (yet) registered', () => {
    expect(splitUnderlay([{ hostId: 'b', address: '10.0.0.9' }], 'me')).toEqual({ local: [], peers: ['10.0.0.9'] });
  });
});

describe('underlayLink', () => {
  // An IPv6 dump carries a link-local address per container veth: only the address's family is asked.
  const fake = (asked: (number | undefined)[]) =>
    ({
      listAddresses: async (_i?: number, family?: 4 | 6) => {
        asked.push(family);
        return [
          { ifindex: 2, family: 4, address: '10.0.0.5' },
          { ifindex: 3, family: 6, address: 'fd00::5' },
        ].filter((a) => family === undefined || a.family === family);
      },
      getLink: async (i: number) => ({ index: i, name: `eth${i}`, mtu: 1500 }),
    }) as unknown as Rtnl;

  it('finds the interface of the address from a dump of its own family', async () => {
    const asked: (number | undefined)[] = [];
    expect((await underlayLink(fake(asked), '10.0.0.5')).index).toBe(2);
    expect((await underlayLink(fake(asked), 'fd00::5')).index).toBe(3);
    expect(asked).toEqual([4, 6]);
    await expect(underlayLink(fake(asked), '10.0.0.77')).rejects.toThrow(/not an address of this host/);
  });
});
