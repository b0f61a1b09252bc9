// The macvlan driver end to end: busybox containers through real runc on a sandbox host whose
// "physical" NIC (lan0) is a veth leading to a "LAN" namespace. Containers appear directly on the
// LAN's segment with MACs of their own; there is no NAT and no bridge.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CTR_ADDR, CTR_MAC, LAN_PAGE, LanSandbox, fetch, httpGet, lanNeighbour, macOf, reaches } from './lan-sandbox.js';

let sb: LanSandbox;

beforeAll(async () => {
  sb = await LanSandbox.create('mv', [{ parent: 'lan0', lanIf: 'lanp0', prefix: '192.168.77' }]);
  // A second subnet on the same wire, for the private-mode network.
  sb.lan.sh('ip addr add 192.168.78.1/24 dev lanp0');
  sb.host.ns.sh('ip addr add 192.168.78.250/24 dev lan0');
  sb.tsrunOk(['network', 'create', 'lan', '--driver', 'macvlan', '--parent', 'lan0', '--subnet', '192.168.77.0/24', '--gateway', '192.168.77.1']);
  sb.tsrunOk(['network', 'create', 'priv', '--driver', 'macvlan', '--parent', 'lan0', '--mode', 'private', '--subnet', '192.168.78.0/24']);
});

afterAll(() => sb?.destroy());

afterEach(async () => {
  expect(await sb.settle()).toEqual([]);
});

describe('macvlan: containers on the parent\'s segment', () => {
  it('a container gets a macvlan child of the parent: its own MAC, an address of the network, the LAN gateway', async () => {
    const srv = await sb.server(['--net', 'lan']);
    expect(srv.addr).toMatch(/^192\.168\.77\.\d+$/);
    expect(await sb.linkDetails(srv.id)).toEqual({ kind: 'macvlan', mode: 'bridge', address: srv.mac });
    expect(srv.mac).not.toBe(macOf(sb.host.ns, 'lan0'));
    const r = sb.run(['--net', 'lan'], 'ip route');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('default via 192.168.77.1 dev eth0');
    // Nothing on the host: no interface, no bridge.
    expect(sb.host.ns.linkNames()).toEqual(['lan0', 'lo']);
  });

  it('the LAN reaches the container and the container reaches the LAN, with no NAT', async () => {
    const srv = await sb.server(['--net', 'lan']);
    // LAN → container: straight to the container's own address, answered from its own MAC.
    expect(httpGet(sb.lan, `http://${srv.addr}:8080/passwd`)).toMatch(/^root:/);
    expect(lanNeighbour(sb.lan, srv.addr)).toBe(srv.mac);
    // container → LAN: and the LAN sees the container's address with the container's MAC
    // (no translation to the host's address).
    const out = sb.run(['--net', 'lan'], `echo "addr=$(${CTR_ADDR}) mac=$(${CTR_MAC})"; ${fetch('http://192.168.77.1:8000/lan.txt')}`);
    expect(out.status).toBe(0);
    expect(out.stdout).toContain(LAN_PAGE);
    const [, addr, mac] = /addr=([\d.]+) mac=([0-9a-f:]+)/.exec(out.stdout)!;
    expect(lanNeighbour(sb.lan, addr!)).toBe(mac);
    // No firewall state for the network: nothing of it in the host's nftables.
    expect(sb.host.ns.exec('nft', ['list', 'ruleset']).stdout).not.toContain('192.168.77.');
  });

  it('IPv6: a dual-stack macvlan network gives both families; the LAN answers on both', () => {
    sb.lan.sh('ip -6 addr add fd77::1/64 dev lanp0 nodad');
    try {
      sb.tsrunOk(['network', 'create', 'lan6', '--driver', 'macvlan', '--parent', 'lan0', '--subnet', '192.168.76.0/24', '--ipv6-subnet', 'fd77::/64', '--ipv6-gateway', 'fd77::1']);
      sb.lan.sh('ip addr add 192.168.76.1/24 dev lanp0');
      const r = sb.run(['--net', 'lan6'], 'ip -6 -o addr show eth0 scope global; ip -6 route; ping -c1 -W2 fd77::1 >/dev/null && echo v6-ok; ping -c1 -W2 192.168.76.1 >/dev/null && echo v4-ok');
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/inet6 fd77::\w+\/64/);
      expect(r.stdout).toContain('default via fd77::1 dev eth0');
      expect(r.stdout).toContain('v6-ok');
      expect(r.stdout).toContain('v4-ok');
    } finally {
      sb.host.tsrun(['network', 'rm', 'lan6']);
      sb.lan.sh('ip -6 addr del fd77::1/64 dev lanp0; ip addr del 192.168.76.1/24 dev lanp0 || true');
    }
  });

  it('two containers in bridge mode reach each other', async () => {
    const a = await sb.server(['--net', 'lan']);
    const b = sb.run(['--net', 'lan'], fetch(`http://${a.addr}:8080/passwd`));
    expect(b.status).toBe(0);
    expect(b.stdout).toMatch(/^root:/);
  });

  it('two containers in private mode cannot reach each other, but both reach the LAN', async () => {
    const a = await sb.server(['--net', 'priv']);
    expect(a.addr).toMatch(/^192\.168\.78\./);
    expect(await sb.linkDetails(a.id)).toMatchObject({ kind: 'macvlan', mode: 'private' });
    const b = sb.run(['--net', 'priv'], `ping -c1 -W1 ${a.addr} >/dev/null && echo peer-reached; timeout 2 wget -qO- http://${a.addr}:8080/passwd && echo peer-served; ${fetch('http://192.168.78.1:8000/lan.txt', 3)}`);
    expect(b.stdout).not.toContain('peer-reached');
    expect(b.stdout).not.toContain('peer-served');
    expect(b.stdout).toContain(LAN_PAGE);
    expect(reaches(sb.lan, a.addr)).toBe(true);
  });

  it('the host cannot talk to its own macvlan children (the kernel\'s rule); the LAN can talk to both', async () => {
    const a = await sb.server(['--net', 'lan']);
    expect(reaches(sb.lan, a.addr)).toBe(true);
    expect(reaches(sb.lan, '192.168.77.250')).toBe(true);
    // The host's frames for the child leave through lan0 to the wire and never come back.
    expect(reaches(sb.host.ns, a.addr)).toBe(false);
    const back = sb.run(['--net', 'lan'], 'ping -c1 -W1 192.168.77.250 >/dev/null && echo host-reached || echo host-unreachable');
    expect(back.stdout.trim()).toBe('host-unreachable');
  });

  it('the documented host-side shim lifts the rule: the host reaches its containers through a macvlan of its own', async () => {
    const a = await sb.server(['--net', 'lan']);
    expect(reaches(sb.host.ns, a.addr)).toBe(false);
    // README: a bridge-mode macvlan for the host on the same parent, with an address of its own
    // (answering ARP only for that address, so the LAN keeps seeing the host on lan0), and a
    // route to the containers through it.
    sb.host.ns.sh('ip link add mvshim link lan0 type macvlan mode bridge && echo 1 > /proc/sys/net/ipv4/conf/mvshim/arp_ignore');
    try {
      // The lower half of the subnet (where IPAM puts the containers, .2 upwards) through the
      // shim; the LAN's router, inside that half, stays on lan0.
      sb.host.ns.sh('ip addr add 192.168.77.249/32 dev mvshim && ip link set mvshim up && ip route add 192.168.77.0/25 dev mvshim && ip route add 192.168.77.1/32 dev lan0');
      expect(a.addr).toMatch(/^192\.168\.77\.([2-9]|[1-9]\d|1[01]\d|12[0-7])$/);
      expect(reaches(sb.host.ns, a.addr)).toBe(true);
      expect(httpGet(sb.host.ns, `http://${a.addr}:8080/passwd`)).toMatch(/^root:/);
      const back = sb.run(['--net', 'lan'], 'ping -c1 -W2 192.168.77.249 >/dev/null && echo shim-reached');
      expect(back.stdout.trim()).toBe('shim-reached');
      // The LAN still sees the host's own address on lan0's MAC.
      expect(reaches(sb.lan, '192.168.77.250')).toBe(true);
      expect(lanNeighbour(sb.lan, '192.168.77.250')).toBe(macOf(sb.host.ns, 'lan0'));
    } finally {
      sb.host.ns.sh('ip link del mvshim && ip route del 192.168.77.1/32 dev lan0');
    }
  });

  it('the host\'s own address on the parent is never given to a container', () => {
    const r = sb.run(['--net', 'lan', '--ip', '192.168.77.250'], 'true');
    expect(r.status).toBe(125);
    expect(r.stderr).toBe('tsrun: address 192.168.77.250 on network lan is the host\'s own address on lan0: pass another --ip\n');
  });

  it('-p is refused: a macvlan container is reachable at its own address', () => {
    const r = sb.run(['--net', 'lan', '-p', '8080:80'], 'true');
    expect(r.status).toBe(125);
    expect(r.stderr).toBe('tsrun: -p cannot publish ports on macvlan network lan: its containers are reachable at their own addresses\n');
  });

  it('passthru: one container takes the parent whole, and the next one gets it back at once', async () => {
    sb.host.ns.sh('ip link add pt0 type veth peer name pt0p && ip link set pt0 up && ip link set pt0p up');
    try {
      sb.tsrunOk(['network', 'create', 'pt', '--driver', 'macvlan', '--parent', 'pt0', '--mode', 'passthru', '--subnet', '10.213.0.0/24']);
      const srv = await sb.server(['--net', 'pt']);
      expect(await sb.linkDetails(srv.id)).toMatchObject({ kind: 'macvlan', mode: 'passthru' });
      await srv.stop();
      // Detach deleted the child at once: the parent is free for the next container.
      const r = sb.run(['--net', 'pt'], CTR_ADDR);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^10\.213\.0\.\d+$/m);
    } finally {
      sb.host.tsrun(['network', 'rm', 'pt']);
      sb.host.ns.sh('ip link del pt0');
    }
  });

  it('passthru admits one container at a time: a second one gets one line', async () => {
    sb.host.ns.sh('ip link add pt1 type veth peer name pt1p && ip link set pt1 up && ip link set pt1p up');
    try {
      sb.tsrunOk(['network', 'create', 'pt1', '--driver', 'macvlan', '--parent', 'pt1', '--mode', 'passthru', '--subnet', '10.214.0.0/24']);
      const first = await sb.server(['--net', 'pt1']);
      const second = sb.run(['--net', 'pt1'], 'true');
      expect(second.status).toBe(125);
      expect(second.stderr).toBe('tsrun: create macvlan on pt1 for network pt1: passthru gives parent pt1 to one container, and it already has a macvlan child (another container, or another network on it)\n');
      await first.stop();
    } finally {
      sb.host.tsrun(['network', 'rm', 'pt1']);
      sb.host.ns.sh('ip link del pt1');
    }
  });
});

describe('macvlan: network create refuses with one line and leaves nothing', () => {
  const cases: [string, string[], string][] = [
    ['a missing parent', ['--parent', 'nosuch0', '--subnet', '10.220.0.0/24'], 'parent interface nosuch0 of network bad not found'],
    ['a parent that is down', ['--parent', 'down0', '--subnet', '10.220.0.0/24'], 'parent interface down0 of network bad is down: bring it up first (ip link set down0 up)'],
    ['a parent that is a tsrun bridge', ['--parent', 'ts-br1', '--subnet', '10.220.0.0/24'], '--parent ts-br1 is the bridge of tsrun network br1: macvlan needs a host interface (NIC, VLAN or bond)'],
    ['passthru on a parent another network uses', ['--parent', 'lan0', '--mode', 'passthru', '--subnet', '10.220.0.0/24'], '--mode passthru needs parent lan0 to itself, but network lan already uses it'],
    ['no --parent', ['--subnet', '10.220.0.0/24'], '--driver macvlan needs --parent IFACE: the host interface whose segment the containers join'],
    ['no --subnet', ['--parent', 'lan0'], '--driver macvlan needs --subnet (or --ipv6-subnet): the addresses of the segment behind lan0'],
    ['an unknown mode', ['--parent', 'lan0', '--mode', 'l3', '--subnet', '10.220.0.0/24'], 'invalid --mode "l3": macvlan modes are bridge, private, vepa, passthru'],
    ['a subnet another network has', ['--parent', 'lan0', '--subnet', '192.168.77.0/25'], '--subnet 192.168.77.0/25 overlaps network lan'],
  ];

  beforeAll(() => {
    sb.host.ns.sh('ip link add down0 type veth peer name down0p');
    sb.tsrunOk(['network', 'create', 'br1', '--subnet', '10.221.0.0/24']);
    sb.host.ns.sh('ip link add ptx type veth peer name ptxp && ip link set ptx up');
    sb.tsrunOk(['network', 'create', 'ptx', '--driver', 'macvlan', '--parent', 'ptx', '--mode', 'passthru', '--subnet', '10.222.0.0/24']);
  });

  it.each(cases)('%s', (_what, args, message) => {
    const r = sb.host.tsrun(['network', 'create', 'bad', '--driver', 'macvlan', ...args]);
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`tsrun: ${message}\n`);
    expect(sb.tsrunOk(['network', 'ls', '-q']).split('\n')).not.toContain('bad');
  });

  it('two networks claiming one parent in passthru mode', () => {
    for (const mode of ['passthru', 'bridge']) {
      const r = sb.host.tsrun(['network', 'create', 'bad', '--driver', 'macvlan', '--parent', 'ptx', '--mode', mode, '--subnet', '10.223.0.0/24']);
      expect(r.status).toBe(125);
      expect(r.stderr).toBe('tsrun: parent ptx is already claimed by network ptx in passthru mode\n');
    }
  });

  it('a parent that went down after network create: the attach says so', () => {
    sb.host.ns.sh('ip link set ptx down');
    try {
      const r = sb.run(['--net', 'ptx'], 'true');
      expect(r.status).toBe(125);
      expect(r.stderr).toBe('tsrun: parent interface ptx of network ptx is down: bring it up first (ip link set ptx up)\n');
    } finally {
      sb.host.ns.sh('ip link set ptx up');
    }
  });

  it('removes a macvlan network and leaves the parent as it was', () => {
    const before = sb.host.ns.sh('ip -o link show lan0 | sed "s/^[0-9]*: //"');
    sb.tsrunOk(['network', 'create', 'tmp', '--driver', 'macvlan', '--parent', 'lan0', '--subnet', '10.224.0.0/24']);
    expect(sb.run(['--net', 'tmp'], 'true').status).toBe(0);
    sb.tsrunOk(['network', 'rm', 'tmp']);
    expect(sb.host.ns.sh('ip -o link show lan0 | sed "s/^[0-9]*: //"')).toBe(before);
    expect(sb.tsrunOk(['network', 'ls', '-q']).split('\n')).not.toContain('tmp');
  });
});
