// tsrun-runc under containerd 1.6 (Debian's), driven with ctr. containerd is started by the test
// inside the sandbox host's network namespace and a private mount namespace (spawnPrivateDaemon), with its own root,
// state, sockets and config (no CRI); the shim is told to run tsrun-runc (`ctr run
// --runc-binary`, what the CRI's BinaryName option does) with a private runc root. The image is
// an OCI archive built from the busybox fixture and loaded with `ctr image import`.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from '../../harness/sandbox.js';
import { HOST_UPLINK_IP, engineWorld, eth0Address, have, ociImageArchive, spawnPrivateDaemon, stopDaemon, type EngineWorld } from './helpers.js';

const ok = have('containerd') && have('ctr') && have('containerd-shim-runc-v2', ['-v']) && have('runc');
const run = ok ? describe : describe.skip;
if (!ok) console.warn('tsrun-runc containerd tests skipped: containerd (with ctr and containerd-shim-runc-v2) or runc is not installed');

const IMAGE = 'docker.io/tsrun/busybox-test:latest';
const NS = `tsrun-ctr-${process.pid}`;
let ew: EngineWorld;
let daemon: ChildProcess | undefined;
let sock: string;

function ctr(args: string[], timeoutMs = 60_000) {
  return ew.world.host.ns.exec('ctr', ['--address', sock, '--namespace', NS, ...args], { timeoutMs });
}

function ctrRun(name: string, annotations: Record<string, string>, command: string[], detach = true) {
  return ctr([
    'run', ...(detach ? ['-d'] : ['--rm']), '--fifo-dir', fifoDir(),
    '--runc-binary', ew.runtime, '--runc-root', path.join(ew.work, 'runc'), '--cgroup', `${ew.cgroupParent}/${name}`,
    ...Object.entries(annotations).flatMap(([k, v]) => ['--annotation', `${k}=${v}`]),
    IMAGE, name, ...command,
  ]);
}

/** ctr makes the container's stdio FIFOs on the client side: in the work directory, where the
 * shim (whose /run is private) finds them, rather than the machine's /run/containerd/fifo. */
const fifoDir = () => path.join(ew.work, 'fifo');

/** Kills and deletes a task and its container, whatever state they are in. */
function removeContainer(name: string): void {
  ctr(['task', 'kill', '--signal', 'SIGKILL', name]);
  for (let i = 0; i < 50 && /RUNNING/.test(ctr(['task', 'ls']).stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? ''); i++) spawnWait(100);
  ctr(['task', 'delete', name]);
  ctr(['container', 'delete', name]);
}

function spawnWait(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

run('containerd: ctr run --runc-binary tsrun-runc', () => {
  beforeAll(async () => {
    ew = await engineWorld('ocictr', '10.128.0.0/24');
    const dir = path.join(ew.work, 'containerd');
    mkdirSync(dir, { recursive: true });
    sock = path.join(dir, 'containerd.sock');
    const config = path.join(dir, 'config.toml');
    writeFileSync(
      config,
      [
        'version = 2',
        `root = "${path.join(dir, 'root')}"`,
        `state = "${path.join(dir, 'state')}"`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
        '[grpc]',
        `  address = "${sock}"`,
        '[ttrpc]',
        `  address = "${sock}.ttrpc"`,
        '[debug]',
        '  address = ""',
        '',
      ].join('\n'),
    );
    daemon = spawnPrivateDaemon(ew, ['containerd', '--config', config, '--log-level', 'warn']);
    await waitFor('containerd to answer', () => ew.world.host.ns.exec('ctr', ['--address', sock, 'version'], { timeoutMs: 5000 }).status === 0, 30_000);
    const archive = ociImageArchive(ew.rootfs, path.join(ew.work, 'image'), IMAGE, ['sh']);
    const imp = ctr(['image', 'import', archive], 120_000);
    if (imp.status !== 0) throw new Error(`ctr image import: ${imp.stderr}`);
  }, 120_000);

  afterAll(async () => {
    await ew?.destroy(async () => {
      if (!daemon) return;
      for (const name of ctr(['container', 'ls', '-q']).stdout.split('\n').filter(Boolean)) removeContainer(name);
      ctr(['image', 'rm', IMAGE]);
      await stopDaemon(daemon);
    });
  }, 120_000);

  afterEach(() => {
    expect(ew.world.leaks()).toEqual([]);
  });

  it('a detached container gets its tsrun address and published port; exec, kill and delete leave nothing', async () => {
    const r = ctrRun('ctr-web', { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8087:80' }, ['httpd', '-f', '-p', '80', '-h', '/var/www']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const exec = ctr(['task', 'exec', '--fifo-dir', fifoDir(), '--exec-id', 'probe', 'ctr-web', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(exec.status).toBe(0);
    expect(eth0Address(exec.stdout)).toMatch(/^10\.128\.0\.\d+\/24$/);
    await ew.world.waitHttp(eth0Address(exec.stdout)!.split('/')[0]!);
    expect(ew.world.outside.httpGet(`http://${HOST_UPLINK_IP}:8087/`)).toBe(`${ew.page}\n`);

    removeContainer('ctr-web');
    expect(ctr(['container', 'ls', '-q']).stdout.trim()).toBe('');
    const msgs = ew.logOf('ctr-web').map((l) => l.msg);
    expect(msgs).toContain('tsrun-runc create: wired');
    expect(msgs).toContain('tsrun-runc delete: torn down');
  });

  it('ctr run --rm in the foreground: output, exit status, nothing left', () => {
    const r = ctrRun('ctr-fg', { 'io.tsrun.network': 'web' }, ['sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.128.0.1 >/dev/null && echo GW-OK; exit 3'], false);
    expect(r.stdout).toContain('GW-OK');
    expect(eth0Address(r.stdout)).toMatch(/^10\.128\.0\.\d+\/24$/);
    expect(r.status).toBe(3);
  });

  it('a bad annotation fails the create with tsrun-runc\'s line (from the json log) and creates nothing', () => {
    const r = ctrRun('ctr-bad', { 'io.tsrun.network': 'nope' }, ['echo', 'STARTED']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('tsrun-runc create: network nope not found');
    removeContainer('ctr-bad');
  });
});
