// Integration tests never touch the machine's own network namespace. Each test builds a sandbox:
// a "host" network namespace pinned by a child process (`unshare -n sleep infinity`: killing it is
// all it takes to remove the namespace), entered with `nsenter --net=/proc/PID/ns/net` (not
// `ip netns exec`, which remounts /sys and hides the cgroup mounts runc needs), its own TSRUN_ROOT
// and its own runc root. Further namespaces ("outside", "LAN") are linked to it with veth pairs.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const TSRUN_BIN = path.join(PROJECT_ROOT, 'dist/bundle/tsrun.cjs');
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
    const pin = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
    // Wait until the child runs in its own namespace (unshare has exec'd sleep).
    const self = readlinkSafe('/proc/self/ns/net');
    for (let i = 0; i < 200; i++) {
      const ns = readlinkSafe(`/proc/${pin.pid}/ns/net`);
      const comm = readSafe(`/proc/${pin.pid}/comm`).trim();
      if (ns && ns !== self && comm === 'sleep') break;
      await new Promise((r) => setTimeout(r, 5));
    }
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

  destroy(): void {
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

  /** `tsrun ARGS` inside the sandbox, to completion. */
  tsrun(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): RunResult {
    return this.ns.exec(process.execPath, [TSRUN_BIN, ...args], { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** `tsrun ARGS` in the background (long-running containers); nsenter execs node, so the
   * child's pid is tsrun's own. */
  spawnTsrun(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    return this.ns.spawn(process.execPath, [TSRUN_BIN, ...args], { env: { ...this.env, ...env } });
  }

  runcList(): string[] {
    if (!existsSync(this.runcRoot)) return [];
    const r = spawnSync('runc', ['--root', this.runcRoot, 'list', '-q'], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean);
  }

  /** Everything a finished container could leave behind; empty means clean. */
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
    return found;
  }

  destroy(): void {
    for (const id of this.runcList()) spawnSync('runc', ['--root', this.runcRoot, 'delete', '--force', id]);
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
function readSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
