// Helpers for the hook's tests with real runtimes: a sandbox host (its own network namespace and
// TSRUN_ROOT), runc with a private --root run inside that namespace, busybox bundles carrying
// tsrun's hooks (added by `tsrun spec add-hooks`, as a user would), and a leak check covering
// what a hooked container owns: its veth, its endpoint record, its leases and host ports, and its
// nftables elements.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from '@jest/globals';
import { type Netns, SandboxHost, makeBundle, type RunResult, uniqueId, waitFor } from '../../harness/sandbox.js';
import { hostVethName } from '../../../runtime/drivers/bridge.js';
import { listElements, ownerComment, type NftListing } from '../../../runtime/firewall/nft-rules.js';
import { decodeHolder } from '../../../runtime/ipam/holder.js';

export { hostVethName };

export interface HookedBundleOptions {
  annotations?: Record<string, string>;
  args?: string[];
  /** Setup stage registered by add-hooks (default createRuntime). */
  stage?: 'createRuntime' | 'prestart';
  /** Edit the spec after the hooks were added. */
  edit?: (spec: Record<string, any>) => void;
}

export class HookHost {
  readonly bundles: string[] = [];

  constructor(readonly host: SandboxHost) {}

  static async create(name: string): Promise<HookHost> {
    return new HookHost(await SandboxHost.create(name));
  }

  get root(): string {
    return this.host.root;
  }

  /** runc with the sandbox's private root, inside the sandbox namespace. */
  runc(args: string[], opts: { input?: string; timeoutMs?: number; cwd?: string } = {}): RunResult {
    return this.host.ns.exec('runc', ['--root', this.host.runcRoot, ...args], { timeoutMs: 60_000, ...opts, env: runtimeEnv() });
  }

  /** `runc create` + `runc start` of a long-running container; stdio goes nowhere (a detached
   * container would otherwise hold our pipes open). Returns runc create's result. */
  runcDetached(id: string, bundle: string): RunResult {
    const r = this.host.ns.exec('sh', ['-c', `exec runc --root "$0" create -b "$1" "$2" </dev/null >/dev/null 2>"$3"`, this.host.runcRoot, bundle, id, path.join(bundle, 'create.err')], { env: runtimeEnv() });
    const stderr = existsSync(path.join(bundle, 'create.err')) ? readFileSync(path.join(bundle, 'create.err'), 'utf8') : '';
    if (r.status !== 0) return { ...r, stderr };
    const s = this.runc(['start', id]);
    return { ...s, stderr: stderr + s.stderr };
  }

  tsrun(args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
    return this.host.tsrun(args, opts);
  }

  /** A busybox bundle whose config.json carries tsrun's hooks. */
  bundle(o: HookedBundleOptions = {}): string {
    const dir = makeBundle((spec) => {
      if (o.args) spec.process.args = o.args;
      if (o.annotations) spec.annotations = o.annotations;
    });
    this.bundles.push(dir);
    const r = this.tsrun(['spec', 'add-hooks', dir, '--stage', o.stage ?? 'createRuntime', '--timeout', '20']);
    if (r.status !== 0) throw new Error(`tsrun spec add-hooks failed: ${r.stderr}`);
    if (o.edit) {
      const file = path.join(dir, 'config.json');
      const spec = JSON.parse(readFileSync(file, 'utf8'));
      o.edit(spec);
      writeFileSync(file, JSON.stringify(spec, null, 2));
    }
    return dir;
  }

  /** Store keys (relative paths under the local store) whose value or path names `id`. */
  storeEntriesOf(id: string): string[] {
    const storeRoot = path.join(this.root, 'lib', 'store');
    const found: string[] = [];
    const walk = (dir: string, rel: string) => {
      if (!existsSync(dir)) return;
      for (const d of readdirSync(dir, { withFileTypes: true })) {
        if (d.name.includes('~')) continue; // temps, tombstones and spare files (store/local.ts) are not keys
        const key = rel ? `${rel}/${d.name}` : d.name;
        if (d.isDirectory()) walk(path.join(dir, d.name), key);
        // A lease's value names its holder (runtime/ipam/holder.ts); a host port's is the bare id.
        else if (key.startsWith(`endpoints/${id}/`) || decodeHolder(readFileSync(path.join(dir, d.name), 'utf8')).container === id) found.push(key);
      }
    };
    walk(storeRoot, '');
    return found;
  }

  /** nftables elements tagged with the container, in the sandbox namespace. */
  nftElementsOf(id: string): string[] {
    const r = this.host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
    if (r.status !== 0) return []; // no table: no elements
    const comment = ownerComment('ctr', id);
    return listElements(JSON.parse(r.stdout) as NftListing)
      .filter((e) => e.comment === comment)
      .map((e) => `${e.set}: ${JSON.stringify(e.key)}`);
  }

  /** What these containers still own in the sandbox: link, store entries, nft elements. */
  leaksOf(ids: { id: string; network?: string }[]): string[] {
    const found: string[] = [];
    const links = this.host.ns.linkNames();
    for (const c of ids) {
      if (c.network && links.includes(hostVethName(c.id, c.network))) found.push(`link ${hostVethName(c.id, c.network)} of ${c.id}`);
      for (const k of this.storeEntriesOf(c.id)) found.push(`store ${k}`);
      for (const e of this.nftElementsOf(c.id)) found.push(`nft ${e}`);
    }
    return found;
  }

  private readonly tracked: { id: string; network?: string }[] = [];

  /** Remembers a container for the leak check after the test (see takeLeaks). */
  track(id: string, network?: string): string {
    this.tracked.push({ id, ...(network ? { network } : {}) });
    return id;
  }

  /** A fresh container id, tracked. */
  newId(prefix: string, network?: string): string {
    return this.track(uniqueId(prefix), network);
  }

  /** What the containers tracked since the last call left behind; after a leak, everything is
   * cleaned up by force so that one failure does not spill into the next test. */
  takeLeaks(): string[] {
    const leaks = this.leaks(this.tracked.splice(0));
    if (leaks.length > 0) this.forceCleanup();
    return leaks;
  }

  /** Everything a finished test could leave: the containers' own pieces, runc containers, tsrun
   * state, pins, mounts, cgroups and any container veth. Empty means clean. */
  leaks(ids: { id: string; network?: string }[]): string[] {
    const found = [...this.host.leaks(ids.map((c) => c.id)), ...this.leaksOf(ids)];
    // Live names, and the dying names a poststop's detached delete works on (dismissVeth).
    for (const l of this.host.ns.settledLinks(/^tsv([0-9a-f]{8}|z\d+)$/)) if (!found.some((f) => f.startsWith(`link ${l}`))) found.push(`link ${l}`);
    return found;
  }

  /** After a failed test: delete every runc container (its poststop tears its network down), so
   * that one failure does not spill into the next test. */
  forceCleanup(): void {
    for (const id of this.host.runcList()) this.runc(['delete', '--force', id]);
  }

  /** Log lines of one container, parsed. */
  logOf(id: string): Record<string, unknown>[] {
    if (!existsSync(this.host.logFile)) return [];
    return readFileSync(this.host.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes(id))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.containerId === id);
  }

  destroy(): void {
    this.host.destroy();
    for (const b of this.bundles) removeDir(b);
  }
}

/** Runtimes run hooks in whatever environment they were given; give them one without tsrun's
 * settings, so that only what the registration recorded can make the hook work. */
export function runtimeEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8' };
}

/** The IPv4 address/prefix of eth0 printed by `ip -o -4 addr show eth0` inside a container. */
export function eth0Address(output: string): string | undefined {
  return /\beth0\s+inet\s+(\d+\.\d+\.\d+\.\d+\/\d+)/.exec(output)?.[1];
}

/** runc's error message, unquoted from its logfmt line (`level=error msg="..."`). */
export function runcMessage(stderr: string): string {
  const m = /msg=("(?:[^"\\]|\\.)*")/.exec(stderr);
  if (!m) return stderr;
  try {
    return JSON.parse(m[1]!) as string;
  } catch {
    return m[1]!;
  }
}

/** runc failed because a hook did, and what the hook said (its stderr) is exactly one line
 * matching `line`: no stack trace, nothing else. */
export function expectOneLineFailure(r: RunResult, line: RegExp): void {
  expect(r.status).not.toBe(0);
  const msg = runcMessage(r.stderr);
  const hookStderr = /error running hook[^]*?stderr: ([^]*)$/.exec(msg)?.[1];
  expect(hookStderr).toBeDefined();
  expect(hookStderr!.endsWith('\n')).toBe(true);
  expect(hookStderr!.trimEnd().split('\n')).toHaveLength(1);
  expect(hookStderr!.trimEnd()).toMatch(line);
}

function removeDir(dir: string): void {
  // The rootfs is shared (makeBundle points root.path at it), so this removes config.json only.
  rmSync(dir, { recursive: true, force: true });
}

/**
 * A container's process in `ns` (a `sleep` entered into it), for states whose namespace outlives
 * the container (held by `ns`'s pin, as a runtime's pin holds it): poststop comes after that
 * process has ended (endProcess), and the hook leaves alone a record whose process still runs.
 */
export async function containerProcess(ns: Netns, children: ChildProcess[]): Promise<number> {
  const child = ns.spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(child);
  await waitFor('a process in the namespace', () => {
    try {
      return readlinkSync(`/proc/${child.pid}/ns/net`) === readlinkSync(ns.path) && readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  });
  return child.pid!;
}

/** SIGKILL to `pid`, and back once it has ended (gone, or a zombie not yet reaped). */
export function endProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 500; i++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) return;
    Atomics.wait(nap, 0, 0, 10);
  }
  throw new Error(`process ${pid} did not end`);
}
