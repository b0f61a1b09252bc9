// vethVerdict: is the link at a record's recorded index still the veth attach made?
import { describe, expect, it } from '@jest/globals';
import { dyingVethName, hostVethName, isDyingVeth, peerMoved, vethVerdict } from '../../../runtime/drivers/linux-bridge.js';
import type { Link } from '../../../runtime/netlink/types.js';
import { publishedBy } from '../../../runtime/drivers/overlay.js';

const veth: Link = { index: 7, name: 'tsv0123abcd', kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:01', up: true, master: 3, parentIndex: 2, linkNetnsId: 0 };

describe('vethVerdict', () => {
  it('nothing at the index: gone (already done)', () => {
    expect(vethVerdict(undefined, veth.name, { index: 7, peer: 2 })).toBe('gone');
  });
  it('same index, name, kind and peer: ours', () => {
    expect(vethVerdict(veth, veth.name, { index: 7, peer: 2 })).toBe('ours');
    expect(vethVerdict({ ...veth, master: undefined }, veth.name, { index: 7, peer: 2 })).toBe('ours'); // retired
  });
  it('no peer recorded: index, name and kind decide', () => {
    expect(vethVerdict({ ...veth, parentIndex: 9 }, veth.name, { index: 7 })).toBe('ours');
  });
  it('anything else at the index: other', () => {
    expect(vethVerdict({ ...veth, name: 'eth9' }, veth.name, { index: 7, peer: 2 })).toBe('other');
    expect(vethVerdict({ ...veth, kind: 'dummy' }, veth.name, { index: 7, peer: 2 })).toBe('other');
    expect(vethVerdict({ ...veth, parentIndex: 5 }, veth.name, { index: 7, peer: 2 })).toBe('other');
    expect(vethVerdict({ ...veth, index: 8 }, veth.name, { index: 7, peer: 2 })).toBe('other');
  });
});

describe('vethVerdict with the host end\'s MAC recorded (a peer the container moved)', () => {
  const rec = { index: 7, peer: 2, mac: veth.mac, peerNs: 0 };
  it('same index, name, kind and MAC: ours, wherever the peer has gone', () => {
    expect(vethVerdict(veth, veth.name, rec)).toBe('ours');
    expect(vethVerdict({ ...veth, parentIndex: 5, linkNetnsId: 4 }, veth.name, rec)).toBe('ours');
  });
  it('another MAC under the same name and index: other, unless the peer is still where attach put it (a MAC the host rewrote: udev)', () => {
    expect(vethVerdict({ ...veth, mac: '02:00:00:00:00:02', parentIndex: 5 }, veth.name, rec)).toBe('other');
    expect(vethVerdict({ ...veth, mac: '02:00:00:00:00:02', linkNetnsId: 4 }, veth.name, rec)).toBe('other');
    expect(vethVerdict({ ...veth, mac: '02:00:00:00:00:02', linkNetnsId: undefined }, veth.name, rec)).toBe('other');
    expect(vethVerdict({ ...veth, mac: '02:00:00:00:00:02' }, veth.name, rec)).toBe('ours');
    expect(vethVerdict({ ...veth, mac: '02:00:00:00:00:02' }, veth.name, { index: 7, mac: veth.mac })).toBe('other');
    expect(vethVerdict({ ...veth, name: 'eth9' }, veth.name, rec)).toBe('other');
  });
  it('peerMoved: another peer index or another peer namespace', () => {
    expect(peerMoved(veth, rec)).toBe(false);
    expect(peerMoved({ ...veth, parentIndex: 5 }, rec)).toBe(true);
    expect(peerMoved({ ...veth, linkNetnsId: 4 }, rec)).toBe(true);
    expect(peerMoved({ ...veth, linkNetnsId: 4 }, { index: 7, peer: 2 })).toBe(false); // older record: index only
  });
});

describe('dying veths (a poststop\'s detached delete: dismissVeth)', () => {
  it('a dying name is the prefix and the link\'s own index, never a live veth\'s name, within IFNAMSIZ', () => {
    expect(dyingVethName(7)).toBe('tsvz7');
    expect(dyingVethName(0xffffffff).length).toBeLessThan(16);
    expect(dyingVethName(12345678)).not.toMatch(/^tsv[0-9a-f]{8}$/);
    expect(hostVethName('c', 'n')).toMatch(/^tsv[0-9a-f]{8}$/);
  });
  it('only a veth off any bridge, named for its own index, is dying', () => {
    const dying = { ...veth, name: 'tsvz7', master: undefined, up: false };
    expect(isDyingVeth(dying)).toBe(true);
    expect(isDyingVeth({ ...dying, name: 'tsvz8' })).toBe(false); // another index's name
    expect(isDyingVeth({ ...dying, master: 3 })).toBe(false); // on a bridge
    expect(isDyingVeth({ ...dying, kind: 'dummy' })).toBe(false);
    expect(isDyingVeth({ ...dying, up: true })).toBe(false); // in use, whatever its name
    expect(isDyingVeth(veth)).toBe(false);
  });
});

describe('publishedBy (overlay: withdraw only what this record published)', () => {
  const ep = { containerId: 'c', network: 'n', hostId: 'h', mac: '02:42:0a:00:00:05', ipv4: '10.0.0.5', netns: '4:100' };
  const rec = { ipv4: { address: '10.0.0.5', prefixLength: 24 }, mac: '02:42:0a:00:00:05', containerNetns: '4:100' };
  it('same address, MAC and namespace: ours', () => expect(publishedBy(ep, rec)).toBe(true));
  it('a newer container under the same key: not ours', () => {
    expect(publishedBy({ ...ep, ipv4: '10.0.0.6', mac: '02:42:0a:00:00:06' }, rec)).toBe(false);
    expect(publishedBy({ ...ep, netns: '4:101' }, rec)).toBe(false);
  });
});
