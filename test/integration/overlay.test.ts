// Overlay networks across simulated hosts: a real etcd and three hosts (namespaces on one
// underlay segment), each with its own state root and its own `tsrun agent`. Containers run
// through `tsrun run`; traffic between them is real ICMP, TCP and UDP over real VXLAN. The tests
// run in order and share the cluster: each step builds on the state the previous one left.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { haveEtcd } from '../harness/etcd.js';
import { BUSYBOX, ETCD_ADDRESS, OUTSIDE_ADDRESS, OverlayCluster, type OverlayHost } from '../harness/overlay-cluster.js';
import { makeBundle, removeBundle, waitFor } from '../harness/sandbox.js';
import { parseOverlayEndpoint } from '../../runtime/overlay/keys.js';
import { decodeHolder } from '../../runtime/ipam/holder.js';
import { runtimeEnv } from './hook/helpers.js';

const TTL = 5;
const SUBNET = '10.251.0.0/24';
const VNI = 4242;
const DEV = `tsvx${VNI}`;

if (!haveEtcd) console.warn('overlay tests skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
const maybe = haveEtcd ? describe : describe.skip;

let cluster: OverlayCluster;
let A: OverlayHost;
let B: OverlayHost;
let C: OverlayHost;
let bundle: string;
const ip: Record<string, string> = {};

/** One line of python run inside a container namespace (TCP/UDP servers and clients). */
function py(h: OverlayHost, id: string, code: string, timeoutMs = 15_000) {
  return h.inContainer(id, 'python3', ['-c', code], timeoutMs);
}

/** A TCP (or UDP) exchange from `from` to `to`: the server answers with the peer address it saw. */
async function exchange(proto: 'tcp' | 'udp', from: [OverlayHost, string], to: [OverlayHost, string], port: number): Promise<string> {
  const [sh, sid] = to;
  const [ch, cid] = from;
  const server = proto === 'tcp'
    ? `import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",${port}));s.listen(1);s.settimeout(10);c,a=s.accept();d=c.recv(100);c.sendall(d+b" from "+a[0].encode());c.close()`
    : `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("0.0.0.0",${port}));s.settimeout(10);d,a=s.recvfrom(100);s.sendto(d+b" from "+a[0].encode(),a)`;
  const srv = sh.ns.spawn('nsenter', [`--net=${sh.pin(sid)}`, '--', 'python3', '-c', server]);
  const srvDone = new Promise((r) => srv.once('exit', r));
  await new Promise((r) => setTimeout(r, 300));
  const client = proto === 'tcp'
    ? `import socket;c=socket.create_connection(("${ip[sid]}",${port}),timeout=5);c.sendall(b"hello");print(c.recv(100).decode())`
    : `import socket;c=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);c.settimeout(5);c.sendto(b"hello",("${ip[sid]}",${port}));print(c.recvfrom(100)[0].decode())`;
  const r = py(ch, cid, client);
  srv.kill();
  await srvDone;
  return r.stdout.trim();
}

maybe('overlay networks', () => {
  beforeAll(async () => {
    cluster = await OverlayCluster.create({ prefix: `ovl${process.pid}`, ttlSeconds: TTL, resyncSeconds: 5 });
    A = await cluster.addHost('A', 1);
    B = await cluster.addHost('B', 2);
    C = await cluster.addHost('C', 3);
    bundle = makeBundle();
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    if (bundle) removeBundle(bundle);
  }, 60_000);

  describe('without an agent or a cluster store', () => {
    it('an overlay network needs the etcd store', () => {
      const r = A.sandbox.tsrun(['--store', 'local', 'network', 'create', 'ov0', '--driver', 'overlay', '--subnet', '10.252.0.0/24']);
      expect(r.status).toBe(125);
      expect(r.stderr).toBe('tsrun: an overlay network needs a cluster store: pass --store etcd://HOST:PORT (or set TSRUN_STORE)\n');
    });

    it('the agent needs the etcd store', () => {
      const r = A.sandbox.tsrun(['--store', 'local', 'agent']);
      expect(r.status).toBe(125);
      expect(r.stderr.trim()).toMatch(/^tsrun: tsrun agent needs a cluster store/);
    });
  });

  describe('two hosts', () => {
    it('the network is created once, from one host, for the whole cluster', async () => {
      const r = A.tsrun(['network', 'create', 'ov', '--driver', 'overlay', '--subnet', SUBNET, '--vni', String(VNI)]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      // Host B sees it without having been told anything.
      const ls = B.tsrun(['network', 'ls']);
      expect(ls.stdout).toMatch(/^ov\s+overlay\s+ts-ov\s+10\.251\.0\.0\/24/m);
      // A second network may not take the same VXLAN id.
      const dup = B.tsrun(['network', 'create', 'ov2', '--driver', 'overlay', '--subnet', '10.252.0.0/24', '--vni', String(VNI)]);
      expect(dup.status).toBe(125);
      expect(dup.stderr).toBe(`tsrun: --vni ${VNI} is already used by overlay network ov\n`);
    });

    it('attaching without a running agent fails with one line and leaves nothing behind', () => {
      const r = A.tsrun(['run', '--name', 'noagent', '--net', 'ov', bundle, '--', 'true']);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/^tsrun: no tsrun agent has run on this host/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(A.sandbox.leaks(['noagent'])).toEqual([]);
    });

    it('agents register their hosts with their underlay address (the route source towards etcd)', async () => {
      await A.startAgent();
      await B.startAgent();
      const store = cluster.store();
      try {
        const hosts = (await store.list('overlay/hosts/')).map((e) => JSON.parse(e.value) as { address: string; vtepMac: string; underlay: string });
        expect(hosts.map((h) => h.address).sort()).toEqual([A.address, B.address]);
        expect(hosts.every((h) => h.underlay === 'eth0' && /^0e:/.test(h.vtepMac))).toBe(true);
      } finally {
        await store.close();
      }
    });

    it('containers on two hosts get distinct addresses from the cluster subnet and a VXLAN-sized MTU', async () => {
      ip.a1 = await A.runContainer('a1', 'ov', bundle);
      ip.b1 = await B.runContainer('b1', 'ov', bundle);
      expect(ip.a1).toMatch(/^10\.251\.0\.\d+$/);
      expect(ip.b1).toMatch(/^10\.251\.0\.\d+$/);
      expect(ip.a1).not.toBe(ip.b1);
      const mtu = JSON.parse(A.inContainer('a1', 'ip', ['-j', 'link', 'show', 'eth0']).stdout)[0].mtu;
      expect(mtu).toBe(1450);
      const dev = JSON.parse(A.ns.sh(`ip -j -d link show ${DEV}`))[0];
      expect(dev.linkinfo.info_data).toMatchObject({ id: VNI, local: A.address, port: 4789, learning: false, proxy: true });
    }, 60_000);

    it('each host programs the other\'s container into its VXLAN device: FDB and neighbour', async () => {
      const macB = JSON.parse(B.inContainer('b1', 'ip', ['-j', 'link', 'show', 'eth0']).stdout)[0].address as string;
      await waitFor('A to learn b1', () => A.fdb(DEV).some((f) => f.mac === macB && f.dst === B.address), 10_000);
      expect(A.neighbours(DEV)).toEqual([{ ip: ip.b1, mac: macB }]);
      expect(A.fdb(DEV)).toEqual([{ mac: macB, dst: B.address }]); // nothing else: no flood entries
      await waitFor('B to learn a1', () => B.fdb(DEV).length === 1 && B.neighbours(DEV).length === 1, 10_000);
    });

    it('containers reach each other by IP: ICMP both ways', () => {
      expect(A.ping('a1', ip.b1!, 3)).toBe(true);
      expect(B.ping('b1', ip.a1!, 3)).toBe(true);
    });

    it('TCP and UDP cross the overlay, and the peer sees the real source address (no NAT inside the subnet)', async () => {
      expect(await exchange('tcp', [A, 'a1'], [B, 'b1'], 7001)).toBe(`hello from ${ip.a1}`);
      expect(await exchange('udp', [B, 'b1'], [A, 'a1'], 7002)).toBe(`hello from ${ip.b1}`);
    }, 30_000);

    it('traffic to the outside world leaves through the local host with NAT', () => {
      // The outside namespace has no route to the overlay subnet: only a NATed packet gets an answer.
      expect(A.ping('a1', OUTSIDE_ADDRESS, 2)).toBe(true);
      expect(B.ping('b1', OUTSIDE_ADDRESS, 2)).toBe(true);
    });

    it('with br_netfilter calling the inet hooks, overlay traffic, NAT out and a published port work', async () => {
      // As on a host where Docker loaded br_netfilter: bridged frames cross the inet hooks
      // (conntrack, tsrun's forward chain). Set in B's own namespace only (the sandbox host), never globally.
      B.ns.sh('sysctl -qw net.bridge.bridge-nf-call-iptables=1');
      try {
        expect(A.ping('a1', ip.b1!, 3)).toBe(true);
        expect(await exchange('tcp', [A, 'a1'], [B, 'b1'], 7011)).toBe(`hello from ${ip.a1}`);
        // NAT out of the overlay.
        expect(B.ping('b1', OUTSIDE_ADDRESS, 2)).toBe(true);
        // A published port on the overlay, from another host on the underlay.
        ip.b3 = await B.runContainer('b3', 'ov', bundle, ['-p', '8089:7012']);
        const srv = B.ns.spawn('nsenter', [`--net=${B.pin('b3')}`, '--', 'python3', '-c', 'import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",7012));s.listen(1);s.settimeout(10);c,a=s.accept();c.sendall(b"published");c.close()']);
        const srvDone = new Promise((r) => srv.once('exit', r));
        await new Promise((r) => setTimeout(r, 300));
        const got = A.ns.exec('python3', ['-c', `import socket;c=socket.create_connection(("${B.address}",8089),timeout=5);print(c.recv(100).decode())`]);
        srv.kill();
        await srvDone;
        expect(got.stdout.trim()).toBe('published');
      } finally {
        await B.stopContainer('b3');
      }
    }, 60_000);

    it('inspect lists the hosts and the endpoints on each, from any host', () => {
      const r = B.tsrun(['network', 'inspect', 'ov']);
      expect(r.status).toBe(0);
      const info = JSON.parse(r.stdout) as { vni: number; hosts: { address: string; local: boolean; endpoints: { containerId: string; ipv4: string }[] }[] };
      expect(info.vni).toBe(VNI);
      const byAddr = Object.fromEntries(info.hosts.map((h) => [h.address, h]));
      expect(byAddr[A.address]!.endpoints).toEqual([expect.objectContaining({ containerId: 'a1', ipv4: ip.a1 })]);
      expect(byAddr[B.address]!.endpoints).toEqual([expect.objectContaining({ containerId: 'b1', ipv4: ip.b1 })]);
      expect(byAddr[B.address]!.local).toBe(true);
      expect(byAddr[A.address]!.local).toBe(false);
    });

    it('a network with containers on other hosts cannot be removed', () => {
      const r = A.tsrun(['network', 'rm', 'ov']);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/^tsrun: network ov has 1 container\(s\) on other hosts \(b1 on host /);
    });
  });

  describe('an internal overlay network', () => {
    it('connects its containers across hosts but has no way out', async () => {
      expect(A.tsrun(['network', 'create', 'ovi', '--driver', 'overlay', '--subnet', '10.253.0.0/24', '--internal']).status).toBe(0);
      ip.ai = await A.runContainer('ai', 'ovi', bundle);
      ip.bi = await B.runContainer('bi', 'ovi', bundle);
      await waitFor('the internal network to be programmed', () => A.ping('ai', ip.bi!, 1, 1), 10_000);
      expect(A.ping('ai', OUTSIDE_ADDRESS, 1, 1)).toBe(false);
      await A.stopContainer('ai');
      await B.stopContainer('bi');
      const rm = B.tsrun(['network', 'rm', 'ovi']);
      expect(rm.stderr).toBe('');
      // Host A's agent removes its devices of the deleted network.
      await waitFor('A to drop the devices of ovi', () => !A.ns.linkNames().includes('ts-ovi'), 15_000);
    }, 60_000);
  });

  describe('a third host', () => {
    it('joins later and is reached without restarting A or B', async () => {
      const pidA = A.agent!.pid;
      const pidB = B.agent!.pid;
      await C.startAgent();
      const started = Date.now();
      ip.c1 = await C.runContainer('c1', 'ov', bundle);
      await waitFor('a1 to reach c1', () => A.ping('a1', ip.c1!, 1, 1), 15_000);
      const ms = Date.now() - started;
      expect(B.ping('b1', ip.c1!, 2)).toBe(true);
      expect(C.ping('c1', ip.a1!, 2)).toBe(true);
      expect(C.ping('c1', ip.b1!, 2)).toBe(true);
      expect(await exchange('tcp', [C, 'c1'], [A, 'a1'], 7003)).toBe(`hello from ${ip.c1}`);
      expect(A.agent!.pid).toBe(pidA);
      expect(B.agent!.pid).toBe(pidB);
      console.log(`overlay: c1 on host C reachable from host A ${ms} ms after tsrun run started`);
    }, 60_000);
  });

  describe('the hook path', () => {
    it('a runc container annotated io.tsrun.network=ov joins the overlay the same way, and leaves it at runc delete', async () => {
      const id = 'hooked1';
      const dir = makeBundle((spec) => {
        spec.process.args = ['sh', '-c', 'sleep 100000'];
        spec.annotations = { 'io.tsrun.network': 'ov' };
      });
      try {
        const add = A.tsrun(['spec', 'add-hooks', dir, '--stage', 'createRuntime', '--timeout', '20']);
        expect(add.stderr).toBe('');
        const runc = (args: string[]) => A.ns.exec('runc', ['--root', A.sandbox.runcRoot, ...args], { env: runtimeEnv(), timeoutMs: 60_000 });
        const created = A.ns.exec('sh', ['-c', 'exec runc --root "$0" create -b "$1" "$2" </dev/null >/dev/null 2>&1', A.sandbox.runcRoot, dir, id], { env: runtimeEnv() });
        expect(created.status).toBe(0);
        expect(runc(['start', id]).status).toBe(0);
        const pid = (JSON.parse(runc(['state', id]).stdout) as { pid: number }).pid;
        const addr = JSON.parse(A.ns.exec('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', '-j', '-4', 'addr', 'show', 'eth0']).stdout)[0].addr_info[0].local as string;
        expect(addr).toMatch(/^10\.251\.0\.\d+$/);
        await waitFor('b1 to reach the hooked container', () => B.ping('b1', addr, 1, 1), 15_000);
        runc(['kill', id, 'KILL']);
        await waitFor('the hooked container to stop', () => (JSON.parse(runc(['state', id]).stdout || '{}') as { status?: string }).status === 'stopped', 10_000);
        expect(runc(['delete', id]).status).toBe(0);
        await waitFor('B to forget the hooked container', () => !B.neighbours(DEV).some((n) => n.ip === addr), 10_000);
        const store = cluster.store();
        try {
          expect((await store.list('overlay/endpoints/ov/')).map((e) => e.key).filter((k) => k.endsWith(`/${id}`))).toEqual([]);
          expect((await store.list('ipam/ov/')).filter((e) => decodeHolder(e.value).container === id)).toEqual([]);
        } finally {
          await store.close();
        }
      } finally {
        removeBundle(dir);
      }
    }, 60_000);
  });

  describe('failures', () => {
    it('etcd unreachable: running containers keep talking; a new attach fails fast with one line and leaves nothing; after etcd returns attaches work', async () => {
      await cluster.etcd.stop();
      try {
        expect(A.ping('a1', ip.b1!, 2)).toBe(true);
        expect(await exchange('tcp', [B, 'b1'], [C, 'c1'], 7004)).toBe(`hello from ${ip.b1}`);

        const veths = () => B.ns.linkNames().filter((l) => /^tsv[0-9a-f]{8}$/.test(l));
        const before = veths();
        const started = Date.now();
        const r = B.tsrun(['run', '--name', 'b2', '--net', 'ov', bundle, '--', 'true']);
        const elapsed = Date.now() - started;
        expect(r.status).toBe(125);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(`etcd at ${ETCD_ADDRESS}:2379 is unreachable`);
        expect(elapsed).toBeLessThan(10_000);
        expect(B.sandbox.leaks(['b2']).filter((l) => l.includes('b2'))).toEqual([]);
        expect(veths()).toEqual(before);
      } finally {
        await cluster.etcd.launch();
      }
      ip.b2 = await B.runContainer('b2', 'ov', bundle);
      await waitFor('a1 to reach b2 after etcd came back', () => A.ping('a1', ip.b2!, 1, 1), 20_000);
      expect(A.ping('a1', ip.b1!, 1)).toBe(true);
      await B.stopContainer('b2');
    }, 90_000);

    it('etcd silently dropping packets: an attach still fails within seconds, with one line', async () => {
      // Connection attempts (SYNs) vanish without an answer; the agents' established connections
      // keep working, so their leases stay alive and only the new attach meets the silent etcd.
      cluster.etcdNs.sh('nft add table inet blackhole && nft add chain inet blackhole in "{ type filter hook input priority 0; }" && nft add rule inet blackhole in tcp dport 2379 tcp flags syn drop');
      try {
        const started = Date.now();
        const r = B.tsrun(['run', '--name', 'b4', '--net', 'ov', bundle, '--', 'true']);
        const elapsed = Date.now() - started;
        expect(r.status).toBe(125);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(new RegExp(`etcd at ${ETCD_ADDRESS.replaceAll('.', '\\.')}:2379 is unreachable .*no answer within 3000 ms`));
        expect(elapsed).toBeLessThan(10_000);
        expect(B.sandbox.leaks(['b4']).filter((l) => l.includes('b4'))).toEqual([]);
        expect(A.ping('a1', ip.b1!, 1)).toBe(true);
      } finally {
        cluster.etcdNs.sh('nft delete table inet blackhole');
      }
    }, 30_000);

    it('the agent restarts without disturbing running containers, rebuilding its state from etcd and the kernel', async () => {
      const before = A.fdb(DEV);
      const neighBefore = A.neighbours(DEV);
      // A ping running through the restart must not lose a packet.
      const pinger = A.ns.spawn('nsenter', [`--net=${A.pin('a1')}`, '--', BUSYBOX, 'ping', '-c', '30', '-i', '0.2', '-W', '1', ip.b1!]);
      let out = '';
      pinger.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const pingDone = new Promise((r) => pinger.once('exit', r));
      expect(await A.stopAgent('SIGTERM')).toBe(0);
      await A.startAgent();
      await pingDone;
      if (!/30 packets received/.test(out)) console.log(`A:\n${A.agentLog}\nB:\n${B.agentLog}`);
      expect(out).toMatch(/30 packets transmitted, 30 packets received/);
      expect(A.fdb(DEV)).toEqual(before);
      expect(A.neighbours(DEV)).toEqual(neighBefore);
      expect(A.agentLog).toContain('resumed the previous lease');
      // And it still follows changes.
      ip.b3 = await B.runContainer('b3', 'ov', bundle);
      await waitFor('a1 to reach b3', () => A.ping('a1', ip.b3!, 1, 1), 15_000);
      await B.stopContainer('b3');
      await waitFor('A to drop b3', () => !A.neighbours(DEV).some((n) => n.ip === ip.b3), 10_000);
    }, 60_000);

    it('a host dies: within the lease TTL its entries disappear from every other host', async () => {
      const macC = JSON.parse(C.inContainer('c1', 'ip', ['-j', 'link', 'show', 'eth0']).stdout)[0].address as string;
      expect(A.fdb(DEV).some((f) => f.dst === C.address)).toBe(true);
      expect(B.fdb(DEV).some((f) => f.dst === C.address)).toBe(true);
      await C.stopAgent('SIGKILL');
      C.ns.destroy(); // the host's namespace (and its containers' links) is gone
      const died = Date.now();
      await waitFor('A and B to forget host C', () => !A.fdb(DEV).some((f) => f.dst === C.address) && !B.fdb(DEV).some((f) => f.dst === C.address), (TTL + 5) * 1000);
      const ms = Date.now() - died;
      expect(ms).toBeLessThan((TTL + 3) * 1000);
      expect(A.neighbours(DEV).some((n) => n.mac === macC)).toBe(false);
      expect(A.ping('a1', ip.b1!, 1)).toBe(true);
    }, 30_000);

    it('two hosts racing to allocate on the same subnet never hand out the same address', async () => {
      const store = cluster.store();
      try {
        const run = (h: OverlayHost, id: string) =>
          new Promise<number | null>((resolve) => {
            const c = h.sandbox.spawnTsrun(['run', '--name', id, '--net', 'ov', bundle, '--', 'sh', '-c', 'sleep 2']);
            c.stdout!.resume();
            c.stderr!.resume();
            c.once('exit', resolve);
          });
        const ids = Array.from({ length: 5 }, (_, i) => i);
        const seen = new Map<string, string>();
        // Watch the endpoints while the containers live: every address at most once.
        const stop = await store.watch('overlay/endpoints/ov/', (e) => {
          const ep = parseOverlayEndpoint(e.value);
          if (e.type !== 'put' || !ep || !/^r[ab]\d$/.test(ep.containerId)) return;
          const holder = seen.get(ep.ipv4);
          if (holder && holder !== ep.containerId) seen.set(`DUPLICATE ${ep.ipv4}`, `${holder} and ${ep.containerId}`);
          seen.set(ep.ipv4, ep.containerId);
        });
        const codes = await Promise.all(ids.flatMap((i) => [run(A, `ra${i}`), run(B, `rb${i}`)]));
        await stop();
        expect(codes.every((c) => c === 0)).toBe(true);
        expect([...seen.keys()].filter((k) => k.startsWith('DUPLICATE'))).toEqual([]);
        expect(seen.size).toBe(10);
        const leases = (await store.list('ipam/ov/')).filter((e) => !e.key.includes('_last'));
        expect(leases.map((e) => decodeHolder(e.value).container).sort()).toEqual(['a1', 'b1', 'c1']); // the racers released theirs; c1's host is gone
      } finally {
        await store.close();
      }
    }, 90_000);
  });
});
