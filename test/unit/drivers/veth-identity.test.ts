// vethVerdict: is the link at a record's recorded index still the veth attach made?
import { describe, expect, it } from '@jest/globals';
import { vethVerdict } from '../../../runtime/drivers/linux-bridge.js';
import type { Link } from '../../../runtime/netlink/types.js';

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
