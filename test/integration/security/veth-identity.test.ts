// Identity in late teardown, for the veth drivers (bridge, overlay): the host veth's name is
// derived from (container id, network), so once a container with the same id is wired again on
// the same network, a late detach of the OLD record (a poststop or gc that runs after) finds the
// NEWER container's veth under that name. It must leave it alone: the record carries which link it
// made (index, peer index), and detach acts only on that link. Real kernel, scratch namespaces.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { NetworkDef } from '../../../config/networks.js';
import { BridgeDriver } from '../../../runtime/drivers/bridge.js';
import { OverlayDriver } from '../../../runtime/drivers/overlay.js';
import { attachVeth } from '../../../runtime/drivers/linux-bridge.js';
import type { NetworkDriver } from '../../../runtime/drivers/driver.js';
import type { Logger } from '../../../runtime/log.js';
import type { EndpointRecord } from '../../../runtime/records.js';
import { Transaction } from '../../../runtime/tx.js';
import { eventually, scratchNetns, scratchPair, type ScratchPair } from '../../harness/sandbox.js';

let pair: ScratchPair;
const warnings: string[] = [];
const log = { warn: (_o: unknown, msg: string) => void warnings.push(msg), info() {}, debug() {}, error() {} } as unknown as Logger;

beforeAll(async () => {
  pair = await scratchPair('tsVid-');
  pair.host.run('ip', ['link', 'add', 'tsvidbr', 'type', 'bridge']);
  pair.host.run('ip', ['link', 'set', 'tsvidbr', 'up']);
});
afterAll(async () => {
  await pair?.destroy();
});

const net = { name: 'vidnet', driver: 'bridge', bridge: 'tsvidbr', mtu: 1500, icc: true } as unknown as NetworkDef;

/** Wires container `id` into the scratch "container" namespace as eth0 and returns its record. */
async function wire(id: string): Promise<EndpointRecord> {
  const tx = new Transaction();
  const ep = await attachVeth({ containerId: id, net, host: pair.hostNl, container: pair.ctrNl, containerNetnsPath: pair.ctr.path, ifname: 'eth0', log }, tx, { mtu: 1500 });
  return { containerId: id, network: net.name, driver: 'bridge', ifname: 'eth0', hostIfname: ep.hostIfname, ...(ep.hostLink ? { hostLink: ep.hostLink } : {}), mac: ep.mac, ports: [], hostNetns: '', containerNetns: '', netnsPath: pair.ctr.path, created: '' };
}

interface IpLink { ifname: string; ifindex: number; master?: string; operstate?: string }
const hostVeth = (name: string) => pair.host.ipJson<IpLink[]>(['link', 'show']).find((l) => l.ifname === name);

describe.each<[string, NetworkDriver]>([
  ['bridge', new BridgeDriver()],
  ['overlay', new OverlayDriver()],
])('%s detach of an old record', (_kind, driver) => {
  it.each([false, true])('leaves the newer same-id container\'s veth working (netnsGoing=%s)', async (netnsGoing) => {
    const id = `vid-${_kind}-${String(netnsGoing)}`;
    const old = await wire(id);
    expect(old.hostLink?.index).toBeGreaterThan(0);
    // The old container goes (its veth with it), and the same id is wired again.
    await driver.detach(old, pair.hostNl, undefined, {});
    expect(hostVeth(old.hostIfname)).toBeUndefined();
    const newer = await wire(id);
    expect(newer.hostIfname).toBe(old.hostIfname);
    expect(newer.hostLink?.index).not.toBe(old.hostLink?.index);
    warnings.length = 0;

    // The late detach of the old record: the link by its name is the newer one.
    await driver.detach(old, pair.hostNl, undefined, { netnsGoing, log });
    const live = hostVeth(newer.hostIfname);
    expect(live?.ifindex).toBe(newer.hostLink!.index);
    expect(live?.master).toBe('tsvidbr');
    expect(pair.ctr.ipJson<IpLink[]>(['link', 'show', 'eth0'])[0]?.ifname).toBe('eth0');
    // (the old link is simply gone: nothing to warn about)
    expect(warnings).toEqual([]);

    // The newer record's own detach still removes its veth.
    await driver.detach(newer, pair.hostNl, undefined, {});
    expect(hostVeth(newer.hostIfname)).toBeUndefined();
    expect(pair.ctr.linkNames()).toEqual(['lo']);
  });
});

it('a link now at the recorded index that is not the recorded veth is left alone, with a warning', async () => {
  const rec = await wire('vid-reused');
  const index = rec.hostLink!.index;
  await new BridgeDriver().detach(rec, pair.hostNl, undefined, {});
  // Some other link takes the freed index (what a link moved in from another namespace can do): a veth
  // too, so only its name tells it apart.
  pair.host.run('ip', ['link', 'add', 'tsviddummy', 'index', String(index), 'type', 'veth', 'peer', 'name', 'tsvidpeer']);
  try {
    warnings.length = 0;
    await new BridgeDriver().detach(rec, pair.hostNl, undefined, { log });
    expect(hostVeth('tsviddummy')?.ifindex).toBe(index);
    expect(warnings).toHaveLength(1);
  } finally {
    pair.host.run('ip', ['link', 'del', 'tsviddummy']);
  }
});

it('an old record without hostLink is detached by name, as before', async () => {
  const rec = await wire('vid-legacy');
  const { hostLink: _drop, ...legacy } = rec;
  await new BridgeDriver().detach(legacy, pair.hostNl, undefined, {});
  expect(hostVeth(rec.hostIfname)).toBeUndefined();
  expect(pair.ctr.linkNames()).toEqual(['lo']);
});

// The host end's MAC is given at creation, so the kernel marks it set (addr_assign_type 3,
// NET_ADDR_SET) and udev's MACAddressPolicy=persistent, which rewrites only random addresses (1),
// leaves it alone: the MAC in the record stays the link's. /sys shows the namespace of whoever
// mounted it: a fresh sysfs in a private mount namespace inside the scratch host namespace.
it('the host end\'s MAC is set at creation (addr_assign_type 3) and is the recorded one', async () => {
  const rec = await wire('vid-macset');
  try {
    const sysfs = `mount -t sysfs none /sys && cat /sys/class/net/${rec.hostIfname}/addr_assign_type`;
    expect(pair.host.run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', sysfs]).trim()).toBe('3');
    const live = pair.host.ipJson<{ address: string }[]>(['link', 'show', rec.hostIfname])[0]?.address;
    expect(rec.hostLink?.mac).toBe(live);
    expect(live).not.toMatch(/^02:42:/);
    // The container end's MAC is still the one containerMac chose (none given, no IPv4: random).
    expect(pair.ctr.ipJson<{ address: string }[]>(['link', 'show', 'eth0'])[0]?.address).toBe(rec.mac);
  } finally {
    await new BridgeDriver().detach(rec, pair.hostNl, undefined, {});
  }
});

// A container with CAP_NET_ADMIN may move its eth0 into a namespace of its own making (`ip link set
// eth0 netns nested`): the peer's index and namespace change, the host end stays what attach made
// (its name, index and the MAC it was created with). When that nested namespace outlives the container (a
// pin the container handed out, a bind mount on a shared propagation), the kernel never deletes
// the pair: detach must delete the host end itself, on every door's path, never leave it for gc.
describe('detach after the container moved its eth0 into a nested namespace', () => {
  const variants: [string, { netnsGoing?: boolean; deferLinkDelete?: boolean }][] = [
    ['plain', {}],
    ['netnsGoing (shim, hook poststop with its pin)', { netnsGoing: true }],
    ['deferLinkDelete (hook poststop, CNI DEL)', { deferLinkDelete: true }],
  ];
  // collide: the nested namespace already has a link at eth0's index, so the move gives it another.
  it.each(variants.flatMap(([label, opts]) => [false, true].map((collide) => [label, collide, opts] as const)))('removes the host end (%s; index taken in the nested namespace: %s)', async (_label, collide, opts) => {
    const nested = await scratchNetns('tsVidNest');
    try {
      const rec = await wire(`vid-nested-${Object.keys(opts).join('') || 'plain'}-${String(collide)}`);
      if (collide) nested.run('ip', ['link', 'add', 'tsviddum', 'index', String(rec.hostLink!.peer), 'type', 'veth', 'peer', 'name', 'tsviddum2']);
      pair.ctr.run('ip', ['link', 'set', 'eth0', 'netns', String(nested.pid)]);
      if (collide) nested.run('ip', ['link', 'del', 'tsviddum']);
      expect(nested.linkNames()).toContain('eth0');
      expect(pair.ctr.linkNames()).toEqual(['lo']);
      warnings.length = 0;
      // deferLinkDelete acts only where the host side is the caller's own namespace: run the
      // detach through a socket of the caller's kind (see dismissVeth); here the scratch host is a
      // path, so it is the plain delete — what matters is that the host end is not left.
      await new BridgeDriver().detach(rec, pair.hostNl, undefined, { ...opts, log });
      await eventually(async () => hostVeth(rec.hostIfname) === undefined, `host end ${rec.hostIfname} removed`, 5_000);
      expect(nested.linkNames()).toEqual(['lo']);
      expect(warnings).toEqual([]);
    } finally {
      await nested.destroy();
    }
  });

  // systemd-udevd's default MACAddressPolicy=persistent (99-default.link, systemd >= 242) gives a
  // new link whose MAC the kernel chose at random one derived from its name, moments after it is
  // created: the MAC attach recorded from the creation echo is then not the live one. The peer,
  // still where attach put it, says the link is tsrun's: detach must still remove it.
  it.each(variants)('removes the host end whose MAC the host changed after attach, the peer in place (%s)', async (_label, opts) => {
    const rec = await wire(`vid-udev-${Object.keys(opts).join('') || 'plain'}`);
    pair.host.run('ip', ['link', 'set', 'dev', rec.hostIfname, 'address', '02:5e:ed:00:00:01']);
    warnings.length = 0;
    await new BridgeDriver().detach(rec, pair.hostNl, undefined, { ...opts, log });
    if (opts.netnsGoing) {
      // Retired: off the bridge, left for the kernel to delete with the container's namespace.
      expect(hostVeth(rec.hostIfname)?.master).toBeUndefined();
      pair.host.run('ip', ['link', 'del', rec.hostIfname]);
    } else await eventually(async () => hostVeth(rec.hostIfname) === undefined, `host end ${rec.hostIfname} removed`, 5_000);
    await eventually(async () => pair.ctr.linkNames().length === 1, 'the container end gone with it', 5_000);
    expect(warnings).toEqual([]);
  });

  it('still leaves alone a newer veth of the same name at the same index (another MAC)', async () => {
    const rec = await wire('vid-nested-other');
    // The recorded link is gone and a different veth now holds both its name and its index.
    await new BridgeDriver().detach(rec, pair.hostNl, undefined, {});
    pair.host.run('ip', ['link', 'add', rec.hostIfname, 'index', String(rec.hostLink!.index), 'type', 'veth', 'peer', 'name', 'tsvidpeer2']);
    try {
      warnings.length = 0;
      await new BridgeDriver().detach(rec, pair.hostNl, undefined, { log });
      expect(hostVeth(rec.hostIfname)?.ifindex).toBe(rec.hostLink!.index);
      expect(warnings).toHaveLength(1);
    } finally {
      pair.host.run('ip', ['link', 'del', rec.hostIfname]);
    }
  });
});
