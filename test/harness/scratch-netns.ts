// Throwaway network namespaces for tests: each is held open by a child `unshare -n sleep infinity`,
// so killing the child is all it takes to remove it (nothing to unmount, nothing leaks if the test
// process dies: the children are killed at exit too). Entered with `nsenter --net=PATH`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, readlinkSync } from 'node:fs';
import { Rtnl } from '../../runtime/netlink/rtnl.js';
import { openNetnsFd } from '../../runtime/netns/netns.js';

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

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function readlinkOr(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

export async function scratchNetns(name = 'tsA'): Promise<ScratchNetns> {
  const child = spawn('unshare', ['-n', 'sleep', 'infinity'], { stdio: 'ignore' });
  if (child.pid === undefined) throw new Error(`[${name}] could not start unshare`);
  live.add(child);
  const pid = child.pid;
  const nsPath = `/proc/${pid}/ns/net`;
  const own = readlinkOr('/proc/self/ns/net');
  // Wait until the child has left our namespace (unshare) and become `sleep` (exec).
  for (let i = 0; ; i++) {
    const ns = readlinkOr(nsPath);
    const exe = readlinkOr(`/proc/${pid}/exe`) ?? '';
    if (ns && ns !== own && exe.endsWith('/sleep')) break;
    if (i > 400 || child.exitCode !== null) {
      child.kill('SIGKILL');
      live.delete(child);
      throw new Error(`[${name}] scratch namespace did not come up`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }

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
    destroy: async () => {
      if (!live.has(child)) return;
      live.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
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
