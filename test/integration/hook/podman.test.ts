// tsrun's hook driven by podman through a hooks.d directory written by `tsrun hook install`.
// podman runs inside the sandbox host's namespace with storage, run root, tmpdir and network
// config of its own (never the machine's), `--runtime runc` (crun refuses this machine's hybrid
// cgroup layout), cgroupfs, file events, and ulimits within the hard limits. The container is
// `--network none` for podman: its network comes from tsrun's hook.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeCgroupTree } from '../../harness/cgroups.js';
import { BUSYBOX_ROOTFS } from '../../harness/sandbox.js';
import { HookHost, eth0Address, runtimeEnv } from './helpers.js';
import { podmanPrivateFlags } from '../oci-runtime/helpers.js';

const havePodman = spawnSync('podman', ['--version'], { encoding: 'utf8' }).status === 0;
const haveRunc = spawnSync('runc', ['--version'], { encoding: 'utf8' }).status === 0;
const run = havePodman && haveRunc ? describe : describe.skip;
if (!havePodman || !haveRunc) console.warn(`podman hook tests skipped: ${havePodman ? 'runc' : 'podman'} is not installed`);

let hh: HookHost;
let work: string;
let rootfs: string;
const dirs = { always: '', annotated: '' };
const used: { id: string; network?: string }[] = [];
// Containers and conmon go under a cgroup parent of this run's own, removed at the end, rather
// than podman's shared libpod_parent.
const CGROUP_PARENT = `/tsrun-hooktest-${process.pid}`;

function podman(hooksDir: string, args: string[]) {
  const flags = [
    ...podmanPrivateFlags(work, 'runc'),
    '--hooks-dir', hooksDir,
  ];
  return hh.host.ns.exec('podman', [...flags, ...args], { env: runtimeEnv(), timeoutMs: 120_000 });
}

/** `podman run` of busybox with tsrun's annotations; returns the result and the container id. */
function podmanRun(hooksDir: string, name: string, annotations: Record<string, string>, command: string[]) {
  const cidFile = path.join(work, `${name}.cid`);
  const opts = [
    '--name', name, '--cidfile', cidFile, '--cgroup-parent', CGROUP_PARENT, '--network', 'none', '--cap-add', 'NET_RAW',
    '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    ...Object.entries(annotations).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]),
  ];
  // With --rootfs the options must come before it: what follows is the command.
  const r = podman(hooksDir, ['run', ...opts, '--rootfs', rootfs, ...command]);
  const id = readFileSync(cidFile, 'utf8').trim();
  return { ...r, id };
}

run('podman with tsrun\'s hooks.d files', () => {
  beforeAll(async () => {
    hh = await HookHost.create('hookpodman');
    work = mkdtempSync(path.join(os.tmpdir(), 'tsrun-podman-'));
    // podman creates mount points and /etc files inside a --rootfs: give it a copy of its own.
    rootfs = path.join(work, 'rootfs');
    cpSync(BUSYBOX_ROOTFS, rootfs, { recursive: true, verbatimSymlinks: true });
    expect(hh.tsrun(['network', 'create', 'web', '--subnet', '10.126.0.0/24']).status).toBe(0);
    dirs.always = path.join(work, 'hooks-always');
    dirs.annotated = path.join(work, 'hooks-annotated');
    mkdirSync(dirs.always);
    expect(hh.tsrun(['hook', 'install', '--hooks-dir', dirs.always]).status).toBe(0);
    const restricted = hh.tsrun(['hook', 'install', '--hooks-dir', dirs.annotated, '--annotation', 'io.tsrun.network=.+', '--name', 'tsrun-annotated']);
    expect(restricted.stderr).toBe('');
    expect(restricted.stdout.trim().split('\n').map((f) => path.basename(f))).toEqual(['tsrun-annotated-createRuntime.json', 'tsrun-annotated-poststop.json']);
  }, 60_000);

  afterAll(() => {
    if (work) {
      podman(dirs.always, ['rm', '--all', '--force']);
      // Overlay mounts of podman's storage, if any survived.
      for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
        const mp = line.split(' ')[4];
        if (mp && mp.startsWith(work)) spawnSync('umount', ['-l', mp]);
      }
      rmSync(work, { recursive: true, force: true });
      removeCgroupTree(CGROUP_PARENT);
    }
    hh?.destroy();
  }, 60_000);

  afterEach(() => {
    const leaks = hh.leaks(used.splice(0));
    expect(leaks).toEqual([]);
  });

  it('a container gets tsrun\'s network from the hook and reaches the gateway; podman rm leaves nothing', () => {
    const r = podmanRun(dirs.always, 'pm-web', { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8085:80' }, ['sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.126.0.1 && echo GW-OK']);
    used.push({ id: r.id, network: 'web' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(eth0Address(r.stdout)).toMatch(/^10\.126\.0\.\d+\/24$/);
    expect(r.stdout).toContain('GW-OK');
    // podman ran prestart/createRuntime through runc, and poststop itself (PATH-less env).
    const done = hh.logOf(r.id).filter((l) => l.msg === 'hook done').map((l) => [l.stage, l.result]);
    expect(done).toEqual([['createRuntime', 'attached'], ['poststop', 'detached']]);
    const rm = podman(dirs.always, ['rm', 'pm-web']);
    expect(rm.status).toBe(0);
    expect(podman(dirs.always, ['ps', '-a', '-q']).stdout.trim()).toBe('');
  });

  it('a failing hook stops podman from starting the container, with tsrun\'s line', () => {
    const r = podmanRun(dirs.always, 'pm-bad', { 'io.tsrun.network': 'nope' }, ['echo', 'STARTED']);
    used.push({ id: r.id, network: 'nope' });
    expect(r.status).not.toBe(0);
    expect(r.stdout).not.toContain('STARTED');
    expect(r.stderr).toContain('tsrun: hook createRuntime: network nope not found');
    expect(podman(dirs.always, ['rm', '--force', 'pm-bad']).status).toBe(0);
  });

  it('a hooks.d file restricted by an annotation leaves other containers alone', () => {
    const plain = podmanRun(dirs.annotated, 'pm-plain', {}, ['ip', '-o', 'link']);
    used.push({ id: plain.id });
    expect(plain.stderr).toBe('');
    expect(plain.status).toBe(0);
    expect(plain.stdout.trim().split('\n')).toHaveLength(1); // lo only
    expect(hh.logOf(plain.id)).toEqual([]); // the hook never ran for it

    const wired = podmanRun(dirs.annotated, 'pm-annotated', { 'io.tsrun.network': 'web' }, ['sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.126.0.1 && echo GW-OK']);
    used.push({ id: wired.id, network: 'web' });
    expect(wired.status).toBe(0);
    expect(wired.stdout).toContain('GW-OK');
    expect(podman(dirs.annotated, ['rm', 'pm-plain', 'pm-annotated']).status).toBe(0);
  });
});
