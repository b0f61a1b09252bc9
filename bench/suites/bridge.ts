// Bridge networking: each target against its reference, measured in one run.
//  - tsrun run --net bridge -p 8080:80 vs runc run (no network)            target ≤ 1.8×
//  - attach+detach (engine, in-process as tsrun run does) vs CNI bridge ADD+DEL processes   ≤ 0.3× (issue 16)
//  - 200 attaches in a row: last 20 vs first 20 medians ≤ 1.15×; nft rule count at 1 and 200 equal
//  - in-process wiring time of one attach (≤ 5 ms median, reported)
//  - podman run --network bridge -p 8080:80 vs tsrun run                    ≤ 0.2×
//  (iperf3 through a bridge and a published port: the throughput suite)
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings } from '../../config/settings.js';
import { createLogger } from '../../runtime/log.js';
import { openEngine } from '../../runtime/context.js';
import { createPinnedNetns, deletePinnedNetns, openNetnsFd } from '../../runtime/netns/netns.js';
import { Rtnl } from '../../runtime/netlink/rtnl.js';
import { countRules } from '../../runtime/firewall/nft.js';
import { removeCgroup } from '../../runtime/cgroups/cleanup.js';
import { BUSYBOX_BUNDLE, Report, TSRUN, benchBundle, benchEnv, interleave, median, timeCommand } from '../lib.js';
import { engineVsCni } from '../engine-vs-cni.js';

export async function bridgeSuite(report: Report, runs: number): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-bridge-'));
  const env = benchEnv({ TSRUN_ROOT: root });
  const settings = resolveSettings(env);
  const log = createLogger({ file: settings.logFile, level: 'warn', debug: false });
  const bundle = benchBundle(['/bin/true']);
  try {
    runVsRunc(report, runs, env, bundle.dir, root);
    await attachVsCni(report, runs, settings, log, root);
    await scale(report, settings, log);
    podman(report, Math.min(runs, 10), env, bundle.dir, root);
  } finally {
    bundle.cleanup();
    spawnSync('ip', ['link', 'del', 'tsrun0']);
    rmSync(root, { recursive: true, force: true });
  }
}

function runVsRunc(report: Report, runs: number, env: NodeJS.ProcessEnv, bundle: string, root: string): void {
  report.section(`tsrun run --net bridge -p 8080:80 vs runc run, busybox /bin/true (median of ${runs})`);
  const runcRoot = path.join(root, 'runc-ref');
  let n = 0;
  // warm-up: the first attach creates the default network and the nft table
  timeCommand(TSRUN, ['run', '-p', '8080:80', bundle], { env });
  const t = interleave(runs, {
    runc: () => timeCommand('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `ref-${n++}`], { env }),
    tsrun: () => timeCommand(TSRUN, ['run', '--net', 'bridge', '-p', '8080:80', bundle], { env }),
    none: () => timeCommand(TSRUN, ['run', '--net', 'none', bundle], { env }),
  });
  report.add({ name: 'runc run (no network)', value: median(t.runc!), unit: 'ms' });
  report.add({ name: 'tsrun run --net none', value: median(t.none!), unit: 'ms' });
  report.add({ name: 'tsrun run --net bridge -p 8080:80', value: median(t.tsrun!), unit: 'ms' });
  report.add({ name: 'tsrun run --net bridge -p 8080:80 / runc run', value: median(t.tsrun!) / median(t.runc!), unit: '×', target: '≤ 1.8' });
  report.add({ name: 'bridge + port cost over --net none', value: median(t.tsrun!) - median(t.none!), unit: 'ms' });
}

async function attachVsCni(report: Report, runs: number, settings: ReturnType<typeof resolveSettings>, log: ReturnType<typeof createLogger>, root: string): Promise<void> {
  report.section(`attach+detach of one container: tsrun engine vs CNI bridge plugin ADD+DEL (median of ${runs})`);
  const handle = await openEngine(settings, log);
  const cniData = path.join(root, 'cni-ipam');
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'benchcni', type: 'bridge', bridge: 'cnibench0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: '10.77.0.0/24', dataDir: cniData } });
  const pin = path.join(root, 'run', 'netns', 'bench-attach');
  const cniPin = path.join(root, 'run', 'netns', 'bench-cni');
  createPinnedNetns(pin);
  createPinnedNetns(cniPin);
  try {
    const req = { containerId: 'bench-attach', netnsPath: pin, network: 'tsrun', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }] };
    // A new namespace per round, unpinned after the detach, as tsrun run does.
    const { attach: att, detach: det, wiring, cniAdd: add, cniDel: del } = await engineVsCni(runs, handle.engine, { ...req, netnsPath: `${pin}-r` }, { plugin: 'bridge', conf, containerId: 'benchcni', netnsPath: cniPin }, { freshNetns: true });
    report.add({ name: 'CNI bridge ADD (process, host-local, ipMasq)', value: median(add), unit: 'ms' });
    report.add({ name: 'CNI bridge DEL', value: median(del), unit: 'ms' });
    report.add({ name: 'tsrun attach (with one published port)', value: median(att), unit: 'ms' });
    report.add({ name: 'tsrun detach (veth left to the kernel, namespace unpinned)', value: median(det), unit: 'ms' });
    report.add({ name: 'tsrun attach+detach / CNI ADD+DEL', value: (median(att) + median(det)) / (median(add) + median(del)), unit: '×', target: '≤ 0.3' });
    report.add({ name: 'in-process wiring of one attach (record.wiringMs)', value: median(wiring), unit: 'ms', target: '≤ 5', note: 'includes IPAM and the nft batch' });
  } finally {
    await handle.engine.detach('bench-attach');
    deletePinnedNetns(pin);
    deletePinnedNetns(cniPin);
    spawnSync('ip', ['link', 'del', 'cnibench0']);
    await handle.close();
  }
}

async function scale(report: Report, settings: ReturnType<typeof resolveSettings>, log: ReturnType<typeof createLogger>): Promise<void> {
  report.section('scale: 200 containers attached one after another to one network');
  const handle = await openEngine(settings, log);
  const ids = Array.from({ length: 200 }, (_, i) => `scale-${i}`);
  const pins = ids.map((id) => path.join(settings.runDir, 'netns', id));
  const times: number[] = [];
  let rulesAt1 = 0;
  let first = 0;
  let last = 0;
  try {
    for (let i = 0; i < ids.length; i++) {
      createPinnedNetns(pins[i]!);
      const t0 = performance.now();
      await handle.engine.attach({ containerId: ids[i]!, netnsPath: pins[i]!, network: 'tsrun', ports: [{ hostPort: 20000 + i, containerPort: 80, protocol: 'tcp' }] });
      times.push(performance.now() - t0);
      if (i === 0) rulesAt1 = await countRules({ nftBinary: settings.nft });
    }
    const rulesAt200 = await countRules({ nftBinary: settings.nft });
    first = median(times.slice(0, 20));
    last = median(times.slice(-20));
    report.add({ name: 'attach median, containers 1-20', value: first, unit: 'ms' });
    report.add({ name: 'attach median, containers 181-200', value: last, unit: 'ms' });
    report.add({ name: 'last 20 / first 20', value: last / first, unit: '×', target: '≤ 1.15' });
    report.add({ name: `nft rules at 1 container (${rulesAt1}) and at 200 (${rulesAt200}): equal`, value: rulesAt200 === rulesAt1 ? 1 : 0, unit: '', note: rulesAt200 === rulesAt1 ? 'constant' : 'GREW' });
  } finally {
    for (const id of ids) await handle.engine.detach(id);
    for (const p of pins) deletePinnedNetns(p);
    await handle.close();
  }
  // The kernel's own growth, beside it: the veth request an attach makes (peer born in a
  // namespace of its own, this end enslaved and up, one request) on a bare bridge that gains
  // one port each time, nothing else. What tsrun adds above the kernel is the difference.
  const floor = await bridgePortFloor(ids.length);
  report.add({ name: 'floor: one veth onto a bare bridge, ports 1-20', value: floor.first, unit: 'ms' });
  report.add({ name: 'floor: one veth onto a bare bridge, ports 181-200', value: floor.last, unit: 'ms' });
  report.add({ name: 'floor: last 20 / first 20 (the kernel with 200 bridge ports)', value: floor.last / floor.first, unit: '×' });
  report.add({ name: "tsrun's growth above the floor's: (last - first) - floor's (last - first)", value: last - first - (floor.last - floor.first), unit: 'ms' });
}

/** Medians of the first and last 20 of `count` veth pairs put onto a bare bridge one by one,
 * each created as an attach creates its own (see bridgePortFloor's caller). */
async function bridgePortFloor(count: number): Promise<{ first: number; last: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-floor-'));
  const host = Rtnl.open();
  const pins: string[] = [];
  const times: number[] = [];
  try {
    await host.createBridge({ name: 'tsbfloor0', up: true });
    const bridge = (await host.getLink('tsbfloor0'))!;
    for (let i = 0; i < count; i++) {
      const pin = path.join(dir, `ns${i}`);
      createPinnedNetns(pin);
      pins.push(pin);
      const t0 = performance.now();
      const fd = openNetnsFd(pin);
      try {
        await host.createVeth({ name: `tsfl${i}`, peerName: 'eth0', peerNsFd: fd, master: bridge.index, up: true });
      } finally {
        closeSync(fd);
      }
      times.push(performance.now() - t0);
    }
    return { first: median(times.slice(0, 20)), last: median(times.slice(-20)) };
  } finally {
    for (let i = 0; i < pins.length; i++) await host.deleteLink(`tsfl${i}`).catch(() => false);
    await host.deleteLink('tsbfloor0').catch(() => false);
    for (const p of pins) deletePinnedNetns(p);
    host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function podman(report: Report, runs: number, env: NodeJS.ProcessEnv, bundle: string, root: string): void {
  report.section(`podman run --network bridge -p 8080:80 vs tsrun run, /bin/true (median of ${runs})`);
  const storage = path.join(root, 'podman');
  const rootfs = path.join(BUSYBOX_BUNDLE, 'rootfs');
  const podmanArgs = (net: string[]) => [
    '--root', `${storage}/root`, '--runroot', `${storage}/runroot`, '--tmpdir', `${storage}/tmp`, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc',
    // its own cgroup parent, removed below: podman's default (libpod_parent) would outlive the run
    'run', '--rm', '--cgroup-parent', PODMAN_CGROUP_PARENT, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', ...net, '--rootfs', rootfs, '/bin/true',
  ];
  const probe = spawnSync('podman', podmanArgs(['--network', 'bridge', '-p', '8080:80']), { env, encoding: 'utf8' });
  if (probe.status !== 0) {
    report.add({ name: 'podman run (unavailable here)', value: 0, unit: '', note: probe.stderr.trim().split('\n').pop() ?? 'failed' });
    return;
  }
  const t = interleave(runs, {
    podman: () => timeCommand('podman', podmanArgs(['--network', 'bridge', '-p', '8080:80']), { env }),
    podmanNone: () => timeCommand('podman', podmanArgs(['--network', 'none']), { env }),
    tsrun: () => timeCommand(TSRUN, ['run', '-p', '8080:80', bundle], { env }),
  });
  report.add({ name: 'podman run --network bridge -p 8080:80', value: median(t.podman!), unit: 'ms' });
  report.add({ name: 'podman run --network none', value: median(t.podmanNone!), unit: 'ms' });
  report.add({ name: 'tsrun run -p 8080:80', value: median(t.tsrun!), unit: 'ms' });
  report.add({ name: 'tsrun / podman (bridge, one port)', value: median(t.tsrun!) / median(t.podman!), unit: '×', target: '≤ 0.2' });
  spawnSync('podman', ['--root', `${storage}/root`, '--runroot', `${storage}/runroot`, 'system', 'reset', '-f'], { env, stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', 'podman0']);
  removeCgroupTree(PODMAN_CGROUP_PARENT);
}

/** podman leaves its conmon cgroup under the parent: remove the children, then the parent. */
export function removeCgroupTree(parent: string): void {
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', h, parent);
    if (!existsSync(dir)) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) if (sub.isDirectory()) removeCgroup(path.join(parent, sub.name));
  }
  removeCgroup(parent);
}

const PODMAN_CGROUP_PARENT = '/tsrun-bench-podman';
