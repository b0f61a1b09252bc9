// The pure parts of the macvlan/ipvlan drivers: MTU choice, temporary names, parent checks
// against a fake netlink, and how kernel refusals are put into words.
import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import type { NetworkDef } from '../../../config/networks.js';
import type { Link } from '../../../runtime/netlink/types.js';
import type { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { checkParent, childMtu, tempName, validateSubifNetwork } from '../../../runtime/drivers/subif.js';
import { MacvlanDriver, explainMacvlan } from '../../../runtime/drivers/macvlan.js';
import { IPVLAN_MISSING, IpvlanDriver, explainIpvlan } from '../../../runtime/drivers/ipvlan.js';
import { driverFor } from '../../../runtime/drivers/registry.js';

const net = (over: Partial<NetworkDef> = {}): NetworkDef => ({
  name: 'lan', driver: 'macvlan', bridge: '', parent: 'eth1', mode: 'bridge', subnet4: '192.168.1.0/24', gateway4: '192.168.1.1',
  internal: false, icc: true, mtu: 1500, options: {}, created: '2026-01-01T00:00:00Z', ...over,
});

/** A netlink whose only link is `link` (looked up by name). */
const fakeHost = (link?: Partial<Link>): Rtnl => ({
  getLink: async (ref: string | number) => (link && ref === link.name ? ({ index: 7, mtu: 1500, mac: '02:00:00:00:00:01', up: true, ...link } as Link) : undefined),
}) as unknown as Rtnl;

describe('childMtu', () => {
  it.each([
    [1500, 1500, undefined], // same: inherit
    [1400, 1500, 1400], // smaller: as asked
    [1500, 1450, undefined], // default on a smaller parent: inherit the parent's
    [1500, 9000, 1500], // the default stays the default on a jumbo parent
  ])('network %i on a parent of %i → %s', (netMtu, parentMtu, want) => {
    expect(childMtu(netMtu, parentMtu, 'lan')).toBe(want);
  });

  it('refuses an explicit MTU above the parent\'s', () => {
    expect(() => childMtu(9000, 1500, 'lan')).toThrow('network lan: --mtu 9000 exceeds the MTU 1500 of its parent');
  });
});

describe('tempName', () => {
  it('is short, kind-tagged and different every time', () => {
    const a = tempName('macvlan');
    const b = tempName('macvlan');
    expect(a).toMatch(/^tsm[0-9a-f]{8}$/);
    expect(tempName('ipvlan')).toMatch(/^tsi[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });
});

describe('checkParent', () => {
  it('returns the parent when it exists and is up', async () => {
    await expect(checkParent(net(), fakeHost({ name: 'eth1' }))).resolves.toMatchObject({ index: 7 });
  });

  const refused: [string, Parameters<typeof fakeHost>[0], string][] = [
    ['missing', undefined, 'parent interface eth1 of network lan not found'],
    ['down', { name: 'eth1', up: false }, 'parent interface eth1 of network lan is down: bring it up first (ip link set eth1 up)'],
    ['a tsrun bridge', { name: 'eth1', kind: 'bridge', alias: 'tsrun-net:web' }, 'parent interface eth1 is the bridge of tsrun network web: macvlan needs a host interface (NIC, VLAN or bond)'],
  ];
  it.each(refused)('refuses a parent that is %s', async (_what, link, message) => {
    await expect(checkParent(net(), fakeHost(link))).rejects.toThrow(new UserError(message));
  });
});

describe('validation and the driver seam', () => {
  it('names what a definition lacks', () => {
    expect(validateSubifNetwork(net())).toEqual([]);
    expect(validateSubifNetwork(net({ parent: undefined, subnet4: undefined })).map((i) => i.path)).toEqual(['parent', 'subnet']);
  });

  it('registers both drivers, neither using the host firewall', () => {
    expect(driverFor('macvlan')).toBeInstanceOf(MacvlanDriver);
    expect(driverFor('ipvlan')).toBeInstanceOf(IpvlanDriver);
    expect(driverFor('macvlan')!.hostFirewall).toBe(false);
    expect(driverFor('ipvlan')!.hostFirewall).toBe(false);
    expect(driverFor('bridge')!.hostFirewall).not.toBe(false);
  });

  it('ipvlan refuses --mac before touching anything', () => {
    const ctx = { net: net({ driver: 'ipvlan', mode: 'l2' }), mac: '02:00:00:00:00:02' } as Parameters<IpvlanDriver['attach']>[0];
    expect(() => new IpvlanDriver().attach(ctx, undefined as never)).toThrow('--mac cannot be set on ipvlan network lan: ipvlan interfaces share the MAC of their parent');
  });
});

describe('kernel refusals in words', () => {
  it('macvlan', () => {
    expect(explainMacvlan('EINVAL', net(), 'passthru')).toMatch(/^passthru gives parent eth1 to one container/);
    expect(explainMacvlan('EINVAL', net(), 'bridge')).toMatch(/held by a passthru macvlan/);
    expect(explainMacvlan('EBUSY', net(), 'bridge')).toMatch(/bridge port, or it already serves ipvlan children/);
    expect(explainMacvlan('EADDRINUSE', net(), 'bridge')).toMatch(/MAC address is already used/);
    expect(explainMacvlan('ENOMEM', net(), 'bridge')).toBeUndefined();
  });

  it('ipvlan', () => {
    expect(explainIpvlan('EOPNOTSUPP', net({ driver: 'ipvlan' }))).toBe(IPVLAN_MISSING);
    expect(IPVLAN_MISSING).toContain('CONFIG_IPVLAN');
    expect(explainIpvlan('EBUSY', net({ driver: 'ipvlan' }))).toMatch(/already serves macvlan children/);
    expect(explainIpvlan(undefined, net({ driver: 'ipvlan' }))).toBeUndefined();
  });
});
