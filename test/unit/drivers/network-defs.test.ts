// macvlan/ipvlan network definitions: what `network create` accepts, defaults and refuses before
// anything is touched, and which parents two networks may share.
import { describe, expect, it } from '@jest/globals';
import { ConflictError, UserError } from '../../../config/errors.js';
import { checkParentClaim, normalizeNetworkInput, type NetworkDef } from '../../../config/networks.js';

const def = (over: Partial<NetworkDef>): NetworkDef => ({
  name: 'x', driver: 'macvlan', bridge: '', internal: false, icc: true, mtu: 1500, options: {}, created: '', ...over,
});

describe('normalizeNetworkInput for macvlan and ipvlan', () => {
  it('keeps parent and mode, defaults the mode, and has no bridge', () => {
    expect(normalizeNetworkInput({ name: 'lan', driver: 'macvlan', parent: 'eth1', subnet: '192.168.1.0/24' })).toMatchObject({ driver: 'macvlan', parent: 'eth1', mode: 'bridge', bridge: '', subnet: '192.168.1.0/24' });
    expect(normalizeNetworkInput({ name: 'lan', driver: 'ipvlan', parent: 'eth1', subnet: '10.1.0.0/24' })).toMatchObject({ parent: 'eth1', mode: 'l2', bridge: '' });
    expect(normalizeNetworkInput({ name: 'lan', driver: 'ipvlan', parent: 'eth1.10', mode: 'l3s', ipv6Subnet: 'fd00::/64' })).toMatchObject({ parent: 'eth1.10', mode: 'l3s' });
    // A name too long for a bridge is fine: there is none.
    expect(normalizeNetworkInput({ name: 'a-rather-long-network-name', driver: 'macvlan', parent: 'eth1', subnet: '10.0.0.0/24' }).bridge).toBe('');
  });

  it('leaves bridge networks as they were', () => {
    const n = normalizeNetworkInput({ name: 'web' });
    expect(n).toMatchObject({ driver: 'bridge', bridge: 'ts-web' });
    expect(n).not.toHaveProperty('parent');
    expect(n).not.toHaveProperty('mode');
  });

  it.each([
    [{ driver: 'macvlan', subnet: '10.0.0.0/24' }, '--driver macvlan needs --parent IFACE: the host interface whose segment the containers join'],
    [{ driver: 'macvlan', parent: 'eth1' }, '--driver macvlan needs --subnet (or --ipv6-subnet): the addresses of the segment behind eth1'],
    [{ driver: 'macvlan', parent: 'eth1', subnet: '10.0.0.0/24', mode: 'l3' }, 'invalid --mode "l3": macvlan modes are bridge, private, vepa, passthru'],
    [{ driver: 'ipvlan', parent: 'eth1', subnet: '10.0.0.0/24', mode: 'passthru' }, 'invalid --mode "passthru": ipvlan modes are l2, l3, l3s'],
    [{ driver: 'macvlan', parent: 'eth1', subnet: '10.0.0.0/24', bridge: 'br0' }, '--bridge is for --driver bridge: macvlan containers sit directly on --parent eth1'],
    [{ driver: 'ipvlan', parent: 'eth1', subnet: '10.0.0.0/24', internal: true }, '--internal is not supported by --driver ipvlan: its containers sit directly on the segment of eth1'],
    [{ driver: 'macvlan', parent: 'eth1', subnet: '10.0.0.0/24', opts: ['icc=false'] }, '--opt icc is for --driver bridge: --mode private keeps macvlan containers apart'],
    [{ driver: 'macvlan', parent: 'no/slash', subnet: '10.0.0.0/24' }, 'invalid --parent interface name "no/slash": use 1-15 characters from [A-Za-z0-9_.-]'],
    [{ parent: 'eth1' }, '--parent is for --driver macvlan or ipvlan'],
    [{ mode: 'bridge' }, '--mode is for --driver macvlan or ipvlan'],
  ])('refuses %j', (input, message) => {
    expect(() => normalizeNetworkInput({ name: 'n', ...input })).toThrow(new UserError(message));
  });
});

describe('checkParentClaim', () => {
  const lan = def({ name: 'lan', parent: 'eth1', mode: 'bridge' });
  const pt = def({ name: 'pt', parent: 'eth2', mode: 'passthru' });
  const iv = def({ name: 'iv', driver: 'ipvlan', parent: 'eth3', mode: 'l3' });
  const web = def({ name: 'web', driver: 'bridge', bridge: 'ts-web' });
  const others = [lan, pt, iv, web];

  it('lets macvlan networks share a parent, and ipvlan networks of one mode', () => {
    expect(() => checkParentClaim(def({ name: 'n', parent: 'eth1', mode: 'private' }), others)).not.toThrow();
    expect(() => checkParentClaim(def({ name: 'n', driver: 'ipvlan', parent: 'eth3', mode: 'l3' }), others)).not.toThrow();
    expect(() => checkParentClaim(def({ name: 'n', parent: 'eth9', mode: 'passthru' }), others)).not.toThrow();
    expect(() => checkParentClaim(def({ name: 'n', driver: 'bridge', bridge: 'ts-n' }), others)).not.toThrow();
  });

  it.each([
    [def({ name: 'n', parent: 'ts-web' }), UserError, '--parent ts-web is the bridge of tsrun network web: macvlan needs a host interface (NIC, VLAN or bond)'],
    [def({ name: 'n', parent: 'eth2', mode: 'passthru' }), ConflictError, 'parent eth2 is already claimed by network pt in passthru mode'],
    [def({ name: 'n', parent: 'eth2', mode: 'bridge' }), ConflictError, 'parent eth2 is already claimed by network pt in passthru mode'],
    [def({ name: 'n', parent: 'eth1', mode: 'passthru' }), ConflictError, '--mode passthru needs parent eth1 to itself, but network lan already uses it'],
    [def({ name: 'n', driver: 'ipvlan', parent: 'eth1', mode: 'l2' }), ConflictError, 'parent eth1 already serves macvlan network lan: one parent serves macvlan or ipvlan networks, not both'],
    [def({ name: 'n', parent: 'eth3', mode: 'bridge' }), ConflictError, 'parent eth3 already serves ipvlan network iv: one parent serves macvlan or ipvlan networks, not both'],
    [def({ name: 'n', driver: 'ipvlan', parent: 'eth3', mode: 'l2' }), ConflictError, 'parent eth3 already serves ipvlan network iv in mode l3: all ipvlan networks on one parent share one mode'],
  ])('refuses %#', (n, kind, message) => {
    expect(() => checkParentClaim(n, others)).toThrow(new kind(message));
    try {
      checkParentClaim(n, others);
    } catch (err) {
      expect(err).toBeInstanceOf(kind);
    }
  });
});
