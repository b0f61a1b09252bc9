// Throughput measurements and the kernel floors they are compared with.
//
// A floor is the same data path built with plain `ip` and nft, without tsrun, in namespaces of
// its own (or, for the overlay, in the same simulated hosts), with the same kernel modules: on
// this machine br_netfilter is loaded, so every bridged IPv4 frame crosses the inet hooks, and a
// host that runs containers has conntrack active (a masquerade rule is enough to register its
// hooks; an empty nat chain is not). tsrun / floor is then what tsrun itself costs; floor /
// reference (a bare veth pair, the underlay) is what the kernel's own path costs, which no
// ruleset can win back.
import { spawn, spawnSync } from 'node:child_process';
import { Netns } from '../test/harness/sandbox.js';

/** Seconds per iperf3 run (BENCH_IPERF_SECONDS) and rounds per comparison (BENCH_IPERF_ROUNDS). */
export const IPERF_SECONDS = Number(process.env.BENCH_IPERF_SECONDS ?? 3);
export const IPERF_ROUNDS = Number(process.env.BENCH_IPERF_ROUNDS ?? 3);

/** One iperf3 run: bits per second, and CPU seconds (client + server processes, with the
 * softirq work done on their behalf) per GB moved, which a loaded machine disturbs less. */
export interface IperfResult {
  bps: number;
  cpuPerGB: number;
}

/** Bits per second from an iperf3 client in `clientNs` to a server in `serverNs` (netns paths). */
export function iperf(serverNs: string, clientNs: string, address: string, port: number, serverPort = port): number {
  return iperfRun(serverNs, clientNs, address, port, serverPort).bps;
}

export function iperfRun(serverNs: string, clientNs: string, address: string, port: number, serverPort = port): IperfResult {
  const server = spawn('nsenter', [`--net=${serverNs}`, 'iperf3', '-s', '-1', '-p', String(serverPort)], { stdio: 'ignore' });
  try {
    spawnSync('sleep', ['0.3']);
    const r = spawnSync('nsenter', [`--net=${clientNs}`, 'iperf3', '-c', address, '-p', String(port), '-t', String(IPERF_SECONDS), '-J'], { encoding: 'utf8', timeout: (IPERF_SECONDS + 17) * 1000 });
    type Json = { error?: string; end?: { sum_received?: { bits_per_second: number; bytes: number; seconds: number }; cpu_utilization_percent?: { host_total: number; remote_total: number } } };
    const json = (r.stdout ? JSON.parse(r.stdout) : {}) as Json;
    const sum = json.end?.sum_received;
    if (r.status !== 0 || sum === undefined) throw new Error(`iperf3 to ${address}:${port} failed: ${json.error ?? r.stdout.slice(-300)}${r.stderr}`);
    const cpu = json.end?.cpu_utilization_percent;
    const cpuSeconds = cpu ? ((cpu.host_total + cpu.remote_total) / 100) * sum.seconds : NaN;
    return { bps: sum.bits_per_second, cpuPerGB: cpuSeconds / (sum.bytes / 1e9) };
  } finally {
    server.kill();
  }
}

/** Where an iperf3 client and server run, and the address the client dials. */
export interface Path {
  server: string;
  client: string;
  address: string;
  port?: number;
  serverPort?: number;
}

export const measure = (p: Path, port = 5201): IperfResult => iperfRun(p.server, p.client, p.address, p.port ?? port, p.serverPort ?? p.port ?? port);

/** Two bare namespaces joined by one veth pair: the reference of the bridge rows. */
export class VethPair {
  private constructor(private readonly a: Netns, private readonly b: Netns) {}

  static async create(): Promise<VethPair> {
    const a = await Netns.create('tp-veth-a');
    const b = await Netns.create('tp-veth-b');
    a.sh(`ip link add ref0 type veth peer name ref1 netns ${b.path} && ip addr add 10.248.0.1/24 dev ref0 && ip link set ref0 up`);
    b.sh('ip addr add 10.248.0.2/24 dev ref1 && ip link set ref1 up');
    return new VethPair(a, b);
  }

  get path(): Path {
    return { server: this.b.path, client: this.a.path, address: '10.248.0.2' };
  }

  destroy(): void {
    this.a.destroy();
    this.b.destroy();
  }
}

const FLOOR_BRIDGE = 'flbr0';
const FLOOR_PUBLISHED = 15202;

/**
 * The bridge floor: a host namespace with a Linux bridge and two container namespaces on it,
 * built as tsrun builds its own (veth pairs, the bridge holds the gateway address), and
 * `conntrack(true)` loads the least a container host has: outbound masquerade, one published
 * port (DNAT to the second container) and the hairpin masquerade that port needs. That table
 * registers conntrack and NAT hooks in the host, as tsrun's own table does.
 */
export class BareBridge {
  private constructor(private readonly host: Netns, private readonly c1: Netns, private readonly c2: Netns) {}

  static async create(): Promise<BareBridge> {
    const host = await Netns.create('tp-floor-host');
    const c1 = await Netns.create('tp-floor-c1');
    const c2 = await Netns.create('tp-floor-c2');
    const f = new BareBridge(host, c1, c2);
    try {
      // forwarding on, as tsrun turns it on in its host (the published port is routed)
      host.sh('sysctl -qw net.ipv4.ip_forward=1');
      host.sh(`ip link add ${FLOOR_BRIDGE} type bridge && ip addr add 10.249.0.1/24 dev ${FLOOR_BRIDGE} && ip link set ${FLOOR_BRIDGE} up`);
      for (const [i, c] of [[2, c1], [3, c2]] as const) {
        host.sh(`ip link add flv${i} type veth peer name eth0 netns ${c.path} && ip link set flv${i} master ${FLOOR_BRIDGE} up`);
        c.sh(`ip addr add 10.249.0.${i}/24 dev eth0 && ip link set eth0 up && ip route add default via 10.249.0.1`);
      }
    } catch (err) {
      f.destroy();
      throw err;
    }
    return f;
  }

  /** Loads (true) or removes (false) the container host's NAT table. */
  conntrack(on: boolean): void {
    if (!on) {
      this.host.sh('nft delete table inet floor 2>/dev/null || true');
      return;
    }
    const r = this.host.exec('nft', ['-f', '-'], {
      input: [
        'table inet floor {',
        '  chain prerouting {',
        '    type nat hook prerouting priority dstnat; policy accept;',
        `    ip daddr 10.249.0.1 tcp dport ${FLOOR_PUBLISHED} dnat ip to 10.249.0.3:5201`,
        '  }',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    ip saddr 10.249.0.0/24 oifname != "${FLOOR_BRIDGE}" masquerade`,
        `    ct status dnat ip saddr 10.249.0.0/24 oifname "${FLOOR_BRIDGE}" masquerade`,
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    if (r.status !== 0) throw new Error(`the floor's NAT table: ${r.stderr.trim()}`);
  }

  /** Container to container across the bridge. */
  get bridged(): Path {
    return { server: this.c2.path, client: this.c1.path, address: '10.249.0.3' };
  }

  /** Through the published port on the gateway address (DNAT, routed back onto the bridge). */
  get published(): Path {
    return { server: this.c2.path, client: this.c1.path, address: '10.249.0.1', port: FLOOR_PUBLISHED, serverPort: 5201 };
  }

  destroy(): void {
    for (const n of [this.c1, this.c2, this.host]) n.destroy();
  }
}

/** What a bare VXLAN floor needs to know about one simulated host. */
export interface VxlanHost {
  ns: Netns;
  /** Its underlay address, on `eth0`. */
  address: string;
}

/**
 * The overlay floor: in the same two hosts as tsrun's overlay (same underlay, same host
 * ruleset, so the outer UDP is tracked as tsrun's is), a second bridge with a VXLAN port set up
 * as runtime/overlay/devices.ts sets up tsrun's (same UDP port, no learning, ARP proxy, MTU 50
 * below the underlay's, the kernel's default UDP checksum setting) and one container namespace on
 * each, with the static FDB and neighbour entries tsrun's agent would program.
 */
export class BareVxlan {
  private constructor(private readonly hosts: [VxlanHost, VxlanHost], private readonly ctrs: Netns[], private readonly subnet: string) {}

  static async create(a: VxlanHost, b: VxlanHost, opts: { vni: number; port: number; subnet: string }): Promise<BareVxlan> {
    const ctrs: Netns[] = [];
    const f = new BareVxlan([a, b], ctrs, opts.subnet);
    try {
      // (not /sys/class/net: sysfs shows the namespace that mounted it, not the one entered)
      const mtu = (JSON.parse(a.ns.sh('ip -j link show eth0')) as { mtu: number }[])[0]!.mtu - 50;
      const mac = (i: number) => `02:fe:00:00:00:0${i}`;
      for (const [i, h] of [[1, a], [2, b]] as const) {
        const c = await Netns.create(`tp-floor-vx${i}`);
        ctrs.push(c);
        h.ns.sh(
          [
            `ip link add flbr1 type bridge`,
            `ip link set flbr1 up`,
            `ip link add flvx1 mtu ${mtu} type vxlan id ${opts.vni} local ${h.address} dev eth0 dstport ${opts.port} nolearning proxy`,
            `ip link set flvx1 master flbr1 up`,
            `ip link add flv${i} mtu ${mtu} type veth peer name eth0 netns ${c.path}`,
            `ip link set flv${i} master flbr1 up`,
          ].join(' && '),
        );
        c.sh(`ip link set eth0 mtu ${mtu} address ${mac(i)} && ip addr add ${opts.subnet}.${i}/24 dev eth0 && ip link set eth0 up`);
      }
      for (const [i, h, peer] of [[1, a, b], [2, b, a]] as const) {
        const j = 3 - i;
        h.ns.sh(`bridge fdb add ${mac(j)} dev flvx1 dst ${peer.address} self permanent && ip neigh add ${opts.subnet}.${j} lladdr ${mac(j)} dev flvx1 nud permanent`);
      }
    } catch (err) {
      f.destroy();
      throw err;
    }
    return f;
  }

  get path(): Path {
    return { server: this.ctrs[1]!.path, client: this.ctrs[0]!.path, address: `${this.subnet}.2` };
  }

  destroy(): void {
    for (const c of this.ctrs) c.destroy();
    for (const h of this.hosts) {
      h.ns.exec('ip', ['link', 'del', 'flvx1']);
      h.ns.exec('ip', ['link', 'del', 'flbr1']);
    }
  }
}
