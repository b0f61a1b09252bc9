// tsrun-runc, the OCI runtime (docs/oci-runtime.md):
//   - pass-through: `create` + `start` + `delete --force` of a bundle without tsrun annotations,
//     through tsrun-runc vs runc itself. Target ≤ 1.3×. Beside it, the Node start-up floor: what
//     the same three calls would cost if each started Node (3 × `node -e 0` + runc), which the
//     shell front avoids;
//   - wired: the same cycle with io.tsrun.network (tsrun-runc wires at create, tears down at
//     delete) vs runc without a network, for information;
//   - podman run --rm: --runtime tsrun-runc with a tsrun network vs --runtime runc --network none
//     vs podman's own bridge (netavark);
//   - ctr run --rm (containerd 1.6, started here with private state): --runc-binary tsrun-runc
//     with a tsrun network vs runc without a network.
// Everything runs in the benchmark's own network namespace; the daemons get private state.
import { removeCgroupTree } from '../../test/harness/cgroups.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_BUNDLE, PROJECT_ROOT, Report, TSRUN, benchBundle, benchEnv, interleave, median, timeCommand } from '../lib.js';

const FRONT = path.join(PROJECT_ROOT, 'dist/bundle/tsrun-runc');

export async function ociRuntimeSuite(report: Report, runs: number): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-ociruntime-'));
  const env = benchEnv({ TSRUN_ROOT: path.join(root, 'tsrun') });
  const runtime = path.join(root, 'tsrun-runc');
  try {
    const sh = (args: string[]) => {
      const r = spawnSync(TSRUN, [...args], { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')}: ${r.stderr}`);
    };
    sh(['network', 'create', 'ocibench', '--subnet', '10.79.0.0/16']);
    sh(['oci-runtime', 'install', '--path', runtime]);
    passThrough(report, runs, env, root, runtime);
    podman(report, Math.min(runs, 10), env, root, runtime);
    await containerd(report, Math.min(runs, 10), env, root, runtime);
  } finally {
    unmountUnder(root);
    rmSync(root, { recursive: true, force: true });
  }
}

function passThrough(report: Report, runs: number, env: NodeJS.ProcessEnv, root: string, runtime: string): void {
  report.section(`tsrun-runc: create + start + delete --force vs runc, busybox sleep (median of ${runs})`);
  const plain = benchBundle(['sleep', '60']);
  const wired = benchBundle(['sleep', '60']);
  const spec = JSON.parse(readFileSync(path.join(wired.dir, 'config.json'), 'utf8'));
  spec.annotations = { 'io.tsrun.network': 'ocibench' };
  writeFileSync(path.join(wired.dir, 'config.json'), JSON.stringify(spec));
  let n = 0;
  const cycle = (bin: string, bundle: string, runcRoot: string) => (): number => {
    const id = `ob-${process.pid}-${++n}`;
    const o = { env, stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'] };
    // create: no pipes at all, or the container (which inherits them) would hold them open
    return (
      timeCommand(bin, ['--root', runcRoot, 'create', '--bundle', bundle, '--pid-file', path.join(root, `${id}.pid`), id], { env, stdio: 'ignore' }) +
      timeCommand(bin, ['--root', runcRoot, 'start', id], o) +
      timeCommand(bin, ['--root', runcRoot, 'delete', '--force', id], o)
    );
  };
  try {
    const t = interleave(runs, {
      runc: cycle('runc', plain.dir, path.join(root, 'runc-ref')),
      front: cycle(FRONT, plain.dir, path.join(root, 'runc-front')),
      wired: cycle(runtime, wired.dir, path.join(root, 'runc-wired')),
      node: () => timeCommand(process.execPath, ['-e', '0'], { env }),
    });
    const runc = median(t.runc!);
    const front = median(t.front!);
    const node = median(t.node!);
    report.add({ name: 'runc create + start + delete', value: runc, unit: 'ms' });
    report.add({ name: 'tsrun-runc (no tsrun annotation: pass-through)', value: front, unit: 'ms' });
    report.add({ name: 'tsrun-runc pass-through / runc', value: front / runc, unit: '×', target: '≤ 1.3' });
    report.add({ name: 'node -e 0 (a cold Node process)', value: node, unit: 'ms' });
    report.add({ name: 'Node floor: (3 × node -e 0 + runc) / runc', value: (3 * node + runc) / runc, unit: '×', note: 'a Node front on every call; the shell front avoids it' });
    report.add({ name: 'tsrun-runc with io.tsrun.network (wired, torn down)', value: median(t.wired!), unit: 'ms' });
    report.add({ name: 'wired / runc without a network', value: median(t.wired!) / runc, unit: '×' });
    // A wired cycle starts Node twice (create wires, delete tears down): its floor is runc plus two
    // cold Node processes; the engine's attach and detach (the bridge suite) come on top.
    const floor = runc + 2 * node;
    report.add({ name: 'wired floor: runc + 2 × node -e 0', value: floor, unit: 'ms' });
    report.add({ name: 'wired / wired floor', value: median(t.wired!) / floor, unit: '×', note: 'the rest: the engine attach + detach, module loading' });
  } finally {
    for (const r of ['runc-ref', 'runc-front', 'runc-wired']) {
      const dir = path.join(root, r);
      if (!existsSync(dir)) continue;
      for (const id of readdirSync(dir)) spawnSync('runc', ['--root', dir, 'delete', '--force', id], { stdio: 'ignore' });
    }
    plain.cleanup();
    wired.cleanup();
  }
}

const PODMAN_CGROUP_PARENT = '/tsrun-bench-ociruntime';

function podman(report: Report, runs: number, env: NodeJS.ProcessEnv, root: string, runtime: string): void {
  report.section(`podman run --rm: --runtime tsrun-runc (tsrun network) vs runc --network none vs podman bridge, /bin/true (median of ${runs})`);
  if (spawnSync('podman', ['--version']).status !== 0) {
    report.add({ name: 'podman (not installed)', value: 0, unit: '' });
    return;
  }
  const storage = path.join(root, 'podman');
  const rootfs = path.join(root, 'podman-rootfs');
  spawnSync('cp', ['-a', path.join(BUSYBOX_BUNDLE, 'rootfs'), rootfs]);
  const args = (rt: string, net: string[]) => [
    '--root', `${storage}/root`, '--runroot', `${storage}/runroot`, '--tmpdir', `${storage}/tmp`, '--network-config-dir', `${storage}/net`,
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', rt,
    'run', '--rm', '--cgroup-parent', PODMAN_CGROUP_PARENT, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', ...net, '--rootfs', rootfs, '/bin/true',
  ];
  const variants = {
    tsrun: () => timeCommand('podman', args(runtime, ['--network', 'none', '--annotation', 'io.tsrun.network=ocibench']), { env }),
    runcNone: () => timeCommand('podman', args('runc', ['--network', 'none']), { env }),
    podmanBridge: () => timeCommand('podman', args('runc', ['--network', 'bridge']), { env }),
  };
  try {
    for (const f of Object.values(variants)) f(); // warm-up: storage, podman's network, bridges
    const t = interleave(runs, variants);
    const none = median(t.runcNone!);
    report.add({ name: 'podman run --runtime runc --network none', value: none, unit: 'ms' });
    report.add({ name: 'podman run --runtime tsrun-runc, tsrun network', value: median(t.tsrun!), unit: 'ms' });
    report.add({ name: 'podman run --runtime runc --network bridge (netavark)', value: median(t.podmanBridge!), unit: 'ms' });
    report.add({ name: 'tsrun-runc network / runc no network', value: median(t.tsrun!) / none, unit: '×' });
    report.add({ name: 'tsrun-runc network / podman bridge', value: median(t.tsrun!) / median(t.podmanBridge!), unit: '×' });
  } catch (err) {
    report.add({ name: 'podman (failed here)', value: 0, unit: '', note: (err as Error).message.split('\n')[0] });
  } finally {
    spawnSync('podman', ['--root', `${storage}/root`, '--runroot', `${storage}/runroot`, 'system', 'reset', '-f'], { env, stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', 'podman0'], { stdio: 'ignore' });
    removeCgroupTree(PODMAN_CGROUP_PARENT);
  }
}

async function containerd(report: Report, runs: number, env: NodeJS.ProcessEnv, root: string, runtime: string): Promise<void> {
  report.section(`ctr run --rm (containerd 1.6): --runc-binary tsrun-runc (tsrun network) vs runc without a network, /bin/true (median of ${runs})`);
  if (spawnSync('containerd', ['--version']).status !== 0) {
    report.add({ name: 'containerd (not installed)', value: 0, unit: '' });
    return;
  }
  const dir = path.join(root, 'containerd');
  mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'containerd.sock');
  const config = path.join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]',
    '[grpc]', `  address = "${sock}"`, '[ttrpc]', `  address = "${sock}.ttrpc"`, '',
  ].join('\n'));
  // A mount namespace of its own with a private /run: snapshots, bundles and shim sockets go with it.
  const daemon: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tsrun-bench-run /run && exec "$@"', 'sh', 'containerd', '--config', config, '--log-level', 'error'], { stdio: 'ignore', env });
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  const ctr = (args: string[]) => spawnSync('ctr', ['--address', sock, '--namespace', 'ocibench', ...args], { env, encoding: 'utf8' });
  try {
    for (let i = 0; i < 300 && ctr(['version']).status !== 0; i++) spawnSync('sleep', ['0.1']);
    const rootfs = path.join(root, 'ctr-rootfs');
    spawnSync('cp', ['-a', path.join(BUSYBOX_BUNDLE, 'rootfs'), rootfs]);
    let n = 0;
    const run = (bin: string, ann: string[]) => () =>
      timeCommand('ctr', ['--address', sock, '--namespace', 'ocibench', 'run', '--rm', '--fifo-dir', path.join(dir, 'fifo'), '--runc-binary', bin, '--runc-root', path.join(dir, 'runc'), '--cgroup', `/tsrun-bench-ctr/c${++n}`, ...ann, '--rootfs', rootfs, `c${n}`, '/bin/true'], { env });
    const variants = { runc: run('runc', []), tsrun: run(runtime, ['--annotation', 'io.tsrun.network=ocibench']) };
    for (const f of Object.values(variants)) f();
    const t = interleave(runs, variants);
    report.add({ name: 'ctr run --rm, runc, no network', value: median(t.runc!), unit: 'ms' });
    report.add({ name: 'ctr run --rm, tsrun-runc, tsrun network', value: median(t.tsrun!), unit: 'ms' });
    report.add({ name: 'tsrun-runc network / runc no network', value: median(t.tsrun!) / median(t.runc!), unit: '×' });
  } catch (err) {
    report.add({ name: 'containerd (failed here)', value: 0, unit: '', note: (err as Error).message.split('\n')[0] });
  } finally {
    daemon.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000).unref())]);
    removeCgroupTree('/tsrun-bench-ctr');
  }
}

function unmountUnder(dir: string): void {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
    const mp = line.split(' ')[4];
    if (mp && mp.startsWith(`${dir}/`)) spawnSync('umount', ['-l', mp]);
  }
}
