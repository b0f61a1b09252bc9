// A sandbox host whose "physical" NICs are veths leading to a "LAN" namespace, for the drivers
// whose containers sit directly on a parent's segment (macvlan, ipvlan). The LAN plays the other
// machines and the router of each segment: it holds the .1 address of every segment and serves
// HTTP on all of them. The host holds .250 on each parent, as a real host has an address on its
// LAN. Nothing here touches the machine's own network namespace.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_ROOTFS, Netns, SandboxHost, makeBundle, removeBundle, uniqueId, waitFor, type RunResult } from '../harness/sandbox.js';

/** The fixture's static busybox, run on the host side too (the LAN's server, ping, wget), so the
 * tests need no busybox package on the machine. */
export const BUSYBOX = path.join(BUSYBOX_ROOTFS, 'bin', 'busybox');

export interface Segment {
  /** The parent interface in the host namespace. */
  parent: string;
  /** Its peer in the LAN namespace. */
  lanIf: string;
  /** "192.168.77": .1 is the LAN, .250 the host. */
  prefix: string;
}

export const LAN_PAGE = 'from-the-lan';

export class LanSandbox {
  readonly bundle = makeBundle();
  private readonly servers: ChildProcess[] = [];
  private readonly running: Running[] = [];
  readonly ids: string[] = [];

  private constructor(readonly host: SandboxHost, readonly lan: Netns, private readonly wwwDir: string) {}

  static async create(name: string, segments: Segment[]): Promise<LanSandbox> {
    const host = await SandboxHost.create(name);
    const lan = await Netns.create(`${name}-lan`);
    const www = mkdtempSync(path.join(os.tmpdir(), 'tsrun-lan-www-'));
    writeFileSync(path.join(www, 'lan.txt'), `${LAN_PAGE}\n`);
    const sb = new LanSandbox(host, lan, www);
    for (const s of segments) sb.addSegment(s);
    // One server for every LAN address: busybox httpd on port 8000 of any address.
    const server = lan.spawn(BUSYBOX, ['httpd', '-f', '-p', '8000', '-h', www], { stdio: 'ignore' });
    sb.servers.push(server);
    await waitFor('the LAN web server', () => lan.exec('sh', ['-c', `${BUSYBOX} netstat -ltn | grep -q ":8000 "`]).status === 0);
    return sb;
  }

  addSegment(s: Segment): void {
    this.host.ns.sh(`ip link add ${s.parent} type veth peer name ${s.lanIf} netns ${this.lan.pid}`);
    this.host.ns.sh(`ip link set ${s.parent} up && ip addr add ${s.prefix}.250/24 dev ${s.parent}`);
    this.lan.sh(`ip link set ${s.lanIf} up && ip addr add ${s.prefix}.1/24 dev ${s.lanIf}`);
  }

  /** `tsrun ARGS` in the host; throws with stderr unless it succeeds. */
  tsrunOk(args: string[]): string {
    const r = this.host.tsrun(args);
    if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** A container to completion: `sh -c script`. */
  run(args: string[], script: string): RunResult & { id: string } {
    const id = uniqueId('lan');
    this.ids.push(id);
    return { id, ...this.host.tsrun(['run', '--name', id, ...args, this.bundle, '--', 'sh', '-c', script]) };
  }

  /** A container in the background; `stop()` ends its `read x`. */
  start(args: string[], script: string): Running {
    const id = uniqueId('lan');
    this.ids.push(id);
    const child = this.host.spawnTsrun(['run', '--name', id, ...args, this.bundle, '--', 'sh', '-c', script]);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const r: Running = {
      id,
      out: () => out,
      err: () => err,
      exited,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.stdin!.end('\n');
          const t = setTimeout(() => child.kill('SIGTERM'), 5000);
          await exited;
          clearTimeout(t);
        }
        return exited;
      },
    };
    this.running.push(r);
    return r;
  }

  /** A background container that prints its address and MAC, serves /etc on port 8080 and waits. */
  async server(args: string[]): Promise<Running & { addr: string; mac: string }> {
    const r = this.start(args, `httpd -p 8080 -h /etc; echo "addr=$(${CTR_ADDR}) mac=$(${CTR_MAC})"; read x`);
    let ended = false;
    void r.exited.then(() => (ended = true));
    // Generous: the VM lane runs this under qemu's emulation, where a busy host slows the first start a lot.
    await waitFor(`container ${r.id} to serve`, () => r.out().includes('addr=') || ended, 60_000);
    const m = /addr=([\d.]+) mac=([0-9a-f:]+)/.exec(r.out());
    if (!m) throw new Error(`container ${r.id}: unexpected output ${JSON.stringify(r.out())} ${r.err()}`);
    return Object.assign(r, { addr: m[1]!, mac: m[2]! });
  }

  /** `ip -d -j link show IFNAME` inside a running container's namespace, as the host's iproute2
   * sees it (busybox ip has no -d): kind and mode of the container's interface. */
  async linkDetails(id: string, ifname = 'eth0'): Promise<{ kind?: string; mode?: string; address: string }> {
    // `runc run` writes its pid file after the container's process has started, so a container can
    // already serve (and print) while the file is not there yet: wait for it (CI saw ENOENT at load).
    const pidFile = path.join(this.host.root, 'run', 'containers', id, 'pid');
    await waitFor(`the pid file of ${id}`, () => existsSync(pidFile), 20_000);
    const pid = readFileSync(pidFile, 'utf8').trim();
    const r = spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', '-d', '-j', 'link', 'show', ifname], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip -d link show ${ifname} in ${id}: ${r.stderr.trim()}`);
    const link = (JSON.parse(r.stdout) as { address: string; linkinfo?: { info_kind?: string; info_data?: { mode?: string } } }[])[0]!;
    return { kind: link.linkinfo?.info_kind, mode: link.linkinfo?.info_data?.mode, address: link.address };
  }

  /** Stops what tests left running, then lists leaks (empty when clean). */
  async settle(): Promise<string[]> {
    for (const r of this.running.splice(0)) await r.stop();
    const leaks = this.host.leaks(this.ids.splice(0));
    const usersDir = path.join(this.host.root, 'run', 'netns-users');
    if (existsSync(usersDir)) for (const u of readdirSync(usersDir)) leaks.push(`netns users ${u}`);
    return leaks;
  }

  destroy(): void {
    for (const s of this.servers) s.kill('SIGKILL');
    removeBundle(this.bundle);
    rmSync(this.wwwDir, { recursive: true, force: true });
    this.lan.destroy();
    this.host.destroy();
  }
}

export interface Running {
  id: string;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<number | null>;
}

/** Shell snippets run inside busybox containers. */
export const CTR_ADDR = 'ip -o -4 addr show eth0 | sed "s/.*inet \\([0-9.]*\\).*/\\1/"';
export const CTR_MAC = 'ip -o link show eth0 | sed "s/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/"';
/** wget with retries (a fresh interface may need a moment for ARP); prints the body. (Not
 * `wget -T`: this busybox crashes on it; `timeout` bounds each try instead.) */
export const fetch = (url: string, tries = 10): string =>
  `for i in ${Array.from({ length: tries }, (_, i) => i + 1).join(' ')}; do timeout 2 wget -qO- ${url} && exit 0; sleep 0.2; done; exit 1`;

/** One HTTP GET from namespace `ns` (the host's busybox), bounded to 3 seconds; the body or "". */
export function httpGet(ns: Netns, url: string): string {
  const r = ns.exec(BUSYBOX, ['timeout', '3', BUSYBOX, 'wget', '-qO-', url]);
  return r.status === 0 ? r.stdout : '';
}

/** The MAC of `ifname` in namespace `ns`. */
export function macOf(ns: Netns, ifname: string): string {
  return (JSON.parse(ns.sh(`ip -j link show ${ifname}`)) as { address: string }[])[0]!.address;
}

/** The LAN's neighbour entry for `ip` (its MAC), after talking to it. */
export function lanNeighbour(lan: Netns, ip: string): string | undefined {
  const entries = JSON.parse(lan.sh(`ip -j neigh show ${ip}`)) as { lladdr?: string }[];
  return entries[0]?.lladdr;
}

export function reaches(ns: Netns, ip: string): boolean {
  return ns.exec(BUSYBOX, ['ping', '-c1', '-W1', ip]).status === 0;
}
