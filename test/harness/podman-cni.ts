// podman 4 with its CNI backend, entirely private: storage, run root, tmpdir and network
// configuration in a work directory; a containers.conf of its own (network_backend = "cni",
// network_config_dir and cni_plugin_dirs the work directory's, then /usr/lib/cni); runc and
// cgroupfs under a cgroup parent of its own. podman and the plugins it runs act inside a sandbox
// host's network namespace and inside a mount namespace of this harness, where /run/netns (the
// container namespaces podman creates) and /var/lib/cni (libcni's result cache, host-local's
// leases) are tmpfs: nothing of theirs reaches the machine's directories, and all of it goes when
// the pin of that mount namespace dies.
import { removeCgroupTree } from './cgroups.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_ROOTFS, waitFor, type Netns, type RunResult } from './sandbox.js';

export const havePodman = spawnSync('podman', ['--version'], { encoding: 'utf8' }).status === 0;

/** Directories the private mount namespace covers with tmpfs (created if missing, removed after). */
const PRIVATE_DIRS = ['/run/netns', '/var/lib/cni'];

export class PodmanCni {
  readonly binDir: string;
  readonly confDir: string;
  readonly rootfs: string;
  readonly cgroupParent: string;
  private constructor(
    readonly work: string,
    readonly net: Pick<Netns, 'path'>,
    private readonly mountPin: ChildProcess,
    private readonly created: string[],
  ) {
    this.binDir = path.join(work, 'bin');
    this.confDir = path.join(work, 'net.d');
    this.rootfs = path.join(work, 'rootfs');
    this.cgroupParent = `/tsrun-cnipodman-${process.pid}-${path.basename(work)}`;
  }

  static async create(net: Pick<Netns, 'path'>, name: string): Promise<PodmanCni> {
    const work = mkdtempSync(path.join(os.tmpdir(), `tsrun-${name}-`));
    const created = PRIVATE_DIRS.filter((d) => !existsSync(d));
    for (const d of created) mkdirSync(d, { recursive: true });
    const script = `${PRIVATE_DIRS.map((d) => `mount -t tmpfs -o mode=0755 tmpfs ${d}`).join(' && ')} && echo ready && exec sleep infinity`;
    const pin = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    pin.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the private mount namespace', () => out.includes('ready') || pin.exitCode !== null, 10_000);
    if (pin.exitCode !== null) throw new Error(`mount namespace pin exited ${pin.exitCode}`);
    const p = new PodmanCni(work, net, pin, created);
    mkdirSync(p.binDir);
    mkdirSync(p.confDir);
    // podman creates mount points and /etc files inside a --rootfs: a copy of its own.
    cpSync(BUSYBOX_ROOTFS, p.rootfs, { recursive: true, verbatimSymlinks: true });
    writeFileSync(path.join(p.rootfs, 'var', 'www', 'index.html'), 'served by busybox through tsrun\n');
    writeFileSync(
      path.join(work, 'containers.conf'),
      [
        '[network]',
        'network_backend = "cni"',
        `network_config_dir = "${p.confDir}"`,
        `cni_plugin_dirs = ["${p.binDir}", "/usr/lib/cni"]`,
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        '',
      ].join('\n'),
    );
    return p;
  }

  /** `podman ARGS` in the sandbox's network namespace and the private mount namespace. */
  podman(args: string[], timeoutMs = 120_000): RunResult {
    const flags = [
      '--root', path.join(this.work, 'storage'),
      '--runroot', path.join(this.work, 'runroot'),
      '--tmpdir', path.join(this.work, 'tmp'),
      '--volumepath', path.join(this.work, 'volumes'),
      '--network-config-dir', this.confDir,
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      '--runtime', 'runc',
      '--log-level', 'error',
    ];
    const r = spawnSync('nsenter', [`--net=${this.net.path}`, `--mount=/proc/${this.mountPin.pid}/ns/mnt`, '--', 'podman', ...flags, ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root', LANG: 'C.UTF-8', CONTAINERS_CONF: path.join(this.work, 'containers.conf') },
      timeout: timeoutMs,
    });
    return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  }

  /** Options every `podman run` here takes (cgroup parent, ulimits within the hard limits). */
  runOptions(): string[] {
    return ['--cgroup-parent', this.cgroupParent, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  }

  destroy(): void {
    this.podman(['rm', '--all', '--force', '--time', '0']);
    this.mountPin.kill('SIGKILL');
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp && mp.startsWith(this.work)) spawnSync('umount', ['-l', mp]);
    }
    rmSync(this.work, { recursive: true, force: true });
    removeCgroupTree(this.cgroupParent);
    for (const d of this.created.reverse()) rmdirQuiet(d);
  }
}

function rmdirQuiet(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty (someone else uses it now) or already gone
  }
}
