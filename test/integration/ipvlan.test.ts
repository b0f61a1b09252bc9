// The ipvlan driver end to end, on the same kind of sandbox as macvlan: a host whose "physical"
// NICs are veths leading to a "LAN" namespace. Needs only root, runc, ip (iproute2), node and the
// busybox fixture (whose static busybox also plays the LAN's server).
//
// Kernels without ipvlan (CONFIG_IPVLAN unset, or no module to load) cannot run these: that is
// decided once, at load time, by trying `ip link add … type ipvlan` in a scratch namespace, and
// the suite then reports itself skipped with the reason. On such a kernel the last describe runs
// instead: `network create --driver ipvlan` must fail with one line naming the missing feature.
//
// Segments: lan0 (192.168.77.0/24) carries an L2 network; lan1 (192.168.79.0/24) carries two L3
// networks (10.79.1.0/24 and 10.79.2.0/24), which the LAN reaches through a route via the host's
// address on lan1, as a router upstream of an ipvlan L3 host would.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { SandboxHost } from '../harness/sandbox.js';
import { LAN_PAGE, LanSandbox, fetch, httpGet, lanNeighbour, macOf, reaches } from './lan-sandbox.js';

const NO_IPVLAN = 'kernel has no ipvlan support (modprobe ipvlan failed / link type ipvlan unknown)';

/** Whether this kernel can make an ipvlan link: tried in a namespace that dies with the command. */
function kernelHasIpvlan(): boolean {
  const r = spawnSync('unshare', ['--net', 'sh', '-c', 'ip link add tsp0 type veth peer name tsp1 && ip link add link tsp0 name tsp2 type ipvlan mode l2'], { encoding: 'utf8' });
  return r.status === 0;
}

const HAS_IPVLAN = kernelHasIpvlan();
if (!HAS_IPVLAN) console.warn(`ipvlan tests skipped: ${NO_IPVLAN}`);
const onIpvlanKernel = HAS_IPVLAN ? describe : describe.skip;
const skipped = HAS_IPVLAN ? '' : ` (skipped: ${NO_IPVLAN})`;

onIpvlanKernel(`ipvlan${skipped}`, () => {
  let sb: LanSandbox;

  beforeAll(async () => {
    sb = await LanSandbox.create('iv', [
      { parent: 'lan0', lanIf: 'lanp0', prefix: '192.168.77' },
      { parent: 'lan1', lanIf: 'lanp1', prefix: '192.168.79' },
    ]);
    sb.lan.sh('ip route add 10.79.1.0/24 via 192.168.79.250 && ip route add 10.79.2.0/24 via 192.168.79.250');
    sb.tsrunOk(['network', 'create', 'l2net', '--driver', 'ipvlan', '--parent', 'lan0', '--subnet', '192.168.77.0/24', '--gateway', '192.168.77.1']);
    sb.tsrunOk(['network', 'create', 'l3a', '--driver', 'ipvlan', '--parent', 'lan1', '--mode', 'l3', '--subnet', '10.79.1.0/24']);
    sb.tsrunOk(['network', 'create', 'l3b', '--driver', 'ipvlan', '--parent', 'lan1', '--mode', 'l3', '--subnet', '10.79.2.0/24']);
  });

  afterAll(() => sb?.destroy());

  afterEach(async () => {
    expect(await sb.settle()).toEqual([]);
  });

  describe('l2', () => {
    it('a container gets an ipvlan child with the parent\'s MAC and its own address', async () => {
      const srv = await sb.server(['--net', 'l2net']);
      expect(srv.addr).toMatch(/^192\.168\.77\.\d+$/);
      expect(await sb.linkDetails(srv.id)).toEqual({ kind: 'ipvlan', mode: 'l2', address: macOf(sb.host.ns, 'lan0') });
      const r = sb.run(['--net', 'l2net'], 'ip route');
      expect(r.stdout).toContain('default via 192.168.77.1 dev eth0');
      expect(sb.host.ns.linkNames()).toEqual(['lan0', 'lan1', 'lo']);
    });

    it('the LAN reaches the container and the container reaches the LAN', async () => {
      const srv = await sb.server(['--net', 'l2net']);
      expect(httpGet(sb.lan, `http://${srv.addr}:8080/passwd`)).toMatch(/^root:/);
      // On the wire the container answers with the parent's MAC: that is ipvlan.
      expect(lanNeighbour(sb.lan, srv.addr)).toBe(macOf(sb.host.ns, 'lan0'));
      const out = sb.run(['--net', 'l2net'], fetch('http://192.168.77.1:8000/lan.txt'));
      expect(out.status).toBe(0);
      expect(out.stdout).toContain(LAN_PAGE);
    });

    it('two containers reach each other', async () => {
      const a = await sb.server(['--net', 'l2net']);
      const b = sb.run(['--net', 'l2net'], fetch(`http://${a.addr}:8080/passwd`));
      expect(b.status).toBe(0);
      expect(b.stdout).toMatch(/^root:/);
    });

    it('the host cannot talk to its own ipvlan children; the LAN can talk to both', async () => {
      const a = await sb.server(['--net', 'l2net']);
      expect(reaches(sb.lan, a.addr)).toBe(true);
      expect(reaches(sb.lan, '192.168.77.250')).toBe(true);
      expect(reaches(sb.host.ns, a.addr)).toBe(false);
      const back = sb.run(['--net', 'l2net'], 'ping -c1 -W1 192.168.77.250 >/dev/null && echo host-reached || echo host-unreachable');
      expect(back.stdout.trim()).toBe('host-unreachable');
    });
  });

  describe('l3', () => {
    it('the container routes through its device; the LAN reaches it through the host', async () => {
      const srv = await sb.server(['--net', 'l3a']);
      expect(srv.addr).toMatch(/^10\.79\.1\.\d+$/);
      expect(await sb.linkDetails(srv.id)).toMatchObject({ kind: 'ipvlan', mode: 'l3' });
      // LAN → container: the LAN's route to 10.79.1.0/24 goes via the host's address on lan1.
      expect(httpGet(sb.lan, `http://${srv.addr}:8080/passwd`)).toMatch(/^root:/);
      // container → LAN: default route on the device; the host's routing table takes it from there.
      const out = sb.run(['--net', 'l3a'], `ip route; ${fetch('http://192.168.79.1:8000/lan.txt')}`);
      expect(out.status).toBe(0);
      expect(out.stdout).toMatch(/^default dev eth0/m);
      expect(out.stdout).toContain(LAN_PAGE);
    });

    it('routes between two ipvlan subnets on one parent', async () => {
      const a = await sb.server(['--net', 'l3a']);
      const b = await sb.server(['--net', 'l3b']);
      expect(b.addr).toMatch(/^10\.79\.2\.\d+$/);
      const ab = sb.run(['--net', 'l3b'], fetch(`http://${a.addr}:8080/passwd`));
      expect(ab.status).toBe(0);
      expect(ab.stdout).toMatch(/^root:/);
      const ba = sb.run(['--net', 'l3a'], fetch(`http://${b.addr}:8080/passwd`));
      expect(ba.status).toBe(0);
      expect(ba.stdout).toMatch(/^root:/);
    });
  });

  describe('one-line errors, nothing left behind', () => {
    beforeAll(() => {
      sb.host.ns.sh('ip link add down1 type veth peer name down1p');
      sb.tsrunOk(['network', 'create', 'br2', '--subnet', '10.225.0.0/24']);
      sb.host.ns.sh('ip link add mv9 type veth peer name mv9p && ip link set mv9 up');
      sb.tsrunOk(['network', 'create', 'mvnet', '--driver', 'macvlan', '--parent', 'mv9', '--subnet', '10.226.0.0/24']);
    });

    const cases: [string, string[], string][] = [
      ['a missing parent', ['--parent', 'nosuch1', '--subnet', '10.227.0.0/24'], 'parent interface nosuch1 of network bad not found'],
      ['a parent that is down', ['--parent', 'down1', '--subnet', '10.227.0.0/24'], 'parent interface down1 of network bad is down: bring it up first (ip link set down1 up)'],
      ['a parent that is a tsrun bridge', ['--parent', 'ts-br2', '--subnet', '10.227.0.0/24'], '--parent ts-br2 is the bridge of tsrun network br2: ipvlan needs a host interface (NIC, VLAN or bond)'],
      ['a second mode on one parent', ['--parent', 'lan1', '--mode', 'l2', '--subnet', '10.227.0.0/24'], 'parent lan1 already serves ipvlan network l3a in mode l3: all ipvlan networks on one parent share one mode'],
      ['a parent serving macvlan', ['--parent', 'mv9', '--subnet', '10.227.0.0/24'], 'parent mv9 already serves macvlan network mvnet: one parent serves macvlan or ipvlan networks, not both'],
      ['an unknown mode', ['--parent', 'lan0', '--mode', 'bridge', '--subnet', '10.227.0.0/24'], 'invalid --mode "bridge": ipvlan modes are l2, l3, l3s'],
    ];

    it.each(cases)('%s', (_what, args, message) => {
      const r = sb.host.tsrun(['network', 'create', 'bad', '--driver', 'ipvlan', ...args]);
      expect(r.status).toBe(125);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`tsrun: ${message}\n`);
      expect(sb.tsrunOk(['network', 'ls', '-q']).split('\n')).not.toContain('bad');
    });

    it('--mac and -p are refused at run', () => {
      const mac = sb.run(['--net', 'l2net', '--mac', '02:00:00:00:00:42'], 'true');
      expect(mac.status).toBe(125);
      expect(mac.stderr).toBe('tsrun: --mac cannot be set on ipvlan network l2net: ipvlan interfaces share the MAC of their parent\n');
      const p = sb.run(['--net', 'l2net', '-p', '8080:80'], 'true');
      expect(p.status).toBe(125);
      expect(p.stderr).toBe('tsrun: -p cannot publish ports on ipvlan network l2net: its containers are reachable at their own addresses\n');
    });
  });
});

// Runs on every kernel (so it never reports itself skipped, in the VM lane or here): without
// ipvlan, network create must fail with one line naming the missing feature and leave nothing;
// with it, the same command must succeed.
describe('network create --driver ipvlan and the kernel feature', () => {
  let host: SandboxHost;
  beforeAll(async () => {
    host = await SandboxHost.create('noipvlan');
    host.ns.sh('ip link add nic0 type veth peer name nic0p && ip link set nic0 up');
  });
  afterAll(() => host?.destroy());

  it(HAS_IPVLAN ? 'creates the network on a kernel with ipvlan' : 'fails with one line naming the missing kernel feature', () => {
    const r = host.tsrun(['network', 'create', 'iv', '--driver', 'ipvlan', '--parent', 'nic0', '--subnet', '10.228.0.0/24']);
    if (HAS_IPVLAN) {
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(host.tsrun(['network', 'ls', '-q']).stdout).toBe('iv\n');
      expect(host.tsrun(['network', 'rm', 'iv']).status).toBe(0);
      return;
    }
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('tsrun: --driver ipvlan: this kernel has no ipvlan support (CONFIG_IPVLAN: modprobe ipvlan failed / link type ipvlan unknown)\n');
    expect(host.tsrun(['network', 'ls', '-q']).stdout).toBe('');
  });
});
