// A container using tsrun's resolver (or the host) to send to a neighbour it may not reach: with
// icc=false, containers of one network cannot talk (port isolation for bridged frames, the
// isolation drop for routed ones). The guard pins every source a container sends except
// link-local ones (with the port's MAC: the kernel derives them inside the container), so a
// query to the resolver FROM a neighbour's link-local address would have its answer sent to
// that neighbour, a datagram whose source port is 53 and part of whose content (the question)
// the attacker chose, into any UDP port of a container it must not reach. It does not: the
// resolver answers no link-local source (tested here, so that a change to its sockets that would
// make it do so is caught).
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { BridgeWorld, type RunningContainer } from '../../harness/bridge-world.js';
import { linkLocalOf, macOf, nsRunner, sendUdp6, udpSink } from './frames.js';
import type { Netns } from '../../harness/sandbox.js';

let w: BridgeWorld;
let attacker: RunningContainer, victim: RunningContainer;
const NET = 'i10rf';
const GW6 = 'fd72::1';
beforeAll(async () => {
  w = await BridgeWorld.create('i10rf', { outside: false });
  w.tsrunOk(['network', 'create', NET, '--subnet', '10.72.0.0/24', '--ipv6-subnet', 'fd72::/64', '-o', 'icc=false']);
  attacker = await w.start(['--net', NET], 'sleep 600');
  victim = await w.start(['--net', NET], 'sleep 600');
});
afterAll(async () => {
  await w?.stopAll();
  w?.host.tsrun(['network', 'rm', '--force', NET]);
  await w?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rec = (id: string) => w.endpoint(id, NET) as ReturnType<BridgeWorld['endpoint']> & { mac: string; ipv6: { address: string } };

const inNs = (netnsPath: string): Netns => nsRunner(w.host.ns, netnsPath);
const linkLocal = (netnsPath: string, dev: string): Promise<string> => linkLocalOf(w.host.ns, netnsPath, dev);

/** A DNS query (A, IN) for `name`, as hex. */
function dnsQuery(name: string): string {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]).toString('hex');
}

it('icc=false: a query to the resolver from a neighbour\'s link-local address sends the neighbour nothing', async () => {
  const a = rec(attacker.id);
  const v = rec(victim.id);
  const victimLL = await linkLocal(v.netnsPath, 'eth0');
  await linkLocal(a.netnsPath, 'eth0');
  const gatewayMac = macOf(w.host.ns, `ts-${NET}`);
  const sink = udpSink(w.host.ns, v.netnsPath, 7777, 6);
  try {
    await sink.ready;
    // the control: the resolver answers the attacker's query from its own address; one from its
    // own link-local address gets no answer at all (the resolver's sockets are bound to the
    // gateway's address, not to a device, so a reply to fe80::… without a scope cannot be sent)
    const own = await linkLocal(a.netnsPath, 'eth0');
    const mine = udpSink(w.host.ns, a.netnsPath, 7778, 6);
    await mine.ready;
    try {
      sendUdp6(inNs(a.netnsPath), { ifname: 'eth0', dmac: gatewayMac, src: own, dst: GW6, sport: 7778, dport: 53, payload: `hex:${dnsQuery(`${attacker.id}.`)}` });
      await sleep(700);
      expect(mine.received()).toBe('');
      sendUdp6(inNs(a.netnsPath), { ifname: 'eth0', dmac: gatewayMac, src: a.ipv6.address, dst: GW6, sport: 7778, dport: 53, payload: `hex:${dnsQuery(`${attacker.id}.`)}` });
      await sleep(700);
      expect(mine.received().length).toBeGreaterThan(0);
    } finally {
      mine.stop();
    }
    sendUdp6(inNs(a.netnsPath), { ifname: 'eth0', dmac: gatewayMac, src: victimLL, dst: GW6, sport: 7777, dport: 53, payload: `hex:${dnsQuery(`${attacker.id}.`)}` });
    sendUdp6(inNs(a.netnsPath), { ifname: 'eth0', dmac: gatewayMac, src: victimLL, dst: GW6, sport: 7777, dport: 53, payload: `hex:${dnsQuery('reflected.example.')}` });
    await sleep(1500);
    expect(sink.received()).toBe('');
  } finally {
    sink.stop();
  }
});

// icc=false holds through published ports too: a neighbour's published port, sent to at the
// gateway (a host address: DNAT back into the same bridge), is not reached either (stricter than
// docker, whose proxy relays such a hairpin); the host reaches it (the mapping works).
it('icc=false: a neighbour is not reached through its published port on the gateway either', async () => {
  const pub = await w.start(['--net', NET, '-p', '8471:7777/udp'], 'sleep 600');
  const p = rec(pub.id);
  const sink = udpSink(w.host.ns, p.netnsPath, 7777, 4);
  const send = (netnsPath: string, ip: string, port: number, payload: string) =>
    w.host.ns.exec('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.send('${payload}',${port},'${ip}',()=>s.close())`]);
  try {
    await sink.ready;
    send(rec(attacker.id).netnsPath, p.ipv4!.address, 7777, 'direct');
    send(rec(attacker.id).netnsPath, '10.72.0.1', 8471, 'via-gateway');
    send(w.host.ns.path, '10.72.0.1', 8471, 'from-host');
    await sleep(700);
    expect(sink.received()).toContain('from-host');
    expect(sink.received()).not.toContain('direct');
    expect(sink.received()).not.toContain('via-gateway');
  } finally {
    sink.stop();
    await pub.stop();
  }
});
