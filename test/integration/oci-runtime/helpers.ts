// Shared by the tests of tsrun-runc under real engines: a BridgeWorld (a sandbox host with an
// uplink to an "outside" namespace), a network for the containers, tsrun-runc registered the way
// docs/oci-runtime.md says (`tsrun oci-runtime install` writes the executable the engine runs),
// a busybox root filesystem of the test's own (engines write into it), and a cgroup parent of
// the test's own, removed at the end.
import { removeCgroupTree } from '../../harness/cgroups.js';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { BUSYBOX_ROOTFS } from '../../harness/sandbox.js';

export { HOST_UPLINK_IP };

export const have = (cmd: string, args = ['--version']): boolean => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;

export interface EngineWorld {
  world: BridgeWorld;
  /** Private scratch directory: the engine's state, sockets, config. */
  work: string;
  /** The executable registered with the engine (written by `tsrun oci-runtime install`). */
  runtime: string;
  /** A busybox rootfs of this test's own, with /var/www/index.html saying `page`. */
  rootfs: string;
  page: string;
  cgroupParent: string;
  /** tsrun's log lines about one container. */
  logOf(id: string): Record<string, unknown>[];
  /** `extra` first (the engine's own cleanup, stopping its daemon), then everything else. */
  destroy(extra?: () => void | Promise<void>): Promise<void>;
}

export async function engineWorld(name: string, subnet: string): Promise<EngineWorld> {
  const world = await BridgeWorld.create(name);
  const work = mkdtempSync(path.join(os.tmpdir(), `tsrun-${name}-`));
  const runtime = path.join(work, 'bin', 'tsrun-runc');
  world.tsrunOk(['network', 'create', 'web', '--subnet', subnet]);
  spawnSync('mkdir', ['-p', path.dirname(runtime)]);
  world.tsrunOk(['oci-runtime', 'install', '--path', runtime]);
  const rootfs = path.join(work, 'rootfs');
  cpSync(BUSYBOX_ROOTFS, rootfs, { recursive: true, verbatimSymlinks: true });
  const page = `served by ${name} through tsrun-runc`;
  writeFileSync(path.join(rootfs, 'var/www/index.html'), `${page}\n`);
  const cgroupParent = `/tsrun-${name}-${process.pid}`;
  const logOf = (id: string) => {
    const file = world.host.logFile;
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes(id))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.containerId === id);
  };
  return {
    world,
    work,
    runtime,
    rootfs,
    page,
    cgroupParent,
    logOf,
    async destroy(extra) {
      try {
        await extra?.();
      } finally {
        unmountUnder(work);
        rmSync(work, { recursive: true, force: true });
        removeCgroupTree(cgroupParent);
        await world.destroy();
      }
    },
  };
}

/** Lazily unmounts whatever an engine left mounted under `dir`, deepest first. */
/** podman's global flags for a test: its storage, run root, temporary files, volumes and network
 * configs all under `work` (never the machine's), cgroupfs, file events, the runtime named. */
export function podmanPrivateFlags(work: string, runtime: string): string[] {
  return [
    '--root', path.join(work, 'storage'),
    '--runroot', path.join(work, 'runroot'),
    '--tmpdir', path.join(work, 'tmp'),
    '--volumepath', path.join(work, 'volumes'),
    '--network-config-dir', path.join(work, 'netconf'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--runtime', runtime,
    '--log-level', 'error',
  ];
}

export function unmountUnder(dir: string): void {
  const mps = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => mp !== undefined && (mp === dir || mp.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const mp of mps) spawnSync('umount', ['-l', mp]);
}

/** The IPv4 address/prefix of eth0 in `ip -o -4 addr show eth0` output. */
export function eth0Address(output: string): string | undefined {
  return /\beth0\s+inet\s+(\d+\.\d+\.\d+\.\d+\/\d+)/.exec(output)?.[1];
}

/** A tar of `rootfs` (numeric owners, root-owned): a `docker import` archive and an image layer. */
export function rootfsTar(rootfs: string, out: string): string {
  const r = spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', out, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar of ${rootfs} failed: ${r.stderr}`);
  return out;
}

/**
 * An OCI image archive (the image layout, tarred) of one layer made from `rootfs`, named `name`,
 * for `ctr image import`: blobs/sha256/…, index.json naming the image, oci-layout.
 */
export function ociImageArchive(rootfs: string, dir: string, name: string, cmd: string[] = ['sh'], extra: { annotations?: Record<string, string>; env?: string[] } = {}): string {
  const layout = path.join(dir, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  spawnSync('mkdir', ['-p', blobs]);
  const put = (data: Buffer): { digest: string; size: number } => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(path.join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layer = put(readFileSync(rootfsTar(rootfs, path.join(dir, 'layer.tar'))));
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: cmd, ...(extra.env ? { Env: extra.env } : {}) }, rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        ...(extra.annotations ? { annotations: extra.annotations } : {}),
      }),
    ),
  );
  const index = {
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: { architecture: 'amd64', os: 'linux' }, annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'latest' } }],
  };
  writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
  writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const out = path.join(dir, 'image.tar');
  const r = spawnSync('tar', ['-C', layout, '-cf', out, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar of the image layout failed: ${r.stderr}`);
  return out;
}

/**
 * A daemon (containerd, dockerd) in the sandbox host's network namespace and a mount namespace
 * of its own, where /run is a fresh tmpfs and /etc/docker a directory of the test's: what the
 * daemon, its shims and runc mount (snapshots, rootfs) or write to fixed machine paths
 * (/run/containerd/s, /run/docker, /etc/docker/key.json) stays in that namespace and goes with it.
 */
export function spawnPrivateDaemon(ew: EngineWorld, command: string[]) {
  const etc = path.join(ew.work, 'etc-docker');
  spawnSync('mkdir', ['-p', etc]);
  const script = 'mount -t tmpfs tsrun-test-run /run && { [ ! -d /etc/docker ] || mount --bind "$0" /etc/docker; } && exec "$@"';
  return ew.world.host.ns.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, etc, ...command], { stdio: 'ignore' });
}

/** SIGTERM to a daemon started by spawnPrivateDaemon, then wait (at most 30 s) for it to exit. */
export async function stopDaemon(daemon: import('node:child_process').ChildProcess | undefined): Promise<void> {
  if (!daemon || daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  daemon.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
}
