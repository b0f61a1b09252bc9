// A simulated multi-host cluster for the overlay: an underlay segment (a bridge in a namespace of
// its own), etcd in its own namespace on that segment (or, with etcdMembers: 3, a three-member
// etcd cluster, each member in a namespace of its own), and hosts that are SandboxHosts (each a
// namespace with its own TSRUN_ROOT) plugged into the segment, each running its own `tsrun agent`.
// Everything lives in namespaces this harness creates; destroy() removes all of it.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BUSYBOX_ROOTFS, Netns, SandboxHost, waitFor, type RunResult } from './sandbox.js';
import { EtcdCluster, EtcdServer } from './etcd.js';
import { makePki, type Pki } from './pki.js';
import type { EtcdStore } from '../../runtime/store/etcd.js';

export const UNDERLAY_PREFIX = '10.250.0';
export const ETCD_ADDRESS = `${UNDERLAY_PREFIX}.100`;
/** The members' addresses when the cluster runs several etcd members (.101, .102, …). */
export const etcdMemberAddress = (i: number): string => `${UNDERLAY_PREFIX}.${101 + i}`;
/** An "outside world" address on the underlay that has no route back to any overlay subnet. */
export const OUTSIDE_ADDRESS = `${UNDERLAY_PREFIX}.200`;
export const BUSYBOX = path.join(BUSYBOX_ROOTFS, 'bin', 'busybox');

export interface ClusterOptions {
  /** Key prefix in etcd (one per test file, so runs never see each other's keys). */
  prefix: string;
  ttlSeconds: number;
  resyncSeconds: number;
  /** etcd members (default 1: one server at ETCD_ADDRESS); more: an EtcdCluster at .101, .102, …
   * with every member in the hosts' store URL. */
  etcdMembers?: number;
  /** Prefix of the etcd members' private data directories (default "tsrun-etcd-m<N>-"). */
  etcdDirPrefix?: string;
}

export class OverlayHost {
  agent: ChildProcess | undefined;
  agentLog = '';
  private readonly containers = new Map<string, ChildProcess>();

  constructor(readonly name: string, readonly sandbox: SandboxHost, readonly address: string, private readonly cluster: OverlayCluster) {}

  get ns(): Netns {
    return this.sandbox.ns;
  }

  tsrun(args: string[], opts: { timeoutMs?: number } = {}): RunResult {
    return this.sandbox.tsrun(args, opts);
  }

  /** Starts `tsrun agent` and waits until the host is registered in etcd. */
  async startAgent(extra: string[] = []): Promise<void> {
    const { ttlSeconds, resyncSeconds } = this.cluster.opts;
    const child = this.sandbox.spawnTsrun(['agent', '--ttl', String(ttlSeconds), '--resync', String(resyncSeconds), ...extra]);
    this.agent = child;
    this.agentLog = ''; // a restarted agent's registration is waited for, not the last run's
    child.stderr!.on('data', (d: Buffer) => (this.agentLog = (this.agentLog + d.toString()).slice(-20_000)));
    child.stdout!.resume();
    await waitFor(`the agent of ${this.name} to register`, () => this.agentLog.includes('host registered') || child.exitCode !== null, 20_000);
    if (child.exitCode !== null) throw new Error(`agent of ${this.name} exited ${child.exitCode}: ${this.agentLog}`);
  }

  /** Stops the agent (SIGTERM: a clean stop; SIGKILL: a crash) and waits for it to exit. */
  async stopAgent(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const a = this.agent;
    this.agent = undefined;
    if (!a || a.exitCode !== null) return a?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => a.once('exit', (code) => r(code)));
    a.kill(signal);
    return exited;
  }

  /** `tsrun run --net NETWORK` of a long-running container; resolves once it has its address. */
  async runContainer(id: string, network: string, bundle: string, extra: string[] = []): Promise<string> {
    const child = this.spawnContainer(id, network, bundle, extra);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(`container ${id} on ${this.name}`, () => child.exitCode !== null || existsSync(path.join(this.sandbox.root, 'run', 'containers', id, 'pid')), 30_000);
    if (child.exitCode !== null) throw new Error(`container ${id} exited ${child.exitCode}: ${err}`);
    const ip = this.containerIp(id);
    if (!ip) throw new Error(`container ${id} has no address`);
    return ip;
  }

  /** `tsrun run --net NETWORK` of a long-running container, not waiting for anything. */
  spawnContainer(id: string, network: string, bundle: string, extra: string[] = []): ChildProcess {
    const child = this.sandbox.spawnTsrun(['run', '--name', id, '--net', network, ...extra, bundle, '--', 'sh', '-c', 'trap "exit 0" TERM; sleep 100000 & wait']);
    child.stdout!.resume();
    child.stderr!.resume();
    this.containers.set(id, child);
    return child;
  }

  async stopContainer(id: string): Promise<void> {
    const child = this.containers.get(id);
    this.containers.delete(id);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    // A tsrun that does not finish its teardown within 15 s is a bug the caller sees in the log;
    // the harness must still not hang on it.
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  async stopAllContainers(): Promise<void> {
    await Promise.all([...this.containers.keys()].map((id) => this.stopContainer(id)));
  }

  pin(id: string): string {
    return path.join(this.sandbox.root, 'run', 'netns', id);
  }

  /** A program inside the container's network namespace (host binaries, e.g. busybox, python3). */
  inContainer(id: string, cmd: string, args: string[], timeoutMs = 20_000): RunResult {
    const r = this.ns.exec('nsenter', [`--net=${this.pin(id)}`, '--', cmd, ...args], { timeoutMs });
    return r;
  }

  containerIp(id: string): string | undefined {
    const r = this.inContainer(id, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0']);
    const rows = JSON.parse(r.stdout || '[]') as { addr_info: { local: string }[] }[];
    return rows[0]?.addr_info[0]?.local;
  }

  ping(id: string, ip: string, count = 1, waitSeconds = 2): boolean {
    return this.inContainer(id, BUSYBOX, ['ping', '-c', String(count), '-W', String(waitSeconds), ip]).status === 0;
  }

  /** FDB entries with a remote (the agent's) on a VXLAN device. */
  fdb(dev: string): { mac: string; dst: string }[] {
    const out = this.ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', dev]).stdout;
    return (JSON.parse(out || '[]') as { mac: string; dst?: string }[]).filter((e) => e.dst).map((e) => ({ mac: e.mac, dst: e.dst! }));
  }

  neighbours(dev: string): { ip: string; mac: string }[] {
    const out = this.ns.exec('ip', ['-j', 'neigh', 'show', 'dev', dev]).stdout;
    return (JSON.parse(out || '[]') as { dst: string; lladdr?: string }[]).filter((n) => n.lladdr).map((n) => ({ ip: n.dst, mac: n.lladdr! }));
  }

  logLines(): Record<string, unknown>[] {
    const f = this.sandbox.logFile;
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async destroy(): Promise<void> {
    await this.stopAllContainers();
    await this.stopAgent('SIGKILL');
    this.sandbox.destroy();
  }
}

export class OverlayCluster {
  readonly hosts: OverlayHost[] = [];
  private constructor(
    readonly opts: ClusterOptions,
    readonly underlay: Netns,
    /** The namespace of the (first) etcd member. */
    readonly etcdNs: Netns,
    /** The single etcd server, or the first member of the cluster. */
    readonly etcd: EtcdServer,
    /** Set when the cluster runs several etcd members. */
    readonly etcdCluster: EtcdCluster | undefined,
    private readonly etcdNamespaces: Netns[],
    readonly outside: Netns,
    private readonly pki: Pki,
  ) {}

  static async create(opts: ClusterOptions): Promise<OverlayCluster> {
    const made: Netns[] = [];
    const ns = async (name: string) => {
      const n = await Netns.create(name);
      made.push(n);
      return n;
    };
    let pki: Pki | undefined;
    try {
      const underlay = await ns('ovl-underlay');
      underlay.sh('ip link add ulbr type bridge && ip link set ulbr up');
      const outside = await ns('ovl-outside');
      plug(underlay, outside, 'ul-out', `${OUTSIDE_ADDRESS}/24`);
      const members = opts.etcdMembers ?? 1;
      const addresses = members === 1 ? [ETCD_ADDRESS] : Array.from({ length: members }, (_, i) => etcdMemberAddress(i));
      const etcdNamespaces: Netns[] = [];
      for (const [i, address] of addresses.entries()) {
        const n = await ns(members === 1 ? 'ovl-etcd' : `ovl-etcd${i + 1}`);
        plug(underlay, n, members === 1 ? 'ul-etcd' : `ul-etcd${i + 1}`, `${address}/24`);
        etcdNamespaces.push(n);
      }
      // The cluster store over TLS with client certificates (mutual TLS). Not with etcd's password
      // auth here: the suite restarts etcd, and etcd's default "simple" tokens die with it, which
      // the etcd3 client does not renew for watch streams (use --auth-token jwt in production);
      // user/password is covered by test/integration/security/etcd-tls.test.ts.
      pki = makePki(addresses);
      const tls = { cert: pki.server.cert, key: pki.server.key, ca: pki.ca };
      let etcd: EtcdServer;
      let etcdCluster: EtcdCluster | undefined;
      if (members === 1) {
        etcd = await EtcdServer.start(etcdNamespaces[0]!, { address: ETCD_ADDRESS, tls });
        etcd.useClientCertificate(pki.client);
      } else {
        etcdCluster = await EtcdCluster.start(addresses.map((address, i) => ({ ns: etcdNamespaces[i]!, address })), { tls, ...(opts.etcdDirPrefix ? { dirPrefix: opts.etcdDirPrefix } : {}) });
        etcdCluster.useClientCertificate(pki.client);
        etcd = etcdCluster.members[0]!;
      }
      return new OverlayCluster(opts, underlay, etcdNamespaces[0]!, etcd, etcdCluster, etcdNamespaces, outside, pki);
    } catch (err) {
      pki?.destroy();
      for (const n of made) n.destroy();
      throw err;
    }
  }

  get storeUrl(): string {
    return this.etcdCluster ? this.etcdCluster.url(this.opts.prefix) : this.etcd.url(this.opts.prefix);
  }

  /** What the test process itself reads etcd with (over the unix sockets of running members). */
  store(): EtcdStore {
    return this.etcdCluster ? this.etcdCluster.store(this.opts.prefix) : this.etcd.store(this.opts.prefix);
  }

  /** A new host on the underlay at .<n>, with TSRUN_STORE pointing at etcd. */
  async addHost(name: string, n: number): Promise<OverlayHost> {
    const sandbox = await SandboxHost.create(`ovl-${name}`, { TSRUN_STORE: this.storeUrl });
    const address = `${UNDERLAY_PREFIX}.${n}`;
    plug(this.underlay, sandbox.ns, `ul-${name}`, `${address}/24`);
    // The way out to the "outside world" (which has no route back to the overlay subnets).
    sandbox.ns.sh(`ip route add default via ${OUTSIDE_ADDRESS}`);
    const h = new OverlayHost(name, sandbox, address, this);
    this.hosts.push(h);
    return h;
  }

  async destroy(): Promise<void> {
    for (const h of this.hosts) await h.destroy().catch(() => undefined);
    if (this.etcdCluster) await this.etcdCluster.destroy();
    else await this.etcd.destroy();
    this.pki.destroy();
    for (const n of this.etcdNamespaces) n.destroy();
    this.outside.destroy();
    this.underlay.destroy();
  }
}

/** A veth from the underlay bridge into `ns`, named eth0 there, with `cidr`. */
function plug(underlay: Netns, ns: Netns, portName: string, cidr: string): void {
  underlay.sh(`ip link add ${portName} type veth peer name eth0 netns ${ns.pid} && ip link set ${portName} master ulbr up`);
  ns.sh(`ip addr add ${cidr} dev eth0 && ip link set eth0 up`);
}
