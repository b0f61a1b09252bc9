// Rtnl against the real kernel, inside two scratch namespaces: "host" (where the Rtnl under test
// plays the host side) and "ctr" (the container). Every effect is checked with `ip -j` through
// nsenter, never with Rtnl itself.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { readlinkSync } from 'node:fs';
import { ConflictError, NotFoundError, UserError } from '../../../config/errors.js';
import { errnoCode } from '../../../runtime/netlink/errors.js';
import { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { scratchPair, type ScratchNetns, type ScratchPair } from '../../harness/sandbox.js';

interface IpAddr { ifname: string; addr_info: { family: string; local: string; prefixlen: number; broadcast?: string; flags?: string[]; nodad?: boolean }[] }
interface IpRoute { dst: string; gateway?: string; dev?: string; metrics?: { mtu?: number }[]; scope?: string }

const ownNetns = readlinkSync('/proc/self/ns/net');
let pair: ScratchPair;
let host: ScratchNetns;
let ctr: ScratchNetns;
let hostNl: Rtnl;
let ctrNl: Rtnl;
let ctrFd: number;


beforeAll(async () => {
  pair = await scratchPair('tsA-');
  ({ host, ctr, hostNl, ctrNl, ctrFd } = pair);
});

afterAll(async () => {
  await pair?.destroy();
});

afterEach(async () => {
  // Each test cleans up after itself; what is left here is a test's leak.
  expect(host.linkNames()).toEqual(['lo']);
  expect(ctr.linkNames()).toEqual(['lo']);
  // The test process itself never moved.
  expect(readlinkSync('/proc/thread-self/ns/net')).toBe(ownNetns);
});

describe('veth with its peer created directly in another namespace', () => {
  it('creates both ends where they belong, with mtu, mac and alias', async () => {
    await hostNl.createVeth({ name: 'tsAv1', peerName: 'eth0', peerNsFd: ctrFd, mtu: 1400, mac: '02:00:00:00:00:01', peerMac: '02:00:00:00:00:02', alias: 'tsA:test', up: true });
    const h = host.link('tsAv1');
    expect(h.linkinfo?.info_kind).toBe('veth');
    expect(h.mtu).toBe(1400);
    expect(h.address).toBe('02:00:00:00:00:01');
    expect(h.ifalias).toBe('tsA:test');
    expect(h.flags).toContain('UP');
    const c = ctr.link('eth0');
    expect(c.linkinfo?.info_kind).toBe('veth');
    expect(c.mtu).toBe(1400);
    expect(c.address).toBe('02:00:00:00:00:02');
    expect(c.flags).not.toContain('UP');

    const got = await hostNl.getLink('tsAv1');
    expect(got).toMatchObject({ index: h.ifindex, name: 'tsAv1', kind: 'veth', mtu: 1400, mac: '02:00:00:00:00:01', up: true, alias: 'tsA:test' });
    expect(got?.parentIndex).toBe(c.ifindex); // the peer's index, in the other namespace
    expect(await ctrNl.getLink(c.ifindex)).toMatchObject({ name: 'eth0', up: false });
    expect((await hostNl.listLinks()).map((l) => l.name).sort()).toEqual(['lo', 'tsAv1']);

    expect(await hostNl.deleteLink('tsAv1')).toBe(true);
    expect(ctr.linkNames()).toEqual(['lo']); // deleting one end removes the pair
  });

  it('reports "exists" as ConflictError naming the object, and absence as undefined / false', async () => {
    await hostNl.createVeth({ name: 'tsAv2', peerName: 'tsAp2' });
    const err = await hostNl.createVeth({ name: 'tsAv2', peerName: 'tsAp3' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toBe('create veth "tsAv2": File exists');
    expect(errnoCode(err)).toBe('EEXIST');

    expect(await hostNl.deleteLink('tsAv2')).toBe(true);
    expect(await hostNl.deleteLink('tsAv2')).toBe(false);
    expect(await hostNl.deleteLink(9999)).toBe(false);
    expect(await hostNl.getLink('tsAv2')).toBeUndefined();
    await expect(hostNl.setUp('tsAv2')).rejects.toBeInstanceOf(NotFoundError);
    await expect(hostNl.createVeth({ name: 'a-name-far-too-long', peerName: 'x' })).rejects.toBeInstanceOf(UserError);
  });

  it('sets a link up and renames it, keeping its index and alias', async () => {
    await hostNl.createVeth({ name: 'tsAv3', peerName: 'tsAp3' });
    await hostNl.createBridge({ name: 'tsAbr3', alias: 'tsA:renamed' });
    const idx = (await hostNl.getLink('tsAbr3'))!.index;
    await hostNl.setUp(idx);
    expect(host.link('tsAbr3').flags).toContain('UP');
    await hostNl.rename(idx, 'tsAbr3b');
    expect(host.link('tsAbr3b')).toMatchObject({ ifindex: idx, ifalias: 'tsA:renamed' });
    expect(await hostNl.deleteLink('tsAbr3b')).toBe(true);
    expect(await hostNl.deleteLink('tsAv3')).toBe(true);
    expect(host.linkNames()).toEqual(['lo']);
  });
});

describe('addresses and routes', () => {
  it('adds v4 and v6 addresses (v6 usable at once), routes, and pings across the veth', async () => {
    const echoed = await hostNl.createVeth({ name: 'tsAv4', peerName: 'eth0', peerNsFd: ctrFd, up: true });
    const h = (await hostNl.getLink('tsAv4'))!;
    const c = (await ctrNl.getLink('eth0'))!;
    // The kernel's echo of the creation (Linux ≥ 6.3) says what GETLINK says: this end and its
    // peer's index in the other namespace, which attach uses instead of asking twice.
    if (echoed) expect({ index: echoed.index, peer: echoed.parentIndex, kind: echoed.kind }).toEqual({ index: h.index, peer: c.index, kind: 'veth' });
    await hostNl.addAddress(h.index, '10.99.0.1/24');
    await hostNl.addAddress(h.index, 'fd99::1/64');
    await ctrNl.setUp(c.index);
    await ctrNl.addAddress(c.index, '10.99.0.2/24');
    await ctrNl.addAddress(c.index, 'fd99::2/64');
    await ctrNl.addRoute({ dst: 'default', gateway: '10.99.0.1' });
    await ctrNl.addRoute({ dst: 'default', gateway: 'fd99::1' });
    await ctrNl.addRoute({ dst: '10.98.7.9/16', ifindex: c.index, mtu: 1300 });

    const addrs = ctr.ipJson<IpAddr[]>(['addr', 'show', 'dev', 'eth0'])[0]!.addr_info;
    expect(addrs).toEqual(expect.arrayContaining([
      expect.objectContaining({ family: 'inet', local: '10.99.0.2', prefixlen: 24, broadcast: '10.99.0.255' }),
      expect.objectContaining({ family: 'inet6', local: 'fd99::2', prefixlen: 64, nodad: true }),
    ]));
    expect(addrs.find((a) => a.local === 'fd99::2')?.flags ?? []).not.toContain('tentative');
    expect((await ctrNl.listAddresses(c.index)).map((a) => a.cidr)).toEqual(expect.arrayContaining(['10.99.0.2/24', 'fd99::2/64']));

    const v4 = ctr.ipJson<IpRoute[]>(['route', 'show']);
    expect(v4).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: 'default', gateway: '10.99.0.1', dev: 'eth0' }),
      expect.objectContaining({ dst: '10.98.0.0/16', dev: 'eth0', scope: 'link', metrics: [{ mtu: 1300 }] }),
    ]));
    expect(ctr.ipJson<IpRoute[]>(['-6', 'route', 'show'])).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: 'fd99::1' })]));
    const routes = await ctrNl.listRoutes(4);
    expect(routes).toEqual(expect.arrayContaining([
      expect.objectContaining({ family: 4, dst: 'default', gateway: '10.99.0.1', ifindex: c.index }),
      expect.objectContaining({ family: 4, dst: '10.98.0.0/16', ifindex: c.index, mtu: 1300 }),
      expect.objectContaining({ family: 4, dst: '10.99.0.0/24', ifindex: c.index }),
    ]));
    expect(await ctrNl.listRoutes(6)).toEqual(expect.arrayContaining([expect.objectContaining({ family: 6, dst: 'default', gateway: 'fd99::1' })]));

    // Real packets, both families, from the container side.
    expect(ctr.exec('busybox', ['ping', '-c', '1', '-W', '2', '10.99.0.1']).status).toBe(0);
    expect(ctr.exec('busybox', ['ping', '-c', '1', '-W', '2', 'fd99::1']).status).toBe(0);

    // Idempotent deletes.
    expect(await ctrNl.deleteRoute({ dst: '10.98.0.0/16', ifindex: c.index })).toBe(true);
    expect(await ctrNl.deleteRoute({ dst: '10.98.0.0/16', ifindex: c.index })).toBe(false);
    expect(await ctrNl.deleteRoute({ dst: 'default', gateway: '10.99.0.1' })).toBe(true);
    expect(ctr.ipJson<IpRoute[]>(['route', 'show']).map((r) => r.dst)).toEqual(['10.99.0.0/24']);
    expect(await ctrNl.deleteAddress(c.index, '10.99.0.2/24')).toBe(true);
    expect(await ctrNl.deleteAddress(c.index, '10.99.0.2/24')).toBe(false);
    await expect(ctrNl.addAddress(c.index, 'fd99::2/64')).rejects.toBeInstanceOf(ConflictError);
    // "Already there" as an answer (an attach re-adding its bridge's gateway), not an error; any
    // other refusal is still one, naming the step.
    expect(await ctrNl.addAddressIfAbsent(c.index, 'fd99::2/64')).toBe(false);
    expect(await ctrNl.addAddressIfAbsent(c.index, '10.99.0.2/24')).toBe(true);
    expect(await ctrNl.addAddressIfAbsent(c.index, '10.99.0.2/24')).toBe(false);
    expect((await ctrNl.listAddresses(c.index, 4)).map((a) => a.cidr)).toEqual(['10.99.0.2/24']);
    await expect(ctrNl.addAddressIfAbsent(999_999, '10.99.0.3/24')).rejects.toThrow(/add address 10\.99\.0\.3\/24 to link #999999: No such device/);

    expect(await hostNl.deleteLink('tsAv4')).toBe(true);
  });
});

describe('bridge', () => {
  it('creates a bridge, enslaves ports (also at creation) and isolates a port', async () => {
    await hostNl.createBridge({ name: 'tsAbr0', mtu: 1450, alias: 'tsA:net', up: true });
    const br = (await hostNl.getLink('tsAbr0'))!;
    expect(br).toMatchObject({ kind: 'bridge', up: true, alias: 'tsA:net' });
    expect(host.link('tsAbr0').linkinfo?.info_kind).toBe('bridge');

    await hostNl.createVeth({ name: 'tsAv5', peerName: 'tsAp5', master: br.index, up: true });
    await hostNl.createVeth({ name: 'tsAv6', peerName: 'tsAp6' });
    await hostNl.setMaster('tsAv6', br.index);
    expect(host.link('tsAv5').master).toBe('tsAbr0');
    expect(host.link('tsAv6').master).toBe('tsAbr0');
    expect((await hostNl.getLink('tsAv6'))?.master).toBe(br.index);

    const v6 = (await hostNl.getLink('tsAv6'))!.index;
    await hostNl.setBridgePort(v6, { isolated: true });
    expect(host.link('tsAv6').linkinfo?.info_slave_data?.isolated).toBe(true);
    expect(host.link('tsAv5').linkinfo?.info_slave_data?.isolated).toBe(false);
    await hostNl.setBridgePort(v6, { isolated: false });
    expect(host.link('tsAv6').linkinfo?.info_slave_data?.isolated).toBe(false);

    await hostNl.setMaster('tsAv6', 0);
    expect(host.link('tsAv6').master).toBeUndefined();

    for (const n of ['tsAv5', 'tsAv6', 'tsAbr0']) expect(await hostNl.deleteLink(n)).toBe(true);
  });
});
