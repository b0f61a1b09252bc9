// Detached containers: tsrun's conmon-based `run -d` against podman's, same bundle, same run.
//  - `tsrun run -d` until the container runs, vs `podman run -d`            target ≤ 0.5×
//  - removing a running one: `tsrun rm -f` (stop with SIGKILL, clean up, remove) vs `podman rm -f`
//  - resident memory per idle detached container: what stays of tsrun (conmon, no Node process)
//    vs podman's conmon, and containerd's containerd-shim-runc-v2 if installed   target ≤ podman
// podman and containerd get private roots, state and sockets under the suite's temp dir; the
// benchmark runs in a network namespace of its own (bench/run.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostHierarchies } from '../../runtime/cgroups/hierarchies.js';
import { ownCgroupProcsFile } from '../../runtime/cgroups/migration-warmup.js';
import { BUSYBOX_BUNDLE, Report, TSRUN, benchBundle, benchEnv, median, timeCommand } from '../lib.js';
import { removeCgroupTree } from './bridge.js';

const PODMAN_CGROUP_PARENT = '/tsrun-bench-detached-podman';
const IDLE = 5;

export async function detachedSuite(report: Report, runs: number): Promise<void> {
  if (spawnSync('conmon', ['--version']).status !== 0) {
    report.section('detached containers');
    report.add({ name: 'conmon not installed: suite skipped', value: 0, unit: '' });
    return;
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-detached-'));
  const env = benchEnv({ TSRUN_ROOT: root });
  const bundle = benchBundle(['sleep', '1000']);
  const podman = podmanCli(root, env);
  // For information: tsrun's state and the floor's files on tmpfs, where a host keeps them
  // (/run/tsrun, /run for conmon's and runc's files); os.tmpdir() is the disk on the bench VM.
  const shmRoot = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/tsrun-bench-detached-') : undefined;
  const shm = shmRoot !== undefined ? { root: shmRoot, env: benchEnv({ TSRUN_ROOT: shmRoot }) } : undefined;
  try {
    startStop(report, runs, env, bundle.dir, podman, root, shm);
    await memory(report, env, bundle.dir, podman, root);
  } finally {
    for (const id of tsrunIds(env)) spawnSync(TSRUN, ['rm', '-f', id], { env, stdio: 'ignore' });
    removeFloorContainers(root);
    if (shm !== undefined) {
      for (const id of tsrunIds(shm.env)) spawnSync(TSRUN, ['rm', '-f', id], { env: shm.env, stdio: 'ignore' });
      removeFloorContainers(shm.root);
      rmSync(shm.root, { recursive: true, force: true });
    }
    podman.reset();
    bundle.cleanup();
    spawnSync('ip', ['link', 'del', 'tsrun0']);
    rmSync(root, { recursive: true, force: true });
  }
}

interface PodmanCli {
  available: string | undefined; // undefined when it works, else why not
  args(...a: string[]): string[];
  runArgs(id: string, net: readonly string[]): string[];
  reset(): void;
}

function podmanCli(root: string, env: NodeJS.ProcessEnv): PodmanCli {
  const storage = path.join(root, 'podman');
  const base = ['--root', `${storage}/root`, '--runroot', `${storage}/runroot`, '--tmpdir', `${storage}/tmp`, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  const rootfs = path.join(BUSYBOX_BUNDLE, 'rootfs');
  const cli: PodmanCli = {
    available: undefined,
    args: (...a) => [...base, ...a],
    runArgs: (id, net) => [...base, 'run', '-d', '--name', id, '--cgroup-parent', PODMAN_CGROUP_PARENT, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', ...net, '--rootfs', rootfs, 'sleep', '1000'],
    reset: () => {
      spawnSync('podman', [...base, 'rm', '-a', '-f', '-t', '0'], { env, stdio: 'ignore' });
      spawnSync('podman', [...base, 'system', 'reset', '-f'], { env, stdio: 'ignore' });
      spawnSync('ip', ['link', 'del', 'podman0']);
      removeCgroupTree(PODMAN_CGROUP_PARENT);
    },
  };
  if (spawnSync('podman', ['--version']).status !== 0) cli.available = 'podman not installed';
  else {
    const probe = spawnSync('podman', cli.runArgs('probe', ['--network', 'none']), { env, encoding: 'utf8' });
    if (probe.status !== 0) cli.available = probe.stderr.trim().split('\n').pop() ?? 'podman run -d failed';
    spawnSync('podman', cli.args('rm', '-f', '-t', '0', 'probe'), { env, stdio: 'ignore' });
  }
  return cli;
}

// The floor of a detached start and of its removal, measured in the same run: what any design
// made of these parts pays (one cold Node process, conmon running `runc create`, `runc start`;
// then SIGKILL, a wait for the end and `runc delete`), with nothing of tsrun's: no id claim, no
// spec rewrite, no records. The rule: where the target (0.5× podman) lies below the
// floor, tsrun is to come within 10 % of the floor.
// The cgroup warm-up tsrun's run -d starts (runtime/cgroups/migration-warmup.ts: a move of the
// process into its own cgroup, on libuv's pool, when it begins and every 4 ms until runc create
// has answered), so that runc create's move of its init finds the fast path: the floors start it
// too (the cgroup.procs file is the 6th argument; empty: none), as the start-up suite's floor C
// does. Without it a floor pays an RCU grace period that tsrun has shown any design can avoid.
const FLOOR_WARMUP = `const warmFile = process.argv[6];
const warm = () => { if (!warmFile) return; try { const fd = require('node:fs').openSync(warmFile, 'w'); require('node:fs').write(fd, '0', () => require('node:fs').closeSync(fd)); } catch {} };
warm();
const warming = setInterval(warm, 4);`;
// conmon started as tsrun starts it (its sync pipe on fd 3, runc create under it), waited for until
// runc create answered; then \`afterCreate\` (the start), in the same process. Both floors A and B.
const floorRun = (requires: string, afterCreate: string) => `${FLOOR_WARMUP}
${requires}
const [conmon, runc, root, dir, id] = process.argv.slice(1);
const args = ['--api-version', '1', '-c', id, '-u', id, '-n', id, '-r', runc, '-b', dir, '-p', dir + '/pid',
  '-l', 'k8s-file:' + dir + '/ctr.log', '--exit-dir', dir + '/exits', '--persist-dir', dir + '/persist',
  '--socket-dir-path', dir, '--conmon-pidfile', dir + '/conmon.pid', '--runtime-arg', '--root=' + root];
const c = spawn(conmon, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'], env: { ...process.env, _OCI_SYNCPIPE: '3' }, detached: true });
c.stdio[3].once('close', () => clearInterval(warming));
c.stdio[3].once('data', (d) => {
  clearInterval(warming);
  c.stdio[3].destroy();
  c.unref();
  if (!(JSON.parse(String(d).split('\\n')[0]).data > 0)) process.exit(1); // runc create failed
${afterCreate}
});`;
const FLOOR_RUN = floorRun(
  "const { spawn, spawnSync } = require('node:child_process');",
  "  process.exitCode = spawnSync(runc, ['--root', root, 'start', id], { stdio: 'ignore' }).status;",
);
const FLOOR_RM = `
const { readFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const [runc, root, dir, id] = process.argv.slice(1);
const pid = (f) => Number(readFileSync(dir + '/' + f, 'utf8'));
const gone = (p) => { try { return /^\\d+ \\(.*\\) [ZX]/.test(readFileSync('/proc/' + p + '/stat', 'utf8')); } catch { return true; } };
process.kill(pid('conmon.pid'), 'SIGKILL');
const init = pid('pid');
process.kill(init, 'SIGKILL');
(function wait() {
  if (!gone(init)) return setTimeout(wait, 1);
  process.exitCode = spawnSync(runc, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' }).status;
})();`;

// Floor B: the same parts without the two runc processes tsrun no longer runs for a plain
// container (docs/detached.md): the start is the read of runc's exec fifo, the delete of the ended
// container the rmdir of the cgroup directories runc recorded and of its state directory. What
// tsrun's own design cannot do without; floor A above keeps runc start and runc delete (~10 ms
// each) in, which flatters tsrun.
const FLOOR_RUN_B = floorRun(
  "const { spawn } = require('node:child_process');\nconst fs = require('node:fs');",
  `  const fifo = root + '/' + id + '/exec.fifo';
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const buf = Buffer.alloc(1);
  (function read() {
    let n = 0;
    try { n = fs.readSync(fd, buf, 0, 1, null); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
    if (n === 0) return setTimeout(read, 1);
    fs.closeSync(fd);
    fs.unlinkSync(fifo);
  })();`,
);
const FLOOR_RM_B = `
const fs = require('node:fs');
const [root, dir, id] = process.argv.slice(1);
const pid = (f) => Number(fs.readFileSync(dir + '/' + f, 'utf8'));
const gone = (p) => { try { return /^\\d+ \\(.*\\) [ZX]/.test(fs.readFileSync('/proc/' + p + '/stat', 'utf8')); } catch { return true; } };
process.kill(pid('conmon.pid'), 'SIGKILL');
const init = pid('pid');
process.kill(init, 'SIGKILL');
(function wait() {
  if (!gone(init)) return setTimeout(wait, 1);
  const state = root + '/' + id;
  for (const d of new Set(Object.values(JSON.parse(fs.readFileSync(state + '/state.json', 'utf8')).cgroup_paths ?? {}))) {
    try { fs.rmdirSync(d); } catch (e) { if (e.code !== 'ENOENT') throw e; }
  }
  for (const f of fs.readdirSync(state)) fs.unlinkSync(state + '/' + f);
  fs.rmdirSync(state);
})();`;

interface Floor {
  run(i: number): number;
  /** The floor without the cgroup warm-up (the floor before tsrun started one), for information. */
  runCold(i: number): number;
  rm(i: number): number;
  runB(i: number): number;
  rmB(i: number): number;
}

function floorOf(env: NodeJS.ProcessEnv, bundle: string, root: string): Floor {
  const base = path.join(root, 'floor');
  const runcRoot = path.join(base, 'runc');
  const spec = readFileSync(path.join(bundle, 'config.json'), 'utf8');
  const dirOf = (i: number) => path.join(base, `f${i}`);
  // conmon runs its runtime by path, not through PATH
  const runc = spawnSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).stdout.trim() || '/usr/sbin/runc';
  // The floor process's cgroup is this one's (a child starts where its parent is).
  const procs = ownCgroupProcsFile(hostHierarchies(), readFileSync('/proc/self/cgroup', 'utf8')) ?? '';
  const runA = (i: number, warm: string) => {
    const dir = dirOf(i);
    for (const d of ['exits', 'persist']) mkdirSync(path.join(dir, d), { recursive: true });
    writeFileSync(path.join(dir, 'config.json'), spec); // conmon makes its fifos beside it
    return timeCommand(process.execPath, ['-e', FLOOR_RUN, 'conmon', runc, runcRoot, dir, `floor-${i}`, warm], { env });
  };
  return {
    run: (i) => runA(i, procs),
    runCold: (i) => runA(i, ''),
    rm: (i) => timeCommand(process.execPath, ['-e', FLOOR_RM, runc, runcRoot, dirOf(i), `floor-${i}`], { env }),
    runB: (i) => {
      const dir = dirOf(i);
      for (const d of ['exits', 'persist']) mkdirSync(path.join(dir, d), { recursive: true });
      writeFileSync(path.join(dir, 'config.json'), spec);
      return timeCommand(process.execPath, ['-e', FLOOR_RUN_B, 'conmon', runc, runcRoot, dir, `floor-${i}`, procs], { env });
    },
    rmB: (i) => timeCommand(process.execPath, ['-e', FLOOR_RM_B, runcRoot, dirOf(i), `floor-${i}`], { env }),
  };
}

function startStop(report: Report, runs: number, env: NodeJS.ProcessEnv, bundle: string, podman: PodmanCli, root: string, shm: { root: string; env: NodeJS.ProcessEnv } | undefined): void {
  const n = Math.min(runs, 10);
  const floor = floorOf(env, bundle, root);
  const shmFloor = shm !== undefined ? floorOf(env, bundle, shm.root) : undefined;
  let fs = 0;
  let f = 0;
  for (const [label, tsrunNet, podmanNet] of [
    ['--net none', ['--net', 'none'], ['--network', 'none']],
    ['bridge, -p 8080:80', ['-p', '8080:80'], ['--network', 'bridge', '-p', '8080:80']],
  ] as const) {
    report.section(`run -d until running, then rm -f: tsrun vs podman, ${label}, sleep 1000 (median of ${n})`);
    // warm-up: the first bridge attach creates the network and the nft table
    timeCommand(TSRUN, ['run', '-d', '--name', 'warm', ...tsrunNet, bundle], { env });
    timeCommand(TSRUN, ['rm', '-f', 'warm'], { env });
    const t = { tsrunRun: [] as number[], tsrunRm: [] as number[], podmanRun: [] as number[], podmanRm: [] as number[], floorRun: [] as number[], floorRm: [] as number[], floorBRun: [] as number[], floorBRm: [] as number[], floorColdRun: [] as number[], shmRun: [] as number[], shmRm: [] as number[], shmFloorRun: [] as number[], shmFloorRm: [] as number[] };
    floor.rm((floor.run(++f), f)); // warm-up
    if (shm !== undefined && shmFloor !== undefined && label === '--net none') {
      timeCommand(TSRUN, ['run', '-d', '--name', 'warm', ...tsrunNet, bundle], { env: shm.env });
      timeCommand(TSRUN, ['rm', '-f', 'warm'], { env: shm.env });
      shmFloor.rm((shmFloor.run(++fs), fs));
    }
    floor.rmB((floor.runB(++f), f));
    for (let i = 0; i < n; i++) {
      t.tsrunRun.push(timeCommand(TSRUN, ['run', '-d', '--name', `b${i}`, ...tsrunNet, bundle], { env }));
      t.tsrunRm.push(timeCommand(TSRUN, ['rm', '-f', `b${i}`], { env }));
      t.floorRun.push(floor.run(++f));
      t.floorRm.push(floor.rm(f));
      t.floorBRun.push(floor.runB(++f));
      t.floorBRm.push(floor.rmB(f));
      t.floorColdRun.push(floor.runCold(++f));
      floor.rm(f);
      if (shm !== undefined && shmFloor !== undefined && label === '--net none') {
        t.shmRun.push(timeCommand(TSRUN, ['run', '-d', '--name', `s${i}`, ...tsrunNet, bundle], { env: shm.env }));
        t.shmRm.push(timeCommand(TSRUN, ['rm', '-f', `s${i}`], { env: shm.env }));
        t.shmFloorRun.push(shmFloor.run(++fs));
        t.shmFloorRm.push(shmFloor.rm(fs));
      }
      if (podman.available !== undefined) continue;
      t.podmanRun.push(timeCommand('podman', podman.runArgs(`p${i}`, podmanNet), { env }));
      // -t 0: SIGKILL at once, as tsrun rm -f does (podman's default waits 10 s for SIGTERM first)
      t.podmanRm.push(timeCommand('podman', podman.args('rm', '-f', '-t', '0', `p${i}`), { env }));
    }
    report.add({ name: `tsrun run -d (${label})`, value: median(t.tsrunRun), unit: 'ms' });
    report.add({ name: `tsrun rm -f of a running container (${label})`, value: median(t.tsrunRm), unit: 'ms' });
    const floorRun = median(t.floorRun);
    const floorRm = median(t.floorRm);
    report.add({ name: 'floor: node + conmon (runc create) + runc start', value: floorRun, unit: 'ms', note: 'with the cgroup warm-up tsrun starts' });
    report.add({ name: 'floor: node + SIGKILL, wait + runc delete', value: floorRm, unit: 'ms' });
    // With a network the floor has no wiring in it: the row says how far above it tsrun is.
    const wired = label !== '--net none';
    report.add({ name: `tsrun run -d / floor (${label})`, value: median(t.tsrunRun) / floorRun, unit: '×', ...(wired ? { note: 'the floor has no network: the rest is the wiring' } : { target: '≤ 1.1' }) });
    report.add({ name: `tsrun rm -f / floor (${label})`, value: median(t.tsrunRm) / floorRm, unit: '×', ...(wired ? { note: 'the floor has no network: the rest is the teardown' } : { target: '≤ 1.1' }) });
    // The floor as it was before tsrun started the warm-up (for information): it pays the grace
    // period tsrun avoids, so it flatters tsrun (docs/benchmarks.md).
    const floorColdRun = median(t.floorColdRun);
    report.add({ name: 'old floor: the same without the cgroup warm-up', value: floorColdRun, unit: 'ms', note: 'for information' });
    report.add({ name: `tsrun run -d / old floor (${label})`, value: median(t.tsrunRun) / floorColdRun, unit: '×', note: 'for information: the floor pays a grace period tsrun avoids' });
    // Floor B (for information): floor A without the runc start and runc delete tsrun does without.
    const floorBRun = median(t.floorBRun);
    const floorBRm = median(t.floorBRm);
    report.add({ name: 'floor B: node + conmon (runc create) + exec fifo read', value: floorBRun, unit: 'ms' });
    report.add({ name: 'floor B: node + SIGKILL, wait + cgroup and state rmdirs', value: floorBRm, unit: 'ms' });
    report.add({ name: `tsrun run -d / floor B (${label})`, value: median(t.tsrunRun) / floorBRun, unit: '×', note: 'floor B: no runc start (tsrun reads the exec fifo itself)' });
    report.add({ name: `tsrun rm -f / floor B (${label})`, value: median(t.tsrunRm) / floorBRm, unit: '×', note: 'floor B: no runc delete (tsrun deletes an ended container itself)' });
    if (t.shmRun.length > 0) {
      report.add({ name: `tsrun run -d, state on tmpfs (${label})`, value: median(t.shmRun), unit: 'ms' });
      report.add({ name: `tsrun rm -f, state on tmpfs (${label})`, value: median(t.shmRm), unit: 'ms' });
      report.add({ name: 'floor on tmpfs: run; rm', value: median(t.shmFloorRun), unit: 'ms', note: `rm ${median(t.shmFloorRm).toFixed(1)} ms` });
      report.add({ name: `tsrun run -d / floor, both on tmpfs (${label})`, value: median(t.shmRun) / median(t.shmFloorRun), unit: '×', note: 'for information: where a host keeps them (/run)' });
      report.add({ name: `tsrun rm -f / floor, both on tmpfs (${label})`, value: median(t.shmRm) / median(t.shmFloorRm), unit: '×', note: 'for information: where a host keeps them (/run)' });
    }
    if (podman.available !== undefined) {
      report.add({ name: 'podman (unavailable here)', value: 0, unit: '', note: podman.available });
      continue;
    }
    report.add({ name: `podman run -d (${label})`, value: median(t.podmanRun), unit: 'ms' });
    report.add({ name: `podman rm -f -t 0 (${label})`, value: median(t.podmanRm), unit: 'ms' });
    report.add({ name: `tsrun run -d / podman run -d (${label})`, value: median(t.tsrunRun) / median(t.podmanRun), unit: '×', target: '≤ 0.5' });
    report.add({ name: `tsrun rm -f / podman rm -f -t 0 (${label})`, value: median(t.tsrunRm) / median(t.podmanRm), unit: '×', target: '≤ 0.5' });
    report.add({ name: `floor / podman: run -d; rm -f (${label})`, value: floorRun / median(t.podmanRun), unit: '×', note: `rm -f ${(floorRm / median(t.podmanRm)).toFixed(2)}×; above 0.5 the target lies below the floor` });
  }
}

async function memory(report: Report, env: NodeJS.ProcessEnv, bundle: string, podman: PodmanCli, root: string): Promise<void> {
  report.section(`resident memory per idle detached container (${IDLE} containers each, RSS and PSS of what stays besides the container)`);
  const ids = Array.from({ length: IDLE }, (_, i) => `m${i}`);
  for (const id of ids) timeCommand(TSRUN, ['run', '-d', '--name', id, '--net', 'none', bundle], { env });
  const tsrunPids = ids.map((id) => (JSON.parse(readFileSync(path.join(root, 'run', 'containers', id, 'lifecycle.json'), 'utf8')) as { conmonPid: number }).conmonPid);
  // Nothing of tsrun's own stays: no Node process holds the root.
  // (conmon's own command line names tsrun's entry too, in its exit command: count node only)
  const nodes = spawnSync('pgrep', ['-x', 'node', '-a'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(TSRUN) && !l.startsWith(`${process.pid} `));
  const ours = memOf(tsrunPids);
  report.add({ name: 'tsrun: conmon RSS per container', value: ours.rss / IDLE, unit: 'MB' });
  report.add({ name: 'tsrun: conmon PSS per container', value: ours.pss / IDLE, unit: 'MB' });
  report.add({ name: 'tsrun processes left running', value: nodes.length, unit: '' });
  for (const id of ids) spawnSync(TSRUN, ['rm', '-f', id], { env, stdio: 'ignore' });

  if (podman.available === undefined) {
    const pids: number[] = [];
    for (const id of ids) {
      timeCommand('podman', podman.runArgs(`pm-${id}`, ['--network', 'none']), { env });
      pids.push(Number(spawnSync('podman', podman.args('inspect', '--format', '{{.State.ConmonPid}}', `pm-${id}`), { env, encoding: 'utf8' }).stdout.trim()));
    }
    const theirs = memOf(pids);
    report.add({ name: "podman: conmon RSS per container", value: theirs.rss / IDLE, unit: 'MB' });
    report.add({ name: "podman: conmon PSS per container", value: theirs.pss / IDLE, unit: 'MB' });
    // Both are the same conmon binary: equal but for a few pages (its log buffer, environment).
    report.add({ name: 'tsrun / podman (RSS per idle container)', value: ours.rss / theirs.rss, unit: '×', target: '≤ 1.05', note: 'the same conmon binary: equal within a few pages' });
    for (const id of ids) spawnSync('podman', podman.args('rm', '-f', '-t', '0', `pm-${id}`), { env, stdio: 'ignore' });
  }

  const shim = await containerdShims(ids, root, env);
  if (typeof shim === 'string') report.add({ name: 'containerd-shim-runc-v2 (unavailable here)', value: 0, unit: '', note: shim });
  else {
    report.add({ name: 'containerd: containerd-shim-runc-v2 RSS per container', value: shim.rss / IDLE, unit: 'MB' });
    report.add({ name: 'containerd: containerd-shim-runc-v2 PSS per container', value: shim.pss / IDLE, unit: 'MB' });
    report.add({ name: 'tsrun / containerd-shim-runc-v2 (RSS)', value: ours.rss / shim.rss, unit: '×' });
  }
}

/** Sum of RSS and PSS (MB) of the processes. */
function memOf(pids: number[]): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    rss += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) / 1024;
    pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) / 1024;
  }
  return { rss, pss };
}

function tsrunIds(env: NodeJS.ProcessEnv): string[] {
  const r = spawnSync(TSRUN, ['ps', '-a', '-q'], { env, encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

/** A private containerd (its own root, state, socket; no CRI), IDLE tasks through ctr, the shims'
 * memory; everything stopped and removed afterwards. A string says why it could not run. */
async function containerdShims(ids: string[], root: string, env: NodeJS.ProcessEnv): Promise<{ rss: number; pss: number } | string> {
  if (spawnSync('containerd', ['--version']).status !== 0 || spawnSync('ctr', ['--version']).status !== 0) return 'containerd not installed';
  const dir = path.join(root, 'containerd');
  mkdirSync(dir, { recursive: true });
  const sock = path.join(dir, 'c.sock');
  const config = path.join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${sock}"`,
    '[ttrpc]',
    `  address = "${sock}.ttrpc"`,
    '[debug]',
    `  address = "${sock}.debug"`,
    '[metrics]',
    '  address = ""',
  ].join('\n'));
  // A mount namespace of its own with a fresh /run: the shims write to fixed machine paths
  // (/run/containerd/s, runc's default root under /run/containerd/runc) that must not outlive the bench.
  const daemon: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tsrun-bench-run /run && exec "$@"', 'sh', 'containerd', '--config', config], { env, stdio: 'ignore' });
  const ctr = (...a: string[]) => spawnSync('ctr', ['--address', sock, '--namespace', 'tsrunbench', ...a], { env, encoding: 'utf8', timeout: 30_000 });
  const rootfs = path.join(BUSYBOX_BUNDLE, 'rootfs');
  try {
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(sock)) return 'containerd did not start';
    const pids: number[] = [];
    for (const id of ids) {
      // --rootfs is a flag: the rootfs directory takes the image's place among the arguments
      const r = ctr('run', '-d', '--fifo-dir', path.join(dir, 'fifo'), '--runc-root', path.join(dir, 'runc'), '--runtime', 'io.containerd.runc.v2', '--cgroup', `/tsrun-bench-ctr/${id}`, '--rootfs', rootfs, `c-${id}`, '/bin/sleep', '1000'); // no image config, so no PATH
      if (r.status !== 0) return `ctr run failed: ${r.stderr.trim().split('\n').pop()}`;
    }
    const shims = spawnSync('pgrep', ['-f', `containerd-shim-runc-v2 .*-address ${sock}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    pids.push(...shims);
    if (pids.length === 0) return 'no shim process found';
    return memOf(pids);
  } finally {
    for (const id of ids) {
      ctr('task', 'kill', '-s', 'SIGKILL', `c-${id}`);
      for (let i = 0; i < 50 && ctr('task', 'rm', `c-${id}`).status !== 0; i++) await new Promise((r) => setTimeout(r, 50));
      ctr('container', 'rm', `c-${id}`);
    }
    daemon.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp?.startsWith(dir)) spawnSync('umount', ['-l', mp]);
    }
    removeCgroupTree('/tsrun-bench-ctr');
  }
}

/** Whatever a failed floor run left: its runc containers (runc kills and deletes them; conmon
 * ends with its container). */
function removeFloorContainers(root: string): void {
  const runcRoot = path.join(root, 'floor', 'runc');
  if (!existsSync(runcRoot)) return;
  for (const id of readdirSync(runcRoot)) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
}
