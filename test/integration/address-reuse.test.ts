// An address handed to a new container right after its previous holder left: the host and the
// other containers on the bridge reach the new holder with their first packet. Their neighbour
// caches still map the address to the previous holder's MAC; the new holder's MAC follows from
// the IPv4 address (the same MAC for the same address, as with Docker), and the host's entries
// for the address are dropped at attach (for the MACs that still change: --mac, IPv6-only).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld } from '../harness/bridge-world.js';

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
