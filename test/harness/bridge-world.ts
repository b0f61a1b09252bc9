// A small world for network tests: a sandbox "host" with an uplink veth to an "outside"
// namespace that plays the upstream network (198.51.100.0/24, TEST-NET-2: never routed beyond
// this machine), plus helpers to run long-lived server containers and read their endpoints.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Netns, SandboxHost, makeBundle, removeBundle, uniqueId, waitFor } from './sandbox.js';

export const HOST_UPLINK_IP = '198.51.100.1';
export const OUTSIDE_IP = '198.51.100.2';

export interface RunningContainer {
  id: string;
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<number | null>;
}

export class BridgeWorld {
  readonly bundle: string;
  private readonly running = new Set<RunningContainer>();
  readonly ids: string[] = [];

  private constructor(readonly host: SandboxHost, readonly outside: Netns) {
    this.bundle = makeBundle();
  }

  static async create(name: string, opts: { outside?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<BridgeWorld> {
    const host = await SandboxHost.create(name, opts.env);
    const outside = await Netns.create(`${name}-out`);
    if (opts.outside !== false) {
      host.ns.sh(`ip link add uplink0 type veth peer name uplink1 netns ${outside.pid}`);
      host.ns.sh(`ip addr add ${HOST_UPLINK_IP}/24 dev uplink0 && ip link set uplink0 up`);
      outside.sh(`ip addr add ${OUTSIDE_IP}/24 dev uplink1 && ip link set uplink1 up`);
    }
    return new BridgeWorld(host, outside);
  }

  /** `tsrun ARGS` to completion, failing the test on a non-zero exit. */
  tsrunOk(args: string[]): string {
    const r = this.host.tsrun(args);
    if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** A one-shot container: its output and exit status. */
  run(runArgs: string[], cmd: string[]) {
    const id = uniqueId('c');
    this.ids.push(id);
    return this.host.tsrun(['run', '--name', id, ...runArgs, this.bundle, '--', ...cmd]);
  }

  /** A long-running container whose command runs in the background under a shell that exits
   * on SIGTERM (a pid 1 without a handler would ignore it). Resolves once it is attached. */
  async start(runArgs: string[], command: string, idPrefix = 's'): Promise<RunningContainer> {
    const id = uniqueId(idPrefix);
    this.ids.push(id);
    const script = `trap "exit 0" TERM; ${command} & echo started; wait`;
    const child = this.host.spawnTsrun(['run', '--name', id, ...runArgs, this.bundle, '--', 'sh', '-c', script]);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await Promise.race([
      waitFor(`container ${id} to start`, () => out.includes('started'), 20_000),
      exited.then((code) => {
        throw new Error(`container ${id} exited early (${code}): ${out}`);
      }),
    ]);
    const rc: RunningContainer = {
      id,
      child,
      output: () => out,
      stop: async () => {
        child.kill('SIGTERM');
        const code = await exited;
        this.running.delete(rc);
        return code;
      },
    };
    this.running.add(rc);
    return rc;
  }

  /** The container's endpoint record (address, host veth, ports) from tsrun's store. */
  endpoint(id: string, network = 'tsrun'): { ipv4?: { address: string }; ipv6?: { address: string }; hostIfname: string; netnsPath: string } {
    const file = path.join(this.host.root, 'lib', 'store', 'endpoints', id, network);
    if (!existsSync(file)) throw new Error(`no endpoint record for ${id} on ${network}`);
    return JSON.parse(readFileSync(file, 'utf8'));
  }

  ip(id: string, network = 'tsrun'): string {
    return this.endpoint(id, network).ipv4!.address;
  }

  /** Run a command inside a running container's network namespace (from the host side). */
  inContainer(id: string, network: string, command: string) {
    return this.host.ns.exec('nsenter', [`--net=${this.endpoint(id, network).netnsPath}`, '--', '/bin/busybox', 'sh', '-c', command]);
  }

  /** Everything tsrun could leave behind in the world, for after-each assertions. */
  leaks(): string[] {
    const found = this.host.leaks(this.ids.splice(0));
    for (const l of this.tsrunVeths()) found.push(`link ${l}`);
    const store = path.join(this.host.root, 'lib', 'store');
    for (const sub of ['endpoints', 'hostports']) {
      const r = this.host.ns.exec('find', [path.join(store, sub), '-type', 'f']);
      for (const f of r.stdout.split('\n').filter(Boolean)) found.push(`store ${path.relative(store, f)}`);
    }
    const leases = this.host.ns.exec('find', [path.join(store, 'ipam'), '-type', 'f', '-not', '-name', '_*']);
    for (const f of leases.stdout.split('\n').filter(Boolean)) found.push(`lease ${path.relative(store, f)}`);
    const elements = this.host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
    if (elements.status === 0) {
      const json = JSON.parse(elements.stdout) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] };
      for (const o of json.nftables) {
        const m = o.map;
        if (m?.elem && m.elem.length > 0) found.push(`nft map ${m.name} has ${m.elem.length} elements`);
      }
    }
    // The port guard and the neighbour-discovery table: a container's elements carry `ctr:<id>`
    // (a network's own, `net:<name>`, stay with the network).
    for (const table of ['tsrun', 'tsrun_nd']) {
      const listed = this.host.ns.exec('nft', ['-j', 'list', 'table', 'bridge', table]);
      if (listed.status !== 0) continue;
      const json = JSON.parse(listed.stdout) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] };
      for (const o of json.nftables) {
        const owners = (o.set?.elem ?? []).map((e) => (e as { elem?: { comment?: string } }).elem?.comment).filter((c) => c?.startsWith('ctr:'));
        if (owners.length > 0) found.push(`nft bridge ${table} set ${o.set!.name}: ${[...new Set(owners)].join(' ')}`);
      }
    }
    return found;
  }

  /**
   * tsrun's veths in the host namespace. One a detach retired (taken off its bridge, left for the
   * kernel to delete with the container's namespace: DetachOptions.netnsGoing) is on its way out,
   * not a leak: it is waited for, up to 10 s, and reported only if it stays.
   */
  tsrunVeths(): string[] {
    return this.host.ns.settledLinks(/^tsv/);
  }

  /** Stops every container still running (a failed test must not leave them to the next). */
  async stopAll(): Promise<void> {
    for (const c of [...this.running]) await c.stop();
  }

  /** Polls http://ADDR:PORT/ from the host namespace until it answers (a server's start-up). */
  async waitHttp(address: string, port = 80): Promise<void> {
    const host = address.includes(':') ? `[${address}]` : address;
    await waitFor(`http://${host}:${port}/`, () => this.host.ns.httpGet(`http://${host}:${port}/`, 1000) !== undefined, 15_000);
  }

  async destroy(): Promise<void> {
    await this.stopAll();
    removeBundle(this.bundle);
    this.outside.destroy();
    this.host.destroy();
  }
}
