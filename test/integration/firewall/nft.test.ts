// The nft backend against a real kernel, always inside throwaway network namespaces: nft never
// runs in the machine's own namespace. Part 1 checks the table and its elements; part 2 sends
// real packets through a small host/containers/outside topology.
//
// Everything here runs through the default backend: element batches (attach, detach) straight to
// nf_tables over netlink, everything else through libnftables in-process. nft-lib.test.ts runs
// this same file again with libnftables for every batch (TSRUN_TEST_NFT_BACKEND=lib) and
// nft-process.test.ts with the nft process (=process), so all three pass the same golden batches
// and the same packets.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ConflictError } from '../../../config/errors.js';
import { NftFirewall } from '../../../runtime/firewall/backend.js';
import { RULE_COUNT, listElements, type NftBatch } from '../../../runtime/firewall/nft-rules.js';
import { applyBatch, countRules, listTsrunTable, type NftBackendKind } from '../../../runtime/firewall/nft.js';
import type { FirewallEndpoint, FirewallNetwork } from '../../../runtime/firewall/types.js';
import { ScratchNs, eventually as waitFor, startWhoServer, who } from '../../harness/sandbox.js';

jest.setTimeout(60_000);

const wanted = process.env.TSRUN_TEST_NFT_BACKEND;
const backend: NftBackendKind = wanted === 'process' || wanted === 'lib' ? wanted : 'auto';

const GOLDEN = path.join(process.cwd(), 'test', 'unit', 'firewall', 'golden');
const golden = (name: string): NftBatch => JSON.parse(readFileSync(path.join(GOLDEN, `${name}.json`), 'utf8')) as NftBatch;

const net0: FirewallNetwork = { name: 'tsb-net0', bridge: 'tsB0', subnets4: ['10.99.0.0/24'], subnets6: ['fd00:99::/64'], internal: false, icc: true };
const net1: FirewallNetwork = { name: 'tsb-net1', bridge: 'tsB1', subnets4: ['10.98.0.0/24'], subnets6: [], internal: false, icc: true };
const endpoint = (i: number): FirewallEndpoint => ({
  containerId: `tsb-c${i}`,
  ipv4: `10.99.${Math.floor(i / 250)}.${(i % 250) + 2}`,
  ipv6: `fd00:99::${(i + 2).toString(16)}`,
  ports: [
    { hostPort: 20000 + i, containerPort: 80, protocol: 'tcp' },
    { hostIp: '127.0.0.1', hostPort: 30000 + i, containerPort: 53, protocol: 'udp' },
  ],
});

/** Deletes table inet tsrun, also when there is none (add then delete, as nft 1.0.6 has no destroy). */
const removeTable = (ns: ScratchNs) => ns.run(['nft', 'add table inet tsrun; delete table inet tsrun']);

describe(`nft backend (${backend}): table inet tsrun and its elements`, () => {
  let ns: ScratchNs;
  let fw: NftFirewall;
  const nftText = (...args: string[]) => ns.run(['nft', ...args]);

  beforeEach(async () => {
    ns = await ScratchNs.create('tsB-fw');
    fw = new NftFirewall({ backend, netns: ns.path });
  });
  afterEach(async () => {
    await ns?.destroy();
  });

  it('creates the base table once: re-applying adds no rule', async () => {
    await fw.ensureBase();
    await fw.ensureBase();
    await new NftFirewall({ backend, netns: ns.path }).ensureBase(); // a fresh process: checks, adds nothing
    expect(await countRules({ backend, netns: ns.path })).toBe(RULE_COUNT);
    const text = await nftText('list', 'table', 'inet', 'tsrun');
    for (const line of [
      'type nat hook prerouting priority dstnat; policy accept;',
      'type nat hook output priority -100; policy accept;',
      'type filter hook forward priority filter; policy accept;',
      'ip daddr 127.0.0.0/8 iifname != "lo" drop',
      'ip6 daddr ::1 iifname != "lo" drop',
      'ct state established,related accept',
      'oifname @bridges drop',
      'meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @pub4_any_addr:meta l4proto . th dport map @pub4_any_port',
      'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub4_ip_addr:ip daddr . meta l4proto . th dport map @pub4_ip_port',
      'ip saddr @nat_src4 oifname != @bridges masquerade',
      'ct status dnat ip saddr @subnets4 oifname @bridges masquerade',
      'ip saddr 127.0.0.0/8 oifname @bridges masquerade',
      'iifname . oifname @bridge_pairs accept',
      'iifname @bridges oifname @bridges drop',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('lets exactly one of several racing processes create the table', async () => {
    await Promise.all(Array.from({ length: 6 }, () => new NftFirewall({ backend, netns: ns.path }).ensureBase()));
    expect(await countRules({ backend, netns: ns.path })).toBe(RULE_COUNT);
  });

  it('leaves other tables alone', async () => {
    await nftText('add table ip tsBother');
    await nftText('add chain ip tsBother c { type filter hook forward priority 0; policy accept; }');
    await nftText('add rule ip tsBother c counter accept');
    const before = await nftText('list', 'table', 'ip', 'tsBother');
    await fw.ensureBase();
    await fw.addNetwork(net0);
    await fw.removeNetwork(net0);
    await removeTable(ns);
    expect(await nftText('list', 'table', 'ip', 'tsBother')).toBe(before);
  });

  it('adds network and endpoint elements that nft lists back, tagged with their owners', async () => {
    await fw.ensureBase();
    await fw.addNetwork(net0);
    await fw.addNetwork({ ...net1, internal: true });
    await fw.attach(net0, endpoint(0));
    await fw.attach(net0, endpoint(0)); // idempotent
    const listing = (await listTsrunTable({ backend, netns: ns.path }))!;
    const els = listElements(listing).map((e) => `${e.set} ${JSON.stringify(e.key)} ${JSON.stringify(e.value ?? null)} ${e.comment}`);
    expect(els.sort()).toEqual(
      [
        'bridges "tsB0" null net:tsb-net0',
        'bridges "tsB1" null net:tsb-net1',
        'bridge_pairs {"concat":["tsB0","tsB0"]} null net:tsb-net0',
        'bridge_pairs {"concat":["tsB1","tsB1"]} null net:tsb-net1',
        'internal_bridges "tsB1" null net:tsb-net1',
        'subnets4 {"prefix":{"addr":"10.99.0.0","len":24}} null net:tsb-net0',
        'subnets4 {"prefix":{"addr":"10.98.0.0","len":24}} null net:tsb-net1',
        'subnets6 {"prefix":{"addr":"fd00:99::","len":64}} null net:tsb-net0',
        'nat_src4 {"prefix":{"addr":"10.99.0.0","len":24}} null net:tsb-net0',
        'nat_src6 {"prefix":{"addr":"fd00:99::","len":64}} null net:tsb-net0',
        'pub4_any_addr {"concat":["tcp",20000]} "10.99.0.2" ctr:tsb-c0',
        'pub4_any_port {"concat":["tcp",20000]} 80 ctr:tsb-c0',
        'pub6_any_addr {"concat":["tcp",20000]} "fd00:99::2" ctr:tsb-c0',
        'pub6_any_port {"concat":["tcp",20000]} 80 ctr:tsb-c0',
        'pub4_ip_addr {"concat":["127.0.0.1","udp",30000]} "10.99.0.2" ctr:tsb-c0',
        'pub4_ip_port {"concat":["127.0.0.1","udp",30000]} 53 ctr:tsb-c0',
      ].sort(),
    );
    expect(await fw.listOwners()).toEqual({ containers: ['tsb-c0'], networks: ['tsb-net0', 'tsb-net1'] });
  });

  it('keeps the rule count constant from 1 to 50 endpoints', async () => {
    await fw.ensureBase();
    await fw.addNetwork(net0);
    await fw.attach(net0, endpoint(0));
    const atOne = await countRules({ backend, netns: ns.path });
    for (let i = 1; i < 50; i++) await fw.attach(net0, endpoint(i));
    expect(await countRules({ backend, netns: ns.path })).toBe(atOne);
    expect(atOne).toBe(RULE_COUNT);
    const els = listElements((await listTsrunTable({ backend, netns: ns.path }))!);
    expect(els.filter((e) => e.set.startsWith('pub'))).toHaveLength(50 * 6);
    expect((await fw.listOwners()).containers).toHaveLength(50);
  });

  it('self-check (intact): a whole table passes with 50 endpoints; a rule deleted or added by hand, or either table gone, fails it', async () => {
    const fresh = () => new NftFirewall({ backend, netns: ns.path });
    await fw.ensureBase();
    await fw.addNetwork(net0);
    for (let i = 0; i < 50; i++) await fw.attach(net0, endpoint(i));
    expect(await fresh().intact()).toBe(true);
    const handle = /masquerade comment "a: outbound NAT v4.*# handle (\d+)/.exec(await nftText('-a', 'list', 'chain', 'inet', 'tsrun', 'postrouting'))![1]!;
    await nftText('delete', 'rule', 'inet', 'tsrun', 'postrouting', 'handle', handle);
    expect(await fresh().intact()).toBe(false);
    await fresh().ensureBase(); // replaced, elements kept
    expect(await fresh().intact()).toBe(true);
    await nftText('add', 'rule', 'inet', 'tsrun', 'forward', 'accept');
    expect(await fresh().intact()).toBe(false);
    await fresh().ensureBase();
    expect(await fresh().intact()).toBe(true);
    await nftText('delete', 'table', 'bridge', 'tsrun');
    expect(await fresh().intact()).toBe(false);
    await removeTable(ns);
    expect(await fresh().intact()).toBe(false);
  });

  it('removes idempotently: twice, after the table is gone, and never a port someone else took', async () => {
    await fw.ensureBase();
    await fw.addNetwork(net0);
    const a = endpoint(1);
    await fw.attach(net0, a);
    await fw.removeEndpoint(a);
    await fw.removeEndpoint(a);
    await fw.removeNetwork(net0);
    await fw.removeNetwork(net0);
    expect(listElements((await listTsrunTable({ backend, netns: ns.path }))!)).toEqual([]);

    // Container b publishes the host port a had; a's repeated late detach must leave b alone,
    // also when b got a's very address from IPAM (identical elements but for the owner tag).
    for (const b of [
      { ...endpoint(2), ports: a.ports },
      { ...a, containerId: 'tsb-c2' },
    ]) {
      await fw.attach(net0, a);
      await fw.removeEndpoint(a);
      await fw.attach(net0, b);
      await fw.removeEndpoint(a);
      const left = listElements((await listTsrunTable({ backend, netns: ns.path }))!).filter((e) => e.comment?.startsWith('ctr:'));
      expect(left).toHaveLength(6);
      expect(left.every((e) => e.comment === 'ctr:tsb-c2')).toBe(true);
      await fw.removeEndpoint(b);
    }
    const b = { ...a, containerId: 'tsb-c2' };
    await fw.attach(net0, b);

    await removeTable(ns);
    await removeTable(ns);
    await fw.removeEndpoint(b);
    await fw.removeNetwork(net0);
  });

  it('refuses a host port another container publishes, naming it', async () => {
    await fw.ensureBase();
    await fw.attach(net0, endpoint(1));
    const rival: FirewallEndpoint = { containerId: 'tsb-rival', ipv4: '10.99.0.77', ports: [{ hostPort: 20001, containerPort: 8080, protocol: 'tcp' }] };
    const err = await fw.attach(net0, rival).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toMatch(/host port 20001\/tcp is already published by container tsb-c1/);
    // Nothing of the rival's batch was applied.
    expect((await fw.listOwners()).containers).toEqual(['tsb-c1']);
  });

  it('purges every element of a container or network found only by its tag (gc without a record)', async () => {
    await fw.ensureBase();
    await fw.addNetwork(net0);
    await fw.attach(net0, endpoint(5));
    await fw.attach(net0, endpoint(6));
    expect(await fw.purge({ container: 'tsb-c5' })).toBe(6);
    expect(await fw.purge({ container: 'tsb-c5' })).toBe(0);
    expect(await fw.purge({ network: 'tsb-net0' })).toBe(6);
    expect(await fw.listOwners()).toEqual({ containers: ['tsb-c6'], networks: [] });
  });

  it('purges a container\'s elements except those of the endpoints it keeps (attached to another network)', async () => {
    await fw.ensureBase();
    const kept: FirewallEndpoint = { ...endpoint(7), port: { ifname: 'tsv00000007', mac: '02:00:00:00:00:07' } };
    const other: FirewallEndpoint = { containerId: 'tsb-c7', ipv4: '10.98.0.7', ports: [{ hostPort: 20107, containerPort: 80, protocol: 'tcp' }], port: { ifname: 'tsv10000007', mac: '02:00:00:00:10:07' } };
    await fw.attach(net0, kept);
    await fw.attach(net1, other);
    // The other endpoint's 2 port-map elements, 4 guard elements (its port's, its MAC's, its
    // address's, its link-local source's) and 2 neighbour-discovery elements (its MAC's, its
    // link-local address's) go; the kept one's 6 + 5 + 3 stay: purged too, its published ports and
    // its port went dark.
    expect(await fw.purge({ container: 'tsb-c7', keep: [kept] })).toBe(8);
    expect(await fw.purge({ container: 'tsb-c7', keep: [kept] })).toBe(0);
    expect(await fw.purge({ container: 'tsb-c7' })).toBe(6 + 5 + 3);
  });

  it('creates the table on demand when an element is added first', async () => {
    await fw.addNetwork(net0);
    expect(await countRules({ backend, netns: ns.path })).toBe(RULE_COUNT);
  });

  it('repairs a damaged table and replaces an old one, keeping every element', async () => {
    await fw.ensureBase();
    await fw.addNetwork(net0);
    await fw.attach(net0, endpoint(3));
    const before = listElements((await listTsrunTable({ backend, netns: ns.path }))!);
    // Damage: someone deletes a rule.
    const handle = /masquerade comment "a: outbound NAT v4.*# handle (\d+)/.exec(await nftText('-a', 'list', 'chain', 'inet', 'tsrun', 'postrouting'))![1]!;
    await nftText('delete', 'rule', 'inet', 'tsrun', 'postrouting', 'handle', handle);
    expect(await countRules({ backend, netns: ns.path })).toBe(RULE_COUNT - 1);
    await new NftFirewall({ backend, netns: ns.path }).ensureBase();
    expect(await countRules({ backend, netns: ns.path })).toBe(RULE_COUNT);
    expect(listElements((await listTsrunTable({ backend, netns: ns.path }))!)).toEqual(before);

    // An older schema: same set names, different (uncommented) rules.
    await removeTable(ns);
    await ns.run([
      'nft',
      'table inet tsrun { set bridges { type ifname; elements = { "tsB9" }; }; chain forward { type filter hook forward priority 0; policy accept; iifname @bridges accept; }; }',
    ]);
    await new NftFirewall({ backend, netns: ns.path }).ensureBase();
    expect(await countRules({ backend, netns: ns.path })).toBe(RULE_COUNT);
    expect(listElements((await listTsrunTable({ backend, netns: ns.path }))!)).toEqual([{ set: 'bridges', key: 'tsB9' }]);
  });

  it('applies a batch too large for an argument through a temporary file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsB-nft-'));
    try {
      const big = new NftFirewall({ backend, netns: ns.path, argMax: 64, tmpDir: dir });
      await big.ensureBase();
      await big.attach(net0, endpoint(4));
      expect((await big.listOwners()).containers).toEqual(['tsb-c4']);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts the golden batches as they are', async () => {
    await applyBatch(golden('base-table'), { backend, netns: ns.path });
    for (const name of ['network-add', 'network-internal-add', 'endpoint-add', 'endpoint-delete', 'network-delete']) {
      await applyBatch(golden(name), { backend, netns: ns.path, step: name });
    }
    const owners = new Set(listElements((await listTsrunTable({ backend, netns: ns.path }))!).map((e) => e.comment));
    expect(owners).toEqual(new Set(['net:db']));
  });
});

// host (H): bridges tsB0 10.99.0.1/24 fd00:99::1/64 and tsB1 10.98.0.1/24, uplink tsBup
//           192.0.2.1/24 fd00:2::1/64; tsrun's table applied here.
// c1, c3 on tsB0 (10.99.0.2/.3, fd00:99::2/::3); c2 on tsB1 (10.98.0.2); outside (O) on the
// uplink, 192.0.2.2 fd00:2::2, with no route to the container subnets: only NAT brings replies home.
// Every namespace except H runs `busybox httpd` whose /cgi-bin/who answers "<name> <client addr>".
describe(`packets through tsrun rules (${backend})`, () => {
  let H: ScratchNs, c1: ScratchNs, c2: ScratchNs, c3: ScratchNs, O: ScratchNs;
  let fw: NftFirewall;
  let webRoot: string;
  const ep1: FirewallEndpoint = { containerId: 'tsb-web', ipv4: '10.99.0.2', ipv6: 'fd00:99::2', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] };

  async function plugContainer(c: ScratchNs, hostIf: string, bridge: string, v4: string, gw4: string, v6?: string, gw6?: string): Promise<void> {
    await H.sh(`ip link add ${hostIf} type veth peer name eth0 netns ${c.pid}; ip link set ${hostIf} master ${bridge} up`);
    await c.sh(
      `ip addr add ${v4} dev eth0; ip link set eth0 up; ip route add default via ${gw4}` +
        (v6 ? `; ip -6 addr add ${v6} dev eth0 nodad; ip -6 route add default via ${gw6}` : ''),
    );
  }

  beforeAll(async () => {
    [H, c1, c2, c3, O] = await Promise.all([ScratchNs.create('tsB-host'), ScratchNs.create('tsB-c1'), ScratchNs.create('tsB-c2'), ScratchNs.create('tsB-c3'), ScratchNs.create('tsB-out')]);
    await H.sh(
      [
        'ip link add tsB0 type bridge; ip addr add 10.99.0.1/24 dev tsB0; ip -6 addr add fd00:99::1/64 dev tsB0 nodad; ip link set tsB0 up',
        'ip link add tsB1 type bridge; ip addr add 10.98.0.1/24 dev tsB1; ip link set tsB1 up',
        `ip link add tsBup type veth peer name eth0 netns ${O.pid}; ip addr add 192.0.2.1/24 dev tsBup; ip -6 addr add fd00:2::1/64 dev tsBup nodad; ip link set tsBup up`,
        // What the engine does around the firewall:
        'sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.conf.tsB0.route_localnet=1',
      ].join('; '),
    );
    await O.sh('ip addr add 192.0.2.2/24 dev eth0; ip -6 addr add fd00:2::2/64 dev eth0 nodad; ip link set eth0 up');
    await plugContainer(c1, 'tsBv1', 'tsB0', '10.99.0.2/24', '10.99.0.1', 'fd00:99::2/64', 'fd00:99::1');
    await plugContainer(c3, 'tsBv3', 'tsB0', '10.99.0.3/24', '10.99.0.1', 'fd00:99::3/64', 'fd00:99::1');
    await plugContainer(c2, 'tsBv2', 'tsB1', '10.98.0.2/24', '10.98.0.1');
    webRoot = mkdtempSync(path.join(tmpdir(), 'tsB-www-'));
    await Promise.all([
      startWhoServer(c1, path.join(webRoot, 'c1'), 'c1', 80),
      startWhoServer(c2, path.join(webRoot, 'c2'), 'c2', 80),
      startWhoServer(O, path.join(webRoot, 'outside'), 'outside', 80),
    ]);
    // Wait until every path answers at the IP level (IPv6 neighbours, bridge ports).
    for (const [from, to] of [[H, '10.99.0.2'], [H, 'fd00:99::2'], [H, '10.99.0.3'], [H, 'fd00:99::3'], [H, '10.98.0.2'], [H, '192.0.2.2'], [H, 'fd00:2::2']] as const) {
      await waitFor(async () => (await from.tryRun(['/bin/busybox', to.includes(':') ? 'ping6' : 'ping', '-c1', '-W1', to])).ok, `ping ${to}`);
    }
    fw = new NftFirewall({ backend, netns: H.path });
    await fw.ensureBase();
    await fw.addNetwork(net0);
    await fw.addNetwork(net1);
    await fw.attach(net0, ep1);
  });

  afterAll(async () => {
    await Promise.all([H, c1, c2, c3, O].filter(Boolean).map((n) => n.destroy()));
    if (webRoot) rmSync(webRoot, { recursive: true, force: true });
  });

  it('b: outside reaches a published port (DNAT) and the container sees the real client', async () => {
    expect(await who(O, '192.0.2.1:8080')).toBe('c1 192.0.2.2');
    expect(await who(O, '[fd00:2::1]:8080')).toBe('c1 fd00:2::2');
  });

  it('a: container egress leaves with the host address (masquerade)', async () => {
    expect(await who(c1, '192.0.2.2:80')).toBe('outside 192.0.2.1');
    expect(await who(c1, '[fd00:2::2]:80')).toBe('outside fd00:2::1');
    expect(await who(c2, '192.0.2.2:80')).toBe('outside 192.0.2.1');
  });

  it('c: the host reaches the published port on 127.0.0.1 and on its own address', async () => {
    expect(await who(H, '127.0.0.1:8080')).toBe('c1 10.99.0.1');
    expect(await who(H, '192.0.2.1:8080')).toBe('c1 192.0.2.1');
    expect(await who(H, '[fd00:2::1]:8080')).toBe('c1 fd00:2::1');
    // Control: without route_localnet on the bridge the kernel drops the DNATed 127.0.0.1 packet.
    await H.sh('sysctl -qw net.ipv4.conf.tsB0.route_localnet=0');
    try {
      expect(await who(H, '127.0.0.1:8080', 1)).toBeUndefined();
    } finally {
      await H.sh('sysctl -qw net.ipv4.conf.tsB0.route_localnet=1');
    }
  });

  it('c: route_localnet does not open the host\'s loopback services to containers', async () => {
    // A hostile container routes 127.0.0.0/8 to the host over the bridge.
    await startWhoServer(H, path.join(webRoot, 'host'), 'host-loopback', 81);
    await c3.sh('sysctl -qw net.ipv4.conf.eth0.route_localnet=1; ip addr del 127.0.0.1/8 dev lo; ip route add 127.0.0.0/8 via 10.99.0.1');
    try {
      expect(await who(c3, '127.0.0.1:81', 1)).toBeUndefined();
      // Control: the guard rule is what stops it (and ensureBase puts a deleted rule back).
      const handle = /ip daddr 127\.0\.0\.0\/8 iifname != "lo" drop comment .*# handle (\d+)/.exec(await H.run(['nft', '-a', 'list', 'chain', 'inet', 'tsrun', 'prerouting_raw']))![1]!;
      await H.run(['nft', 'delete', 'rule', 'inet', 'tsrun', 'prerouting_raw', 'handle', handle]);
      expect(await who(c3, '127.0.0.1:81')).toBe('host-loopback 10.99.0.3');
      await new NftFirewall({ backend, netns: H.path }).ensureBase();
      expect(await who(c3, '127.0.0.1:81', 1)).toBeUndefined();
    } finally {
      await c3.sh('ip route del 127.0.0.0/8; ip addr add 127.0.0.1/8 dev lo; sysctl -qw net.ipv4.conf.eth0.route_localnet=0');
    }
  });

  it('d: hairpin: a container reaches its own and its neighbour\'s published port via the host', async () => {
    const hairpin = async () => {
      expect(await who(c1, '192.0.2.1:8080')).toBe('c1 10.99.0.1');
      expect(await who(c1, '[fd00:2::1]:8080')).toBe('c1 fd00:99::1');
      expect(await who(c3, '10.99.0.1:8080')).toBe('c1 10.99.0.1');
      expect(await who(c3, '[fd00:2::1]:8080')).toBe('c1 fd00:99::1');
    };
    // Without br_netfilter the DNATed packet is routed back out of the bridge: no port flag needed.
    const brnf = existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables');
    if (brnf) await H.sh('sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0');
    await hairpin();
    if (!brnf) return;
    // With br_netfilter (bridge-nf-call-iptables=1) it is bridged instead, back out of the port it
    // came in by, which needs hairpin mode on that port (set by the netlink layer).
    await H.sh('sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1');
    expect(await who(c1, '192.0.2.1:8080', 1)).toBeUndefined();
    await H.sh('ip link set tsBv1 type bridge_slave hairpin on');
    try {
      await hairpin();
    } finally {
      await H.sh('ip link set tsBv1 type bridge_slave hairpin off');
    }
  });

  it('e: two bridges are isolated both ways; one bridge is not', async () => {
    expect(await who(c3, '10.99.0.2:80')).toBe('c1 10.99.0.3');
    expect(await who(c2, '10.99.0.2:80', 1)).toBeUndefined();
    expect(await who(c1, '10.98.0.2:80', 1)).toBeUndefined();
    // Control: without tsrun's table the host routes between them, so the drop above was ours.
    // (Removing net1's elements alone is not enough: net0's default-deny still drops.)
    await removeTable(H);
    fw = new NftFirewall({ netns: H.path });
    try {
      expect(await who(c2, '10.99.0.2:80')).toBe('c1 10.98.0.2');
    } finally {
      await fw.addNetwork(net1);
      await fw.attach(net0, ep1);
    }
    expect(await who(c2, '10.99.0.2:80', 1)).toBeUndefined();
  });

  it('e: default-deny: a neighbour routing a container subnet via the host reaches no unpublished port', async () => {
    await O.sh('ip route add 10.99.0.0/24 via 192.0.2.1; ip -6 route add fd00:99::/64 via fd00:2::1');
    try {
      expect(await who(O, '10.99.0.2:80', 1)).toBeUndefined();
      expect(await who(O, '[fd00:99::2]:80', 1)).toBeUndefined();
      expect(await who(O, '192.0.2.1:8080')).toBe('c1 192.0.2.2'); // published: still in
    } finally {
      await O.sh('ip route del 10.99.0.0/24; ip -6 route del fd00:99::/64');
    }
  });

  it('e: a published port is reachable from another network through the host address', async () => {
    expect(await who(c2, '192.0.2.1:8080')).toBe('c1 10.99.0.1');
  });

  it('e: an internal network forwards nothing in or out', async () => {
    const internal = { ...net1, internal: true };
    await fw.removeNetwork(net1);
    await fw.addNetwork(internal);
    try {
      expect(await who(c2, '192.0.2.2:80', 1)).toBeUndefined();
      expect(await who(c2, '192.0.2.1:8080', 1)).toBeUndefined();
      expect(await who(c2, '10.99.0.2:80', 1)).toBeUndefined();
      expect(await who(c1, '10.98.0.2:80', 1)).toBeUndefined();
    } finally {
      await fw.removeNetwork(internal);
      await fw.addNetwork(net1);
    }
    expect(await who(c2, '192.0.2.2:80')).toBe('outside 192.0.2.1');
  });

  it('detach unpublishes the port; detach again is harmless; attach publishes it again', async () => {
    await fw.removeEndpoint(ep1);
    await fw.removeEndpoint(ep1);
    expect(await who(O, '192.0.2.1:8080', 1)).toBeUndefined();
    await fw.attach(net0, ep1);
    expect(await who(O, '192.0.2.1:8080')).toBe('c1 192.0.2.2');
  });
});
