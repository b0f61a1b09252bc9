// Sub-interfaces and the pieces the overlay agent needs: macvlan created straight into a
// container namespace, VXLAN devices, FDB entries and neighbours. Checked with `ip -j` and
// `bridge -j` through nsenter.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { scratchPair, type ScratchNetns, type ScratchPair } from '../../harness/sandbox.js';

interface FdbRow { mac: string; ifname: string; dst?: string; flags?: string[]; state?: string }
interface NeighRow { dst: string; dev: string; lladdr?: string; state?: string[] }

let pair: ScratchPair;
let host: ScratchNetns;
let ctr: ScratchNetns;
let hostNl: Rtnl;
let ctrNl: Rtnl;
let ctrFd: number;

const fdb = (ns: ScratchNetns, dev: string): FdbRow[] => JSON.parse(ns.run('bridge', ['-j', 'fdb', 'show', 'dev', dev]) || '[]') as FdbRow[];

beforeAll(async () => {
  pair = await scratchPair('tsA-o');
  ({ host, ctr, hostNl, ctrNl, ctrFd } = pair);
});

afterAll(async () => {
  await pair?.destroy();
});

afterEach(() => {
  expect(host.linkNames()).toEqual(['lo']);
  expect(ctr.linkNames()).toEqual(['lo']);
});

describe('macvlan', () => {
  it('is created on a host parent directly inside the container namespace, under its final name', async () => {
    await hostNl.createVeth({ name: 'tsAparent', peerName: 'tsAparentp', up: true });
    const parent = (await hostNl.getLink('tsAparent'))!;
    await hostNl.createMacvlan({ name: 'eth0', parentIndex: parent.index, mode: 'bridge', nsFd: ctrFd, mac: '02:42:00:00:00:09', mtu: 1400 });
    expect(host.linkNames()).toEqual(['lo', 'tsAparent', 'tsAparentp']);
    const m = ctr.link('eth0');
    expect(m.linkinfo?.info_kind).toBe('macvlan');
    expect(m.linkinfo?.info_data?.mode).toBe('bridge');
    expect(m.mtu).toBe(1400);
    expect(await ctrNl.getLink('eth0')).toMatchObject({ kind: 'macvlan', mac: '02:42:00:00:00:09' });

    // A private-mode sibling, created here and renamed (the temp-name pattern).
    await hostNl.createMacvlan({ name: 'tsAmvtmp', parentIndex: parent.index, mode: 'private' });
    const tmp = (await hostNl.getLink('tsAmvtmp'))!;
    await hostNl.rename(tmp.index, 'tsAmv1');
    expect(host.link('tsAmv1').linkinfo?.info_data?.mode).toBe('private');

    expect(await ctrNl.deleteLink('eth0')).toBe(true);
    expect(await hostNl.deleteLink('tsAmv1')).toBe(true);
    expect(await hostNl.deleteLink('tsAparent')).toBe(true);
  });
});

describe('vxlan, fdb and neighbours', () => {
  it('creates a VXLAN device and programs flood entries, a MAC entry and a neighbour', async () => {
    await hostNl.createVeth({ name: 'tsAul', peerName: 'tsAulp', up: true });
    const ul = (await hostNl.getLink('tsAul'))!;
    await hostNl.addAddress(ul.index, '192.168.77.1/24');
    await hostNl.createBridge({ name: 'tsAbr1', up: true });
    const br = (await hostNl.getLink('tsAbr1'))!;
    await hostNl.createVxlan({ name: 'tsAvx42', vni: 42, local: '192.168.77.1', parentIndex: ul.index, mtu: 1450, alias: 'tsA:ov', master: br.index, up: true });

    const vx = host.link('tsAvx42');
    expect(vx.linkinfo?.info_kind).toBe('vxlan');
    expect(vx.linkinfo?.info_data).toMatchObject({ id: 42, local: '192.168.77.1', port: 4789, learning: false, link: 'tsAul' });
    expect(vx.mtu).toBe(1450);
    expect(vx.ifalias).toBe('tsA:ov');
    const idx = vx.ifindex;

    // `bridge fdb append`: the all-zero MAC may list several VTEPs (head-end replication).
    const zero = '00:00:00:00:00:00';
    await hostNl.addFdb({ ifindex: idx, mac: zero, dst: '192.168.77.2' });
    await hostNl.addFdb({ ifindex: idx, mac: zero, dst: '192.168.77.3' });
    await hostNl.addFdb({ ifindex: idx, mac: '02:42:0a:00:00:05', dst: '192.168.77.2' });
    const rows = fdb(host, 'tsAvx42').filter((r) => r.dst);
    expect(rows).toEqual(expect.arrayContaining([
      expect.objectContaining({ mac: zero, dst: '192.168.77.2', state: 'permanent' }),
      expect.objectContaining({ mac: zero, dst: '192.168.77.3' }),
      expect.objectContaining({ mac: '02:42:0a:00:00:05', dst: '192.168.77.2' }),
    ]));
    expect(rows.every((r) => r.flags?.includes('self'))).toBe(true);
    const mine = (await hostNl.listFdb(idx)).filter((e) => e.dst);
    expect(mine).toHaveLength(3);
    expect(mine).toEqual(expect.arrayContaining([expect.objectContaining({ ifindex: idx, mac: zero, dst: '192.168.77.3', self: true, permanent: true })]));

    expect(await hostNl.deleteFdb({ ifindex: idx, mac: zero, dst: '192.168.77.3' })).toBe(true);
    // Deleting it again succeeds: the kernel answers 0 when the MAC exists without that VTEP.
    await hostNl.deleteFdb({ ifindex: idx, mac: zero, dst: '192.168.77.3' });
    expect(fdb(host, 'tsAvx42').filter((r) => r.dst).map((r) => r.dst).sort()).toEqual(['192.168.77.2', '192.168.77.2']);
    expect(await hostNl.deleteFdb({ ifindex: idx, mac: '02:42:0a:00:00:05', dst: '192.168.77.2' })).toBe(true);
    expect(await hostNl.deleteFdb({ ifindex: idx, mac: '02:42:0a:00:00:05', dst: '192.168.77.2' })).toBe(false);

    // Neighbour (ARP) entry for a remote container, as the agent installs it.
    await hostNl.addNeighbour({ ifindex: br.index, ip: '10.42.0.5', mac: '02:42:0a:00:00:05', permanent: true });
    await hostNl.addNeighbour({ ifindex: br.index, ip: '10.42.0.5', mac: '02:42:0a:00:00:05', permanent: true }); // replace: no error
    await hostNl.addNeighbour({ ifindex: br.index, ip: 'fd42::5', mac: '02:42:0a:00:00:05', permanent: true });
    const neigh = host.ipJson<NeighRow[]>(['neigh', 'show', 'dev', 'tsAbr1']);
    expect(neigh).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: '10.42.0.5', lladdr: '02:42:0a:00:00:05', state: ['PERMANENT'] }),
      expect.objectContaining({ dst: 'fd42::5', lladdr: '02:42:0a:00:00:05' }),
    ]));
    expect(await hostNl.listNeighbours(br.index)).toEqual(expect.arrayContaining([
      expect.objectContaining({ ip: '10.42.0.5', mac: '02:42:0a:00:00:05', permanent: true }),
    ]));
    expect(await hostNl.deleteNeighbour({ ifindex: br.index, ip: '10.42.0.5' })).toBe(true);
    expect(await hostNl.deleteNeighbour({ ifindex: br.index, ip: '10.42.0.5' })).toBe(false);
    expect(host.ipJson<NeighRow[]>(['neigh', 'show', 'dev', 'tsAbr1']).map((n) => n.dst)).toEqual(['fd42::5']);

    for (const n of ['tsAvx42', 'tsAbr1', 'tsAul']) expect(await hostNl.deleteLink(n)).toBe(true);
  });
});
