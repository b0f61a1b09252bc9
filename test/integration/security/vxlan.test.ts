// VXLAN injection from the underlay: anything that reaches a host's UDP port 4789 could put
// frames into an overlay network (an --internal one too). With the agent running, VXLAN is
// accepted only from the registered underlay addresses of the cluster's hosts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { haveEtcd } from '../../harness/etcd.js';
import { OUTSIDE_ADDRESS, OverlayCluster, type OverlayHost } from '../../harness/overlay-cluster.js';
import { makeBundle, removeBundle, waitFor } from '../../harness/sandbox.js';

const maybe = haveEtcd ? describe : describe.skip;
const VNI = 4343;
let cluster: OverlayCluster;
let A: OverlayHost;
let B: OverlayHost;
let bundle: string;

/** A VXLAN datagram carrying Ethernet/IPv4/UDP to `dstIp:5353` at `dstMac`, sent with a plain
 * UDP socket from `ns` to `vtep`:4789. */
const INJECT = String.raw`
import socket, struct, sys
vtep, vni, dmac, dst, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].encode()
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
udp = struct.pack('!HHHH', 40000, 5353, 8 + len(payload), 0) + payload
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton('10.253.0.99'), socket.inet_aton(dst))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
inner = bytes.fromhex(dmac.replace(':', '')) + bytes.fromhex('02bad0bad0ba') + b'\x08\x00' + ip + udp
vx = struct.pack('!II', 0x08000000, vni << 8) + inner
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3): s.sendto(vx, (vtep, 4789))
`;

maybe('VXLAN source filter', () => {
  beforeAll(async () => {
    cluster = await OverlayCluster.create({ prefix: `i10vx${process.pid}`, ttlSeconds: 5, resyncSeconds: 5 });
    A = await cluster.addHost('A', 1);
    B = await cluster.addHost('B', 2);
    await A.startAgent();
    await B.startAgent();
    bundle = makeBundle();
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
    if (bundle) removeBundle(bundle);
  });

  it('drops a VXLAN frame injected from an unregistered underlay address, and accepts the registered hosts', async () => {
    const r = A.tsrun(['network', 'create', 'i10ov', '--driver', 'overlay', '--subnet', '10.253.0.0/24', '--vni', String(VNI), '--internal']);
    expect(r.stderr).toBe('');
    const ip = await A.runContainer('i10v1', 'i10ov', bundle);
    const mac = (JSON.parse(A.inContainer('i10v1', 'ip', ['-j', 'link', 'show', 'eth0']).stdout) as { address: string }[])[0]!.address;
    // The agent has told the firewall who its peers are.
    await waitFor('the underlay sets', () => A.ns.sh('nft list set inet tsrun underlay_peers4').includes(B.address), 15_000);
    const sink = A.ns.spawn('nsenter', [`--net=${A.pin('i10v1')}`, '--', 'python3', '-u', '-c', "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',5353));print('bound',flush=True)\nwhile True: print(s.recv(100).decode(),flush=True)"]);
    let got = '';
    sink.stdout!.on('data', (d: Buffer) => (got += d.toString()));
    try {
      await waitFor('the sink', () => got.includes('bound'), 10_000);
      const inject = (payload: string) => {
        const x = cluster.outside.exec('python3', ['-c', INJECT, A.address, String(VNI), mac, ip, payload]);
        if (x.status !== 0) throw new Error(x.stderr);
      };
      inject('from-stranger');
      await new Promise((res) => setTimeout(res, 700));
      expect(got).not.toContain('from-stranger');
      // Control: the same datagram from an address the set holds is delivered (so the drop above
      // was the filter, not a malformed frame).
      A.ns.sh(`nft add element inet tsrun underlay_peers4 { ${OUTSIDE_ADDRESS} }`);
      inject('from-peer');
      await waitFor('the datagram from a registered address', () => got.includes('from-peer'), 5_000);
    } finally {
      sink.kill();
      await A.stopContainer('i10v1');
      A.tsrun(['network', 'rm', 'i10ov']);
    }
  });

  // The VXLAN socket listens on every address of the host, not only the underlay one the filter
  // named: sent to another local address (here the overlay's gateway, routed via the host), the
  // frame went past the filter into the network.
  it('drops a VXLAN frame from an unregistered address sent to another local address of the host', async () => {
    const r = A.tsrun(['network', 'create', 'i10ox', '--driver', 'overlay', '--subnet', '10.252.0.0/24', '--vni', String(VNI + 2), '--internal']);
    expect(r.stderr).toBe('');
    const ip = await A.runContainer('i10x1', 'i10ox', bundle);
    const mac = (JSON.parse(A.inContainer('i10x1', 'ip', ['-j', 'link', 'show', 'eth0']).stdout) as { address: string }[])[0]!.address;
    await waitFor('the underlay sets', () => A.ns.sh('nft list set inet tsrun underlay_peers4').includes(B.address), 15_000);
    const sink = A.ns.spawn('nsenter', [`--net=${A.pin('i10x1')}`, '--', 'python3', '-u', '-c', "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',5353));print('bound',flush=True)\nwhile True: print(s.recv(100).decode(),flush=True)"]);
    let got = '';
    sink.stdout!.on('data', (d: Buffer) => (got += d.toString()));
    cluster.outside.sh(`ip route add 10.252.0.1/32 via ${A.address}`);
    try {
      await waitFor('the sink', () => got.includes('bound'), 10_000);
      const inject = (payload: string) => {
        const x = cluster.outside.exec('python3', ['-c', INJECT.replace("'10.253.0.99'", "'10.252.0.99'"), '10.252.0.1', String(VNI + 2), mac, ip, payload]);
        if (x.status !== 0) throw new Error(x.stderr);
      };
      // the first test made the outside a peer by hand; the agent's resync may not have undone it yet
      A.ns.exec('nft', ['delete', 'element', 'inet', 'tsrun', 'underlay_peers4', `{ ${OUTSIDE_ADDRESS} }`]);
      inject('to-gateway-from-stranger');
      await new Promise((res) => setTimeout(res, 700));
      expect(got).not.toContain('to-gateway-from-stranger');
      // Control: from a registered address the same datagram to the gateway is delivered.
      A.ns.sh(`nft add element inet tsrun underlay_peers4 { ${OUTSIDE_ADDRESS} }`);
      inject('to-gateway-from-peer');
      await waitFor('the datagram from a registered address', () => got.includes('to-gateway-from-peer'), 5_000);
    } finally {
      A.ns.exec('nft', ['delete', 'element', 'inet', 'tsrun', 'underlay_peers4', `{ ${OUTSIDE_ADDRESS} }`]);
      cluster.outside.exec('ip', ['route', 'del', '10.252.0.1/32']);
      sink.kill();
      await A.stopContainer('i10x1');
      A.tsrun(['network', 'rm', 'i10ox']);
    }
  });

  // A container of another host of the cluster sends VXLAN itself, to this host's underlay address
  // (a plain UDP socket: no capability needed). Its host forwards and masquerades it like any
  // outbound flow, so it arrives from that host's registered underlay address, and the filter
  // above let it in: any frame, any source MAC and address, into any overlay network of this
  // host (an --internal one, one the sender is not on), past every port guard.
  it('a container of another host cannot inject VXLAN through its host\'s NAT', async () => {
    expect(A.tsrun(['network', 'create', 'i10on', '--driver', 'overlay', '--subnet', '10.248.0.0/24', '--vni', String(VNI + 4), '--internal']).stderr).toBe('');
    expect(B.tsrun(['network', 'create', 'i10nb', '--subnet', '10.247.0.0/24']).stderr).toBe('');
    const ip = await A.runContainer('i10n1', 'i10on', bundle);
    await B.runContainer('i10n2', 'i10nb', bundle);
    const mac = (JSON.parse(A.inContainer('i10n1', 'ip', ['-j', 'link', 'show', 'eth0']).stdout) as { address: string }[])[0]!.address;
    await waitFor('the underlay sets', () => A.ns.sh('nft list set inet tsrun underlay_peers4').includes(B.address), 15_000);
    const sink = A.ns.spawn('nsenter', [`--net=${A.pin('i10n1')}`, '--', 'python3', '-u', '-c', "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',5353));print('bound',flush=True)\nwhile True: print(s.recv(100).decode(),flush=True)"]);
    let got = '';
    sink.stdout!.on('data', (d: Buffer) => (got += d.toString()));
    try {
      await waitFor('the sink', () => got.includes('bound'), 10_000);
      const inject = (where: string[], payload: string) => {
        const x = B.ns.exec(where[0]!, [...where.slice(1), 'python3', '-c', INJECT.replace("'10.253.0.99'", "'10.248.0.99'"), A.address, String(VNI + 4), mac, ip, payload]);
        if (x.status !== 0) throw new Error(x.stderr);
      };
      inject(['nsenter', `--net=${B.pin('i10n2')}`, '--'], 'from-a-container');
      await new Promise((res) => setTimeout(res, 1000));
      expect(got).not.toContain('from-a-container');
      // Control: host B itself (its agent's kernel, the real VTEP) is still heard.
      inject(['env'], 'from-host-b');
      await waitFor('the datagram from host B itself', () => got.includes('from-host-b'), 5_000);
    } finally {
      sink.kill();
      await A.stopContainer('i10n1');
      await B.stopContainer('i10n2');
      A.tsrun(['network', 'rm', 'i10on']);
      B.tsrun(['network', 'rm', 'i10nb']);
    }
  });

  // A chosen MAC (--mac) on an overlay network held by a container of another host: the duplicate
  // check read this host's endpoint records only, so host B accepted it. B's container sending
  // from that MAC through the overlay makes A's bridge learn it at the VXLAN port, and A's frames
  // for its own container go to B's.
  it('refuses a --mac that a container of another host has on the same overlay network', async () => {
    expect(A.tsrun(['network', 'create', 'i10om', '--driver', 'overlay', '--subnet', '10.251.0.0/24', '--vni', String(VNI + 3)]).stderr).toBe('');
    try {
      await A.runContainer('i10m1', 'i10om', bundle, ['--mac', '02:aa:00:00:07:01']);
      const r = B.tsrun(['run', '--name', 'i10m2', '--net', 'i10om', '--mac', '02:aa:00:00:07:01', bundle, '--', 'true']);
      expect(r.stderr).toMatch(/^tsrun: --mac 02:aa:00:00:07:01 is already used on network i10om by container i10m1/);
      expect(r.status).toBe(125);
      // another MAC is fine
      const ok = B.tsrun(['run', '--name', 'i10m3', '--net', 'i10om', '--mac', '02:aa:00:00:07:02', bundle, '--', 'true']);
      expect([ok.status, ok.stderr]).toEqual([0, '']);
    } finally {
      await A.stopContainer('i10m1');
      A.tsrun(['network', 'rm', 'i10om']);
    }
  });

  it('a table rebuilt by any command keeps the filter: no window that accepts VXLAN from anyone', async () => {
    expect(A.tsrun(['network', 'create', 'i10ow', '--driver', 'overlay', '--subnet', '10.254.0.0/24', '--vni', String(VNI + 1)]).stderr).toBe('');
    try {
      // The agent refills the sets on its own; stopped (its host record outlives it for the TTL),
      // only the rebuild itself can have put them back.
      await A.stopAgent('SIGTERM');
      A.ns.sh('nft delete table inet tsrun');
      expect(A.tsrun(['network', 'ls']).status).toBe(0);
      expect(A.ns.sh('nft list set inet tsrun underlay_peers4')).toContain(B.address);
      expect(A.ns.sh('nft list set inet tsrun underlay_local4')).toContain(A.address);
      expect(A.ns.sh('nft list set inet tsrun underlay_ports')).toContain('4789');
    } finally {
      await A.startAgent();
      A.tsrun(['network', 'rm', 'i10ow']);
    }
  });
});
