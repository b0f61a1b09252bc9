// An address handed to a new endpoint with another MAC: the other containers of the network must
// learn the new MAC at the attach, not when their neighbour entry for the address runs out (tens
// of seconds of frames sent to a MAC no port has). tsrun announces the endpoint from the bridge
// (runtime/drivers/announce.ts) where the MAC does not follow from the IPv4 address: an endpoint
// without IPv4 (random MAC), a user's MAC, and IPv6 addresses. Real kernel, real frames: a peer
// learns the old holder's MAC by talking to it, the old holder goes, the new one comes, and the
// peer's neighbour table is read right after the attach.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { NetworkDef } from '../../../config/networks.js';
import { BridgeDriver } from '../../../runtime/drivers/bridge.js';
import type { Logger } from '../../../runtime/log.js';
import type { EndpointRecord } from '../../../runtime/records.js';
import { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { Transaction } from '../../../runtime/tx.js';
import { eventually, scratchNetns, type ScratchNetns } from '../../harness/sandbox.js';

const warnings: string[] = [];
const log = { warn: (_o: unknown, msg: string) => void warnings.push(msg), info() {}, debug() {}, error() {} } as unknown as Logger;
const net = { name: 'annnet', driver: 'bridge', bridge: 'tsannbr', mtu: 1500, icc: true } as unknown as NetworkDef;
const driver = new BridgeDriver();

let host: ScratchNetns;
let hostNl: Rtnl;
const spaces: ScratchNetns[] = [];

beforeAll(async () => {
  host = await scratchNetns('tsAnnHost');
  host.run('ip', ['link', 'add', 'tsannbr', 'type', 'bridge']);
  host.run('ip', ['link', 'set', 'tsannbr', 'up']);
  hostNl = Rtnl.open(host.path);
});
afterAll(async () => {
  hostNl?.close();
  for (const s of spaces) await s.destroy();
  await host?.destroy();
});

interface Wired {
  ns: ScratchNetns;
  rec: EndpointRecord;
}

async function wire(id: string, addr: { ipv4?: string; ipv6?: string; mac?: string }): Promise<Wired> {
  const ns = await scratchNetns(`tsAnn-${id}`);
  spaces.push(ns);
  const ctrNl = Rtnl.open(ns.path);
  try {
    const ep = await driver.attach(
      {
        containerId: id,
        net,
        host: hostNl,
        container: ctrNl,
        containerNetnsPath: ns.path,
        ifname: 'eth0',
        log,
        ...(addr.mac ? { mac: addr.mac } : {}),
        ...(addr.ipv4 ? { ipv4: { address: addr.ipv4, prefixLength: 24 } } : {}),
        ...(addr.ipv6 ? { ipv6: { address: addr.ipv6, prefixLength: 64 } } : {}),
      },
      new Transaction(),
    );
    const rec = { containerId: id, network: net.name, driver: 'bridge', ifname: 'eth0', hostIfname: ep.hostIfname, hostLink: ep.hostLink, mac: ep.mac, ports: [], hostNetns: '', containerNetns: '', netnsPath: ns.path, created: '' } as EndpointRecord;
    return { ns, rec };
  } finally {
    ctrNl.close();
  }
}

/** The peer's neighbour entry for `ip` on eth0: its MAC, or undefined. */
function neighbourMac(peer: ScratchNetns, ip: string): string | undefined {
  return peer.ipJson<{ dst: string; lladdr?: string }[]>(['neigh', 'show', 'to', ip, 'dev', 'eth0']).find((n) => n.dst === ip)?.lladdr;
}

/** The peer sends one UDP datagram to `ip`: its kernel resolves the address (ARP or NDP). */
function talk(peer: ScratchNetns, ip: string): void {
  peer.run(process.execPath, ['-e', `const s=require('dgram').createSocket('${ip.includes(':') ? 'udp6' : 'udp4'}');s.send('x',9,'${ip}',()=>s.close())`]);
}

it.each<[string, { ipv4?: string; ipv6?: string }, string | undefined, string | undefined, { ipv4?: string; ipv6?: string }]>([
  ['an IPv6-only endpoint (random MAC)', { ipv6: 'fd72::9' }, undefined, undefined, { ipv6: 'fd72::2' }],
  ['a user-given MAC on IPv4', { ipv4: '10.72.0.9' }, '02:aa:00:00:00:01', '02:aa:00:00:00:02', { ipv4: '10.72.0.2' }],
  ['a dual-stack endpoint, its IPv6 address held before by a container with another IPv4', { ipv6: 'fd72::19' }, undefined, undefined, { ipv4: '10.72.0.3', ipv6: 'fd72::3' }],
])('the peer learns the new MAC at the attach: %s', async (label, addr, mac1, mac2, peerAddr) => {
  const tag = label.slice(3, 10).replace(/[^a-z0-9]/gi, '');
  const peer = await wire(`peer${tag}`, peerAddr);
  const target = addr.ipv6 ?? addr.ipv4!;
  // The first holder (for the dual-stack case: IPv4 .20, so its MAC is .20's).
  const first = await wire(`first${tag}`, { ...addr, ...(label.startsWith('a dual') ? { ipv4: '10.72.0.20' } : {}), ...(mac1 ? { mac: mac1 } : {}) });
  talk(peer.ns, target);
  await eventually(async () => neighbourMac(peer.ns, target) === first.rec.mac, `the peer to learn ${first.rec.mac} for ${target}`, 5_000);
  await driver.detach(first.rec, hostNl, undefined, {});

  const second = await wire(`second${tag}`, { ...addr, ...(label.startsWith('a dual') ? { ipv4: '10.72.0.21' } : {}), ...(mac2 ? { mac: mac2 } : {}) });
  expect(second.rec.mac).not.toBe(first.rec.mac);
  // Right after the attach, before any timer of the peer's could have run out.
  expect(neighbourMac(peer.ns, target)).toBe(second.rec.mac);
  expect(warnings).toEqual([]);
  // The hairpin, off while the announcement went out (so it did not come back in), is on again.
  expect(host.link(second.rec.hostIfname).linkinfo?.info_slave_data?.hairpin).toBe(true);
  await driver.detach(second.rec, hostNl, undefined, {});
  await driver.detach(peer.rec, hostNl, undefined, {});
});
