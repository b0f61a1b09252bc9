// The one test harness for namespaces. Integration tests never touch the machine's own network
// namespace. Each test builds a sandbox: a "host" network namespace pinned by a child process
// (`unshare -n sleep infinity`: killing it is all it takes to remove the namespace), entered with
// `nsenter --net=/proc/PID/ns/net` (not `ip netns exec`, which remounts /sys and hides the cgroup
// mounts runc needs), its own TSRUN_ROOT and its own runc root. Further namespaces ("outside",
// "LAN") are linked to it with veth pairs.
//
// Every namespace here comes from pinNetns(), which throws when the namespace does not come up:
// carrying on would run the test's commands in the machine's own namespace. Three styles of use
// share it: SandboxHost/Netns (tsrun inside a host), scratchNetns/scratchPair (netlink tests,
// synchronous exec) and ScratchNs (firewall tests, asynchronous exec).
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Rtnl } from '../../runtime/netlink/rtnl.js';
import { openNetnsFd } from '../../runtime/netns/netns.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** tsrun as installed: the entry (a node script), so the tests run what users run (the plain bundle by default). */
export const TSRUN_BIN = path.join(PROJECT_ROOT, 'dist/bundle/tsrun');
export const BUSYBOX_BUNDLE = path.join(PROJECT_ROOT, 'rootfs-fixtures/.cache/busybox');
export const BUSYBOX_ROOTFS = path.join(BUSYBOX_BUNDLE, 'rootfs');

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A network namespace kept alive by a sleeping child process. */
export class Netns {
  readonly path: string;
  private constructor(readonly name: string, private readonly pin: ChildProcess) {
    this.path = `/proc/${pin.pid}/ns/net`;
  }

  static async create(name: string): Promise<Netns> {
    const pin = await pinNetns(name);
    const n = new Netns(name, pin);
    n.sh('ip link set lo up');
    return n;
  }

  get pid(): number {
    return this.pin.pid!;
  }

  /** Run a program inside this namespace, synchronously. */
  exec(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): RunResult {
    const r: SpawnSyncReturns<string> = spawnSync('nsenter', [`--net=${this.path}`, '--', cmd, ...args], {
      encoding: 'utf8',
      input: opts.input ?? '',
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 60_000,
      cwd: opts.cwd,
    });
    return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** A shell command inside this namespace; throws with its stderr when it fails. */
  sh(command: string): string {
    const r = this.exec('sh', ['-c', command]);
    if (r.status !== 0) throw new Error(`[${this.name}] ${command} → ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Start a long-running program inside this namespace. */
  spawn(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdio?: 'pipe' | 'ignore' } = {}): ChildProcess {
    return spawn('nsenter', [`--net=${this.path}`, '--', cmd, ...args], { env: opts.env ?? process.env, stdio: opts.stdio ?? 'pipe' });
  }

  /**
   * An HTTP GET from inside this namespace (with node: the host's static busybox wget crashes
   * in glibc's NSS when run outside a busybox rootfs). Returns the body, or undefined when
   * the request failed or timed out.
   */
  httpGet(url: string, timeoutMs = 3000): string | undefined {
    const script = `const u=new URL(process.argv[1]);const r=require('http').get({host:u.hostname.replace(/^\\[|\\]$/g,''),port:u.port||80,path:u.pathname,timeout:${timeoutMs}},(res)=>{let b='';res.on('data',(d)=>b+=d);res.on('end',()=>{process.stdout.write(b);process.exit(0)})});r.on('timeout',()=>process.exit(2));r.on('error',()=>process.exit(1));`;
    const r = this.exec(process.execPath, ['-e', script, url], { timeoutMs: timeoutMs + 2000 });
    return r.status === 0 ? r.stdout : undefined;
  }

  linkNames(): string[] {
    return (JSON.parse(this.sh('ip -j link show')) as { ifname: string }[]).map((l) => l.ifname).sort();
  }

  /**
   * Links named like tsrun's (`pattern`) still here once removal has settled. Detach may leave a
   * veth off its bridge for the kernel to delete with its namespace (asynchronously, slower on a
   * loaded machine): while every such link is bridge-less, wait for them to go (10 s at most);
   * a link still on a bridge, or still here after that, is a leak.
   */
  settledLinks(pattern = /^ts[vmi]/): string[] {
    const list = () => (JSON.parse(this.sh('ip -j link show')) as { ifname: string; master?: string }[]).filter((l) => pattern.test(l.ifname));
    const deadline = Date.now() + 10_000;
    let links = list();
    while (links.length > 0 && links.every((l) => l.master === undefined) && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      links = list();
    }
    return links.map((l) => l.ifname);
  }

  destroy(): void {
    livePins.delete(this.pin);
    this.pin.kill('SIGKILL');
  }
}

/** A sandbox "host": its namespace, its TSRUN_ROOT, and a way to run tsrun inside it. */
export class SandboxHost {
  private constructor(readonly ns: Netns, readonly root: string, private readonly extraEnv: NodeJS.ProcessEnv) {}

  static async create(name: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<SandboxHost> {
    const ns = await Netns.create(name);
    const root = mkdtempSync(path.join(os.tmpdir(), `tsrun-${name}-`));
    return new SandboxHost(ns, root, extraEnv);
  }

  get env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, TSRUN_ROOT: this.root, ...this.extraEnv };
    delete env.NODE_OPTIONS; // jest's --experimental-vm-modules must not leak into tsrun
    return env;
  }

  get runcRoot(): string {
    return path.join(this.root, 'run', 'runc');
  }

  get logFile(): string {
    return path.join(this.root, 'log', 'tsrun.log');
  }

  /** Ids of every container this sandbox's tsrun knows (`ps -a -q`). */
  containerIds(): string[] {
    return this.tsrun(['ps', '-a', '-q']).stdout.split('\n').filter(Boolean);
  }

  /** `rm -f` of every container this sandbox's tsrun knows: a detached test's cleanup. */
  removeAllContainers(): void {
    for (const id of this.containerIds()) this.tsrun(['rm', '-f', id]);
  }

  /** conmon processes started for this sandbox (their arguments name its root). */
  monitors(): string[] {
    const r = spawnSync('pgrep', ['-a', '-f', `conmon .*${this.root}`], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean);
  }

  /** `tsrun ARGS` inside the sandbox, to completion. */
  tsrun(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): RunResult {
    return this.ns.exec(TSRUN_BIN, [...args], { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** `tsrun ARGS` in the background (long-running containers); nsenter execs node, so the
   * child's pid is tsrun's own. */
  spawnTsrun(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    return this.ns.spawn(TSRUN_BIN, [...args], { env: { ...this.env, ...env } });
  }

  runcList(): string[] {
    if (!existsSync(this.runcRoot)) return [];
    return this.ns.exec('runc', ['--root', this.runcRoot, 'list', '-q']).stdout.split('\n').filter(Boolean);
  }

  /** Everything a finished container could leave behind; empty means clean. */
  /**
   * The host's run directory on a tmpfs of its own (`options`: mount options, e.g. size=256k),
   * for the tests of a full or read-only run directory; `body` gets the directory and
   * `leaveFree(KiB)`, which fills it until that much is left and returns the fill's removal.
   * Unmounted afterwards.
   */
  async withRunTmpfs<T>(options: string, body: (run: string, leaveFree: (freeKiB: number) => () => void) => T | Promise<T>): Promise<T> {
    const run = path.join(this.root, 'run');
    mkdirSync(run, { recursive: true });
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', run]);
    if (mount.status !== 0) throw new Error(`mount tmpfs: ${mount.stderr}`);
    const fill = path.join(run, 'fill');
    const leaveFree = (freeKiB: number): (() => void) => {
      rmSync(fill, { force: true });
      const fs = statfsSync(run);
      writeFileSync(fill, Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - freeKiB * 1024)));
      return () => rmSync(fill, { force: true });
    };
    try {
      return await body(run, leaveFree);
    } finally {
      spawnSync('umount', ['-l', run]);
    }
  }

  /** Registrations left in the run directory's netns-users (its dot-files are markers). */
  netnsUsersLeft(): string[] {
    const dir = path.join(this.root, 'run', 'netns-users');
    return (existsSync(dir) ? readdirSync(dir) : []).filter((e) => !e.startsWith('.')).map((e) => `netns-users/${e}`);
  }

  leaks(containerIds: string[] = []): string[] {
    const found: string[] = [];
    for (const id of this.runcList()) found.push(`runc container ${id}`);
    const containers = path.join(this.root, 'run', 'containers');
    if (existsSync(containers)) for (const id of readdirSync(containers)) found.push(`tsrun state ${id}`);
    const netnsDir = path.join(this.root, 'run', 'netns');
    if (existsSync(netnsDir)) for (const f of readdirSync(netnsDir)) found.push(`netns pin ${f}`);
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      if (line.includes(this.root)) found.push(`mount ${line.split(' ')[4]}`);
    }
    for (const id of containerIds) for (const dir of cgroupDirsOf(id)) found.push(`cgroup ${dir}`);
    found.push(...this.storeLeaks());
    return found;
  }

  /** Endpoint records, host port reservations and address leases left in the local store (every
   * mode writes these; allocation hints, named "_…", are not leases). */
  storeLeaks(): string[] {
    const store = path.join(this.root, 'lib', 'store');
    const found: string[] = [];
    for (const [sub, label] of [['endpoints', 'record'], ['hostports', 'host port'], ['ipam', 'lease']] as const) {
      for (const f of filesUnder(path.join(store, sub))) {
        const leaf = path.basename(f);
        if (leaf.includes('~') || (sub === 'ipam' && leaf.startsWith('_'))) continue; // temps, tombstones, hints
        found.push(`${label} ${path.relative(store, f)}`);
      }
    }
    return found;
  }

  destroy(): void {
    // In the sandbox: runc runs a container's poststop hooks in the namespace of whoever deletes it.
    for (const id of this.runcList()) this.ns.exec('runc', ['--root', this.runcRoot, 'delete', '--force', id]);
    // A DNS resolver still running would hold the namespace until it noticed its root was gone.
    try {
      process.kill((JSON.parse(readFileSync(path.join(this.root, 'run', 'dns', 'resolver.pid'), 'utf8')) as { pid: number }).pid, 'SIGKILL');
    } catch {
      // none
    }
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp && mp.startsWith(this.root)) spawnSync('umount', ['-l', mp]);
    }
    this.ns.destroy();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A copy of the busybox bundle's config.json in a fresh directory, edited by `edit`; the rootfs
 * is shared (it is mounted read-only). */
export function makeBundle(edit: (spec: Record<string, any>) => void = () => {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bundle-'));
  const spec = JSON.parse(readFileSync(path.join(BUSYBOX_BUNDLE, 'config.json'), 'utf8')) as Record<string, any>;
  spec.root.path = BUSYBOX_ROOTFS;
  edit(spec);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

export function removeBundle(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

let counter = 0;
/** Container ids unique across test files and runs. */
/** Whether this process has a controlling terminal (tests of `-t` without one skip under a terminal). */
export function hasTerminal(): boolean {
  try {
    closeSync(openSync('/dev/tty', 'r'));
    return true;
  } catch {
    return false;
  }
}

export function uniqueId(prefix = 't'): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

/** cgroup directories of a container under tsrun's parent, in every hierarchy. */
export function cgroupDirsOf(id: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', h, 'tsrun', id);
    if (existsSync(dir)) out.push(dir);
  }
  if (existsSync('/sys/fs/cgroup/cgroup.controllers') && existsSync(path.join('/sys/fs/cgroup/tsrun', id))) out.push(path.join('/sys/fs/cgroup/tsrun', id));
  return out;
}

/** Wait until `predicate` holds (polling), or throw after `timeoutMs`. */
export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Whether process `pid` is stopped (state T in /proc/PID/stat); false once it is gone. */
export function isStopped(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('T');
  } catch {
    return false;
  }
}

/**
 * Waits until `pid` has stopped itself (TSRUN_FAULT_PAUSE_AT=<point>:stop), sends it `signal`, then
 * SIGCONT, which is sent even when the wait fails, so that no test leaves a process stopped.
 */
export async function signalWhileStopped(pid: number, signal: NodeJS.Signals, what: string): Promise<void> {
  try {
    await waitFor(what, () => isStopped(pid));
    process.kill(pid, signal);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

export function mkdirp(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

function filesUnder(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

// ---- the namespace primitive ----

/** Pins still alive: killed when the test process exits, so nothing outlives a crashed test. */
const livePins = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of livePins) c.kill('SIGKILL');
});

/** How long a namespace may take to come up on a loaded machine before the test fails. */
const PIN_TIMEOUT_MS = 15_000;

/**
 * Starts `unshare --net sleep infinity` and waits until the child runs `sleep` in a network
 * namespace other than ours. Throws when that does not happen (unshare missing or refused, the
 * child died, the machine too slow): carrying on would run the test in the machine's namespace.
 */
export async function pinNetns(name: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = PIN_TIMEOUT_MS): Promise<ChildProcess> {
  const pin = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore', env });
  let spawnError: Error | undefined;
  pin.once('error', (err) => (spawnError = err));
  livePins.add(pin);
  const own = readlinkSafe('/proc/self/ns/net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && pin.pid !== undefined && pin.exitCode === null && pin.signalCode === null) {
    const ns = readlinkSafe(`/proc/${pin.pid}/ns/net`);
    const exe = readlinkSafe(`/proc/${pin.pid}/exe`) ?? '';
    if (ns && own && ns !== own && exe.endsWith('/sleep')) return pin;
    await sleep(5);
  }
  livePins.delete(pin);
  pin.kill('SIGKILL');
  const why = spawnError ? `: ${spawnError.message}` : pin.exitCode !== null ? `: unshare exited with ${pin.exitCode}` : '';
  throw new Error(`[${name}] sandbox network namespace did not come up${why}; refusing to run in the machine's own namespace`);
}

/** Kills a pin and waits for it to be gone (its namespace goes with it). */
async function killPin(pin: ChildProcess): Promise<void> {
  if (!livePins.delete(pin)) return;
  if (pin.exitCode !== null || pin.signalCode !== null) return;
  const exited = new Promise((r) => pin.once('exit', r));
  pin.kill('SIGKILL');
  await exited;
}

// ---- scratch namespaces for the netlink tests (synchronous exec) ----

export interface ExecResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** What `ip -j -d link show` says about a link (the fields the tests read). */
export interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  ifalias?: string;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string; info_slave_data?: Record<string, unknown> };
}

export interface ScratchNetns {
  /** A label for messages ("tsA-host"). */
  name: string;
  pid: number;
  /** /proc/PID/ns/net */
  path: string;
  /** Runs a program inside the namespace (synchronously) and returns its result. */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number }): ExecResult;
  /** Like exec, but throws on a non-zero exit; returns stdout. */
  run(cmd: string, args: string[]): string;
  /** `ip -j ARGS` parsed. */
  ipJson<T = unknown>(args: string[]): T;
  /** `ip -j -d link show dev NAME`. */
  link(name: string): IpLink;
  /** Every link's name, sorted. */
  linkNames(): string[];
  destroy(): Promise<void>;
}

export async function scratchNetns(name = 'tsA'): Promise<ScratchNetns> {
  const child = await pinNetns(name);
  const pid = child.pid!;
  const nsPath = `/proc/${pid}/ns/net`;
  const exec = (cmd: string, args: string[], opts: { timeoutMs?: number } = {}): ExecResult => {
    const r = spawnSync('nsenter', [`--net=${nsPath}`, '--', cmd, ...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000 });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const run = (cmd: string, args: string[]): string => {
    const r = exec(cmd, args);
    if (r.status !== 0) throw new Error(`[${name}] ${cmd} ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const ipJson = <T>(args: string[]): T => JSON.parse(run('ip', ['-j', ...args]) || '[]') as T;
  return {
    name,
    pid,
    path: nsPath,
    exec,
    run,
    ipJson,
    link: (dev: string): IpLink => ipJson<IpLink[]>(['-d', 'link', 'show', 'dev', dev])[0]!,
    linkNames: (): string[] => ipJson<IpLink[]>(['link', 'show']).map((l) => l.ifname).sort(),
    destroy: () => killPin(child),
  };
}

/**
 * A "host" and a "container" scratch namespace with a netlink socket in each and an open
 * descriptor of the container's (to create links directly inside it): the netlink tests' fixture.
 */
export interface ScratchPair {
  host: ScratchNetns;
  ctr: ScratchNetns;
  hostNl: Rtnl;
  ctrNl: Rtnl;
  ctrFd: number;
  destroy(): Promise<void>;
}

export async function scratchPair(prefix: string): Promise<ScratchPair> {
  const host = await scratchNetns(`${prefix}host`);
  const ctr = await scratchNetns(`${prefix}ctr`);
  const hostNl = Rtnl.open(host.path);
  const ctrNl = Rtnl.open(ctr.path);
  const ctrFd = openNetnsFd(ctr.path);
  return {
    host,
    ctr,
    hostNl,
    ctrNl,
    ctrFd,
    destroy: async () => {
      hostNl.close();
      ctrNl.close();
      closeSync(ctrFd);
      await host.destroy();
      await ctr.destroy();
    },
  };
}

// ---- scratch namespaces for the firewall tests (asynchronous exec) ----

export class ScratchNs {
  private readonly background: ChildProcess[] = [];
  private constructor(
    readonly name: string,
    private readonly pin: ChildProcess,
  ) {}

  static async create(name: string): Promise<ScratchNs> {
    const ns = new ScratchNs(name, await pinNetns(name));
    await ns.sh('ip link set lo up');
    return ns;
  }

  get pid(): number {
    return this.pin.pid!;
  }

  /** For nsenter --net= and NftOptions.netns. */
  get path(): string {
    return `/proc/${this.pid}/ns/net`;
  }

  /** Runs argv inside the namespace; rejects on a non-zero exit. */
  async run(argv: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await execa('nsenter', [`--net=${this.path}`, ...argv], { timeout: opts.timeoutMs ?? 20_000, stdin: 'ignore' });
    return String(r.stdout);
  }

  /** Like run, but never rejects. */
  async tryRun(argv: string[], opts: { timeoutMs?: number } = {}): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const r = await execa('nsenter', [`--net=${this.path}`, ...argv], { timeout: opts.timeoutMs ?? 20_000, stdin: 'ignore', reject: false });
    return { ok: r.exitCode === 0, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async sh(script: string): Promise<string> {
    return this.run(['sh', '-ec', script]);
  }

  /** Starts a long-running process inside the namespace; killed by destroy(). */
  startBackground(argv: string[]): ChildProcess {
    const child = spawn('nsenter', [`--net=${this.path}`, ...argv], { stdio: 'ignore' });
    this.background.push(child);
    return child;
  }

  async destroy(): Promise<void> {
    for (const child of this.background) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await killPin(this.pin);
  }
}

/** Starts a `busybox httpd` answering /cgi-bin/who with "<label> <client address>". */
export async function startWhoServer(ns: ScratchNs, dir: string, label: string, port: number): Promise<void> {
  mkdirSync(path.join(dir, 'cgi-bin'), { recursive: true });
  const script = `#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s %s\\n' '${label}' "$REMOTE_ADDR"\n`;
  writeFileSync(path.join(dir, 'cgi-bin', 'who'), script, { mode: 0o755 });
  ns.startBackground(['/bin/busybox', 'httpd', '-f', '-p', String(port), '-h', dir]);
  for (let i = 0; i < 100; i++) {
    const r = await ns.tryRun(['ss', '-Hltn', `sport = :${port}`]);
    if (r.stdout.trim() !== '') return;
    await sleep(20);
  }
  throw new Error(`httpd on port ${port} in ${ns.name} did not start`);
}

/** GET http://host:port/cgi-bin/who from inside ns: the answer, or undefined if unreachable. */
export async function who(ns: ScratchNs, hostPort: string, timeoutSec = 5): Promise<string | undefined> {
  const r = await ns.tryRun(['timeout', String(timeoutSec), '/bin/busybox', 'wget', '-q', '-O', '-', `http://${hostPort}/cgi-bin/who`], {
    timeoutMs: (timeoutSec + 3) * 1000,
  });
  if (!r.ok) return undefined;
  // httpd listens on a dual-stack socket: "[::ffff:192.0.2.1]" means 192.0.2.1.
  return r.stdout.trim().replace(/\[(?:::ffff:)?([^\]]+)\]/, '$1');
}

/** Like waitFor, for an asynchronous check. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
