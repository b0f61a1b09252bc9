// The CNI front door on tsrun's other drivers: macvlan (a container on the parent's segment, no
// host end, no NAT) and overlay (etcd, two hosts, VXLAN between containers added by CNI on each).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { haveEtcd } from '../../harness/etcd.js';
import { BUSYBOX, OverlayCluster, type OverlayHost } from '../../harness/overlay-cluster.js';
import { Netns, SandboxHost, uniqueId } from '../../harness/sandbox.js';
import { addressesOf, callPlugin, containerNs, type Attachment, type Conf } from './helpers.js';

const namespaces: Netns[] = [];
async function ctr(): Promise<Netns> {
  const ns = await containerNs(uniqueId('cnid'));
  namespaces.push(ns);
  return ns;
}
afterAll(() => {
  for (const ns of namespaces) ns.destroy();
});

function ok(host: SandboxHost, command: string, conf: Conf, a: Attachment): any {
  const r = callPlugin(host, command, conf, a);
  if (r.status !== 0) throw new Error(`${command} failed (${r.status}): ${r.stdout} ${r.stderr}`);
  return r.json;
}

/** Endpoint records left in a host's local store. */
function storeLeftovers(host: SandboxHost): string[] {
  const store = path.join(host.root, 'lib', 'store');
  const r = host.ns.exec('find', [path.join(store, 'endpoints'), '-type', 'f']);
  return r.stdout.split('\n').filter(Boolean).map((f) => path.relative(store, f));
}

describe('macvlan through CNI', () => {
  let host: SandboxHost;
  let lan: Netns;
  const NET: Conf = { cniVersion: '1.0.0', name: 'cnimv', type: 'tsrun', driver: 'macvlan', parent: 'lan0', subnet: '192.168.79.0/24', gateway: '192.168.79.1' };

  beforeAll(async () => {
    host = await SandboxHost.create('cnimv');
    lan = await Netns.create('cnimv-lan');
    host.ns.sh(`ip link add lan0 type veth peer name lanp0 netns ${lan.pid} && ip link set lan0 up && ip addr add 192.168.79.250/24 dev lan0`);
    lan.sh('ip link set lanp0 up && ip addr add 192.168.79.1/24 dev lanp0');
  }, 60_000);

  afterAll(() => {
    lan?.destroy();
    host?.destroy();
  });

  afterEach(() => {
    expect([...host.leaks(), ...storeLeftovers(host)]).toEqual([]);
    expect(host.ns.linkNames()).toEqual(['lan0', 'lo']);
  });

  it('ADD puts a macvlan child of the parent in the namespace: one interface, the LAN gateway; containers and LAN reach each other', async () => {
    const [n1, n2] = [await ctr(), await ctr()];
    const a1: Attachment = { containerId: uniqueId('mv'), netns: n1.path };
    const a2: Attachment = { containerId: uniqueId('mv'), netns: n2.path };
    const r1 = ok(host, 'ADD', NET, a1);
    const r2 = ok(host, 'ADD', NET, a2);
    try {
      expect(r1.interfaces).toEqual([{ name: 'eth0', mac: expect.any(String), sandbox: n1.path }]);
      expect(r1.ips).toEqual([{ address: expect.stringMatching(/^192\.168\.79\.\d+\/24$/), gateway: '192.168.79.1', interface: 0 }]);
      expect(r1.routes).toEqual([{ dst: '0.0.0.0/0', gw: '192.168.79.1' }]);
      expect(JSON.parse(n1.sh('ip -j -d link show eth0'))[0].linkinfo.info_kind).toBe('macvlan');
      expect(n1.exec(BUSYBOX, ['ping', '-c', '1', '-W', '2', '192.168.79.1']).status).toBe(0);
      expect(n1.exec(BUSYBOX, ['ping', '-c', '1', '-W', '2', r2.ips[0].address.split('/')[0]]).status).toBe(0);
      expect(callPlugin(host, 'CHECK', { ...NET, prevResult: r1 }, a1).status).toBe(0);
    } finally {
      ok(host, 'DEL', { ...NET, prevResult: r1 }, a1);
      ok(host, 'DEL', { ...NET, prevResult: r2 }, a2);
    }
    expect(n1.linkNames()).toEqual(['lo']);
  });

  it('published ports and bandwidth are refused on macvlan, leaving nothing behind', async () => {
    const ns = await ctr();
    const ports = callPlugin(host, 'ADD', { ...NET, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } }, { containerId: uniqueId('mv'), netns: ns.path });
    expect(ports.json).toMatchObject({ code: 7, msg: expect.stringContaining('cannot publish ports on macvlan') });
    const bw = callPlugin(host, 'ADD', { ...NET, runtimeConfig: { bandwidth: { ingressRate: 1000000, ingressBurst: 100000 } } }, { containerId: uniqueId('mv'), netns: ns.path });
    expect(bw.json).toMatchObject({ code: 2, msg: expect.stringContaining('bandwidth') });
    expect(ns.linkNames()).toEqual(['lo']);
  });
});

const maybeEtcd = haveEtcd ? describe : describe.skip;
if (!haveEtcd) console.warn('CNI overlay test skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');

maybeEtcd('overlay through CNI, two hosts and etcd', () => {
  let cluster: OverlayCluster;
  let A: OverlayHost;
  let B: OverlayHost;
  const NET: Conf = { cniVersion: '1.0.0', name: 'cniov', type: 'tsrun', network: 'cniov' };

  beforeAll(async () => {
    cluster = await OverlayCluster.create({ prefix: `cniovl${process.pid}`, ttlSeconds: 5, resyncSeconds: 5 });
    A = await cluster.addHost('A', 1);
    B = await cluster.addHost('B', 2);
    await A.startAgent();
    await B.startAgent();
    const r = A.tsrun(['network', 'create', 'cniov', '--driver', 'overlay', '--subnet', '10.253.0.0/24']);
    expect(r.stderr).toBe('');
  }, 90_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 60_000);

  it('containers added by CNI on two hosts reach each other over VXLAN; CHECK passes; DEL leaves nothing', async () => {
    const [na, nb] = [await ctr(), await ctr()];
    const aa: Attachment = { containerId: uniqueId('ova'), netns: na.path };
    const ab: Attachment = { containerId: uniqueId('ovb'), netns: nb.path };
    const ra = ok(A.sandbox, 'ADD', NET, aa);
    const rb = ok(B.sandbox, 'ADD', NET, ab);
    try {
      const ipb = rb.ips[0].address.split('/')[0];
      expect(ra.ips[0].address).toMatch(/^10\.253\.0\.\d+\/24$/);
      expect(ra.ips[0].address).not.toBe(rb.ips[0].address);
      expect(addressesOf(nb, 'eth0')).toEqual([rb.ips[0].address]);
      let reached = false;
      for (let i = 0; i < 20 && !reached; i++) reached = na.exec(BUSYBOX, ['ping', '-c', '1', '-W', '1', ipb]).status === 0;
      expect(reached).toBe(true);
      expect(callPlugin(A.sandbox, 'CHECK', { ...NET, prevResult: ra }, aa).status).toBe(0);
      expect(callPlugin(B.sandbox, 'CHECK', { ...NET, prevResult: rb }, ab).status).toBe(0);
    } finally {
      ok(A.sandbox, 'DEL', { ...NET, prevResult: ra }, aa);
      ok(B.sandbox, 'DEL', { ...NET, prevResult: rb }, ab);
    }
    expect(storeLeftovers(A.sandbox)).toEqual([]);
    expect(storeLeftovers(B.sandbox)).toEqual([]);
    const store = cluster.store();
    try {
      expect((await store.list('ipam/cniov/')).filter((e) => !e.key.includes('_last'))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
