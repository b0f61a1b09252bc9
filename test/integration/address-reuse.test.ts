// An address handed to a new container right after its previous holder left: the host and the
// other containers on the bridge reach the new holder with their first packet. Their neighbour
// caches still map the address to the previous holder's MAC; the new holder's MAC follows from
// the IPv4 address (the same MAC for the same address, as with Docker), and the host's entries
// for the address are dropped at attach (for the MACs that still change: --mac, IPv6-only).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld } from '../harness/bridge-world.js';
import { PROJECT_ROOT } from '../harness/sandbox.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('reuse');
  w.tsrunOk(['network', 'create', 'reuse6', '--subnet', '10.32.6.0/24', '--ipv6-subnet', 'fd00:32:6::/64']);
});
afterAll(async () => {
  w?.host.tsrun(['network', 'rm', '--force', 'reuse6']);
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

/** One echo request, one second to answer: no second try for a stale cache to heal. */
function pingOnce(address: string, from?: { id: string; network: string }): boolean {
  const ping = address.includes(':') ? 'ping6' : 'ping';
  if (from) return w.inContainer(from.id, from.network, `${ping} -q -c1 -W1 ${address}`).status === 0;
  return w.host.ns.exec('/bin/busybox', [ping, '-q', '-c1', '-W1', address]).status === 0;
}

/** By netlink: nsenter --net leaves /sys showing the sandbox host's links. */
function macOf(id: string, network: string): string {
  return /link\/ether ([0-9a-f:]{17})/.exec(w.inContainer(id, network, 'ip -o link show eth0').stdout)?.[1] ?? '';
}

/** The host's neighbour entry for `address` on `bridge` (empty when it has none). */
function hostNeighbour(address: string, bridge: string): string {
  return w.host.ns.exec('ip', ['neigh', 'show', address, 'dev', bridge]).stdout.trim();
}

describe('an address handed on at once', () => {
  it('IPv4: the host and a peer reach the new holder with one ping; its MAC is derived from the address', async () => {
    const X = '10.88.44.7';
    const b = await w.start([], 'sleep 600');
    const a = await w.start(['--ip', X], 'sleep 600');
    // Both learn X's MAC.
    expect(pingOnce(X)).toBe(true);
    expect(pingOnce(X, { id: b.id, network: 'tsrun' })).toBe(true);
    expect(macOf(a.id, 'tsrun')).toBe('02:42:0a:58:2c:07');
    await a.stop();
    const c = await w.start(['--ip', X], 'sleep 600');
    expect(w.ip(c.id)).toBe(X);
    expect(pingOnce(X)).toBe(true);
    expect(pingOnce(X, { id: b.id, network: 'tsrun' })).toBe(true);
    expect(macOf(c.id, 'tsrun')).toBe('02:42:0a:58:2c:07');
    expect(hostNeighbour(X, 'tsrun0')).toContain('lladdr 02:42:0a:58:2c:07');
  });

  it('dual stack: IPv4 and IPv6 of the new holder, from the host and from a peer, with one ping each', async () => {
    const X = '10.32.6.9';
    const X6 = 'fd00:32:6::9';
    const net = ['--net', 'reuse6'];
    const b = await w.start(net, 'sleep 600');
    const a = await w.start([...net, '--ip', X, '--ip6', X6], 'sleep 600');
    for (const addr of [X, X6]) {
      expect(pingOnce(addr)).toBe(true);
      expect(pingOnce(addr, { id: b.id, network: 'reuse6' })).toBe(true);
    }
    await a.stop();
    const c = await w.start([...net, '--ip', X, '--ip6', X6], 'sleep 600');
    for (const addr of [X, X6]) {
      expect(pingOnce(addr)).toBe(true);
      expect(pingOnce(addr, { id: b.id, network: 'reuse6' })).toBe(true);
    }
    expect(macOf(c.id, 'reuse6')).toBe('02:42:0a:20:06:09');
  });

  it('a user-given MAC that differs from the previous holder: the host reaches the new holder with one ping', async () => {
    const X = '10.88.44.8';
    // Another port keeps the bridge's carrier up: with none, the kernel flushes the bridge's
    // neighbour entries as the last port goes, and nothing stale would be left to test.
    await w.start([], 'sleep 600');
    const a = await w.start(['--ip', X, '--mac', '02:aa:00:00:00:01'], 'sleep 600');
    expect(pingOnce(X)).toBe(true);
    expect(hostNeighbour(X, 'tsrun0')).toContain('lladdr 02:aa:00:00:00:01');
    await a.stop();
    await w.start(['--ip', X, '--mac', '02:aa:00:00:00:02'], 'sleep 600');
    expect(pingOnce(X)).toBe(true);
    expect(hostNeighbour(X, 'tsrun0')).toContain('lladdr 02:aa:00:00:00:02');
  });

  it('the same for an IPv6 address: the host reaches the new holder (another --mac) with one ping', async () => {
    const X6 = 'fd00:32:6::10';
    const net = ['--net', 'reuse6'];
    await w.start(net, 'sleep 600');
    const a = await w.start([...net, '--ip6', X6, '--mac', '02:aa:00:00:01:01'], 'sleep 600');
    expect(pingOnce(X6)).toBe(true);
    const bridge = JSON.parse(w.tsrunOk(['network', 'inspect', 'reuse6'])).bridge as string;
    expect(hostNeighbour(X6, bridge)).toContain('lladdr 02:aa:00:00:01:01');
    await a.stop();
    await w.start([...net, '--ip6', X6, '--mac', '02:aa:00:00:01:02'], 'sleep 600');
    expect(pingOnce(X6)).toBe(true);
    expect(hostNeighbour(X6, bridge)).toContain('lladdr 02:aa:00:00:01:02');
  });
});

describe('two successive holders of an address share a MAC', () => {
  it('a stale record of the previous holder (same address, same MAC) torn down by gc leaves the new holder whole', async () => {
    // The MAC follows from the address, so a record of the address's previous holder names the
    // new holder's MAC too. Nothing tsrun tears down for that record may reach the new holder:
    // not its veth (the link at the recorded index is checked by name, kind and peer, never by
    // MAC), not its guard elements (keyed by the host veth's name), not its lease (released
    // by compare of the exact holder value).
    const store = path.join(w.host.root, 'lib', 'store');
    const recordOf = (id: string) => JSON.parse(readFileSync(path.join(store, 'endpoints', id, 'reuse6'), 'utf8')) as Record<string, unknown>;
    const peer = await w.start(['--net', 'reuse6'], 'sleep 600');
    const holder = await w.start(['--net', 'reuse6'], 'sleep 600');
    const rec = recordOf(holder.id);
    const ip = w.ip(holder.id, 'reuse6');
    const lease = readFileSync(path.join(store, 'ipam', 'reuse6', ip), 'utf8');
    const dead = spawnSync('true').pid!;
    // The previous holder: same address and MAC, a veth at the very index (worst case), its own
    // name, and its holder process gone.
    const ghost = { ...rec, containerId: 'reuse-ghost', hostIfname: 'tsv0badf00d', ipv4: { ...(rec.ipv4 as object), lease: 'reuse-ghost' }, netnsPath: `/proc/${dead}/ns/net`, netnsHolder: { pid: dead, start: '1' } };
    delete (ghost as { ipv6?: unknown }).ipv6;
    mkdirSync(path.join(store, 'endpoints', 'reuse-ghost'), { recursive: true });
    writeFileSync(path.join(store, 'endpoints', 'reuse-ghost', 'reuse6'), JSON.stringify(ghost));
    const gc = w.host.tsrun(['gc']);
    expect(gc.status).toBe(0);
    expect(gc.stdout + gc.stderr).toContain('reuse-ghost');
    expect(() => w.endpoint('reuse-ghost', 'reuse6')).toThrow(/no endpoint record/);
    // The new holder: its veth on the bridge, its lease, its record, and traffic both ways
    // through its guard elements (MAC and source address checked per port).
    expect(w.host.ns.exec('ip', ['-o', 'link', 'show', String(rec.hostIfname)]).stdout).toContain('master');
    expect(readFileSync(path.join(store, 'ipam', 'reuse6', ip), 'utf8')).toBe(lease);
    expect(recordOf(holder.id)).toEqual(rec);
    expect(pingOnce(ip, { id: peer.id, network: 'reuse6' })).toBe(true);
    expect(pingOnce('10.32.6.1', { id: holder.id, network: 'reuse6' })).toBe(true);
    expect(pingOnce(ip)).toBe(true);
    // Nor its conntrack flows: no flush is left waiting for its address (conntrack-reuse.ts: the
    // next allocation of any marked address on the network forgets every marked address's flows).
    expect(w.host.ns.exec('ls', ['-a', path.join(store, 'ipam', 'reuse6')]).stdout).not.toContain(`_flush.${ip}\n`);
  });

  it('an attach is not "already attached" by a stale record whose namespace identity and MAC a live container now has', async () => {
    // The record's namespace identity (dev:inode) is reused once its namespace is freed, and its
    // MAC is the address's: a stale record of the address's previous holder can name a live
    // namespace and an eth0 with its very MAC. Its veth pair is what tells it is gone.
    const store = path.join(w.host.root, 'lib', 'store');
    const recordOf = (id: string) => JSON.parse(readFileSync(path.join(store, 'endpoints', id, 'reuse6'), 'utf8')) as Record<string, unknown>;
    const holder = await w.start(['--net', 'reuse6'], 'sleep 600');
    const rec = recordOf(holder.id);
    const ip = w.ip(holder.id, 'reuse6');
    const ghostId = 'reuse-ghost2';
    const pin = path.join(w.host.root, 'run', 'netns', ghostId);
    symlinkSync(String(rec.netnsPath), pin);
    const hostLink = rec.hostLink as { index: number; peer?: number };
    const ghost = { ...rec, containerId: ghostId, hostIfname: 'tsv0badf0d2', hostLink: { ...hostLink, index: 99_999 }, ipv4: { ...(rec.ipv4 as object), lease: ghostId }, netnsPath: pin };
    delete (ghost as { ipv6?: unknown }).ipv6;
    delete (ghost as { netnsHolder?: unknown }).netnsHolder;
    mkdirSync(path.join(store, 'endpoints', ghostId), { recursive: true });
    writeFileSync(path.join(store, 'endpoints', ghostId, 'reuse6'), JSON.stringify(ghost));
    try {
      const r = w.host.ns.exec(process.execPath, [path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/dns-churn.js'), 'connect', ghostId, 'reuse6', 'eth0'], { env: w.host.env });
      // Not taken for attached: the stale record is torn down, and the attach (eth0 is taken in
      // that namespace) fails with one line and leaves nothing.
      expect(r.stdout).not.toContain(ghostId);
      expect(r.status).not.toBe(0);
      expect(() => w.endpoint(ghostId, 'reuse6')).toThrow(/no endpoint record/);
    } finally {
      rmSync(pin, { force: true });
      rmSync(path.join(store, 'endpoints', ghostId), { recursive: true, force: true });
    }
    // The live container is whole: its eth0, veth on the bridge, lease, record, traffic.
    expect(macOf(holder.id, 'reuse6')).toBe(rec.mac);
    expect(w.host.ns.exec('ip', ['-o', 'link', 'show', String(rec.hostIfname)]).stdout).toContain('master');
    expect(recordOf(holder.id)).toEqual(rec);
    expect(pingOnce(ip)).toBe(true);
    expect(pingOnce('10.32.6.1', { id: holder.id, network: 'reuse6' })).toBe(true);
  });
});
