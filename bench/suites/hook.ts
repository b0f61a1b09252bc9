// The OCI hook vs the CNI bridge plugin, for the same work: wire one container namespace into a
// bridge network with masquerading and one published port, then tear it down.
//   tsrun: `node tsrun.cjs hook createRuntime` + `… hook poststop` as tsrun registers them, two cold Node processes, the state
//          JSON on stdin, as a runtime runs them;
//   CNI:   bridge ADD (host-local IPAM, ipMasq) + portmap ADD, then portmap DEL + bridge DEL, as
//          a CNI runtime runs a two-plugin list (containernetworking-plugins in /usr/lib/cni).
// Target: hook ≤ 0.5× CNI (issue 16; it was ≤ 1.0× before). Also measured, for information: the same without the published port
// (bridge alone on the CNI side). The hook's start-to-exit time is split, from its own log, into Node start-up (process
// start → tsrun's entry running), module loading (the hook's modules and the ones a stage
// imports lazily) and wiring (stdin, validation, netlink, nft, store).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Report, TSRUN, benchEnv, interleave, median, nodeLoadingBundle, timeCommand } from '../lib.js';
import { CNI_PATH, cniPlugin, pinNetns, type NetnsPin } from '../cni-plugin.js';
import { hookRunner } from '../../hook/register.js';

/** Floor B exits as the door does, at once (process.exit), not when the event loop runs dry: a
 * natural exit tears V8's heap down first, which the door no longer pays. */
const EXIT_AS_THE_DOOR_DOES = 'process.exit(0)';

/** Runs a reference CNI plugin; returns its stdout (the result) and how long it took. */
function cni(plugin: string, command: 'ADD' | 'DEL', conf: object, ns: NetnsPin, id: string): { ms: number; out: string } {
  return cniPlugin(plugin, command, conf, { netnsPath: ns.path, containerId: id });
}

/** Waits (up to 2 s) until killed process `pid` has left its namespace (a zombie, not reaped in
 * this synchronous loop, has no namespace links any more). */
function waitForPid(pid: number): void {
  for (let i = 0; i < 1000; i++) {
    try {
      readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      return;
    }
    spawnSync('sleep', ['0.002']);
  }
}

/** A process in the namespace at `nsPath` (not timed), and ending it: back once it is gone or a
 * zombie (an ended process, for tsrun's liveness checks). */
function processIn(nsPath: string): { pid: number; end(): void } {
  const child = spawn('nsenter', [`--net=${nsPath}`, 'sleep', 'infinity'], { stdio: 'ignore' });
  const pid = child.pid!;
  const state = (): string | undefined => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return undefined;
    }
  };
  for (let i = 0; i < 2000; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === readlinkSync(nsPath) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep') break;
    } catch {
      // not there yet
    }
    spawnSync('sleep', ['0.002']);
  }
  return {
    pid,
    end() {
      child.kill('SIGKILL');
      for (let i = 0; i < 1000; i++) {
        const s = state();
        if (s === undefined || s === 'Z' || s === 'X') return;
        spawnSync('sleep', ['0.002']);
      }
    },
  };
}

export function hookSuite(report: Report, runs: number): void {
  if (!existsSync(path.join(CNI_PATH, 'bridge')) || !existsSync(path.join(CNI_PATH, 'portmap'))) {
    report.section('hook vs CNI: skipped (the CNI plugins are not installed in /usr/lib/cni: apt install containernetworking-plugins)');
    return;
  }
  report.section(`hook: tsrun hook createRuntime + poststop vs CNI bridge (+portmap) ADD + DEL, one container (median of ${runs})`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-hook-'));
  // tsrun's run directory where a host keeps it: /run/tsrun is on tmpfs on a host (the host lock,
  // the namespace users' entries, the resolver's pidfile), and on the bench VM os.tmpdir() and /run
  // are the ext4 disk, where a cycle's ~9 creates, renames, unlinks and rmdirs there cost 0.4-1.2 ms
  // each (strace -T, loaded). So run/ is on /dev/shm; the store (lib/) and the log stay on the disk,
  // as /var/lib/tsrun and /var/log/tsrun are, and so does the CNI plugins' host-local IPAM. The
  // cycle with run/ on the disk stays as a row for information (docs/benchmarks.md).
  const shmRun = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/tsrun-bench-hook-run-') : undefined;
  if (shmRun !== undefined) symlinkSync(shmRun, path.join(root, 'run'));
  const env = benchEnv({ TSRUN_ROOT: root });
  const diskRoot = shmRun !== undefined ? mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-hook-disk-')) : undefined;
  const disk = diskRoot !== undefined ? { root: diskRoot, env: benchEnv({ TSRUN_ROOT: diskRoot }), network: 'hookdisk' } : undefined;
  const logFile = path.join(root, 'log', 'tsrun.log');
  const ipamDir = path.join(root, 'cni-ipam');
  const bridgeConf = {
    cniVersion: '1.0.0',
    name: 'cnibench',
    type: 'bridge',
    bridge: 'cni-bench0',
    isGateway: true,
    ipMasq: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.78.0.0/16' }]], dataDir: ipamDir },
  };
  const portmapConf = (prevResult: unknown) => ({
    cniVersion: '1.0.0',
    name: 'cnibench',
    type: 'portmap',
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
    prevResult,
  });

  let n = 0;
  // The hook as tsrun registers it with runtimes (`tsrun hook install`, `spec add-hooks`,
  // tsrun-runc: hook/register.ts hookRunner): node with the bundle's tsrun.cjs. Hooks were
  // registered through the sh launcher (`/bin/sh dist/bundle/tsrun hook <stage>`) before; that is
  // kept as a row for information (`launcher`): dist/bundle/tsrun is a node script now, whose
  // second line is, to a shell, an exec of node on it, so /bin/sh runs it as such registrations do.
  const registered = hookRunner(realpathSync(process.execPath), TSRUN);
  type Where = { root: string; env: NodeJS.ProcessEnv; network: string };
  const here: Where = { root, env, network: 'hookbench' };
  const hook = (stage: 'createRuntime' | 'poststop', id: string, pid: number | undefined, ports: boolean, launcher = false, where: Where = here): number => {
    const annotations: Record<string, string> = { 'io.tsrun.network': where.network, ...(ports ? { 'io.tsrun.ports': '8080:80/tcp' } : {}) };
    const state = { ociVersion: '1.0.2', id, status: stage === 'poststop' ? 'stopped' : 'creating', ...(pid ? { pid } : {}), bundle: where.root, annotations };
    const [cmd, args] = launcher ? ['/bin/sh', [TSRUN, 'hook', stage]] : [registered.node, [registered.entry, 'hook', stage]];
    return timeCommand(cmd, args, { env: where.env, input: JSON.stringify(state), stdio: ['pipe', 'ignore', 'pipe'] });
  };
  const withPorts = new Set<string>();
  const tsrunCycle = (ports: boolean, launcher = false, where: Where = here) => (): number => {
    const ns = pinNetns();
    const id = `hb-${++n}`;
    if (ports && !launcher && where === here) withPorts.add(id);
    // The container's process is not the pin: it ends before poststop (as a runtime runs it),
    // while the pin keeps the namespace (a runtime that pins it). poststop leaves alone a record
    // whose process still runs (another container with the id), so the pin cannot stand in for it.
    const ctr = processIn(ns.path);
    try {
      const ms = hook('createRuntime', id, ctr.pid, ports, launcher, where);
      ctr.end();
      return ms + hook('poststop', id, undefined, ports, launcher, where);
    } finally {
      ctr.end();
      ns.kill();
    }
  };
  // Plain runc's order: the container's processes, and with them its namespace, are gone before
  // runc runs poststop (the kernel deletes the veth pair with the namespace). For information,
  // beside the row above, whose namespace is still alive at poststop (a runtime that pins it).
  const runcOrderCycle = (): number => {
    const ns = pinNetns();
    const id = `hr-${++n}`;
    let ms = 0;
    try {
      ms += hook('createRuntime', id, ns.pid, true);
    } finally {
      ns.kill();
    }
    waitForPid(ns.pid);
    return ms + hook('poststop', id, undefined, true);
  };
  const cniCycle = (ports: boolean) => (): number => {
    const ns = pinNetns();
    const id = `cb-${++n}`;
    try {
      const add = cni('bridge', 'ADD', bridgeConf, ns, id);
      let ms = add.ms;
      const pm = portmapConf(JSON.parse(add.out));
      if (ports) ms += cni('portmap', 'ADD', pm, ns, id).ms;
      if (ports) ms += cni('portmap', 'DEL', pm, ns, id).ms;
      ms += cni('bridge', 'DEL', bridgeConf, ns, id).ms;
      return ms;
    } finally {
      ns.kill();
    }
  };

  try {
    const created = spawnSync(TSRUN, ['network', 'create', 'hookbench', '--subnet', '10.77.0.0/16'], { env, encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`tsrun network create failed: ${created.stderr}`);
    if (disk !== undefined) {
      const made = spawnSync(TSRUN, ['network', 'create', disk.network, '--subnet', '10.76.0.0/16'], { env: disk.env, encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`tsrun network create failed: ${made.stderr}`);
    }
    // Warm-up, not measured: the first use creates the bridges, the nft table, the iptables chains.
    tsrunCycle(true)();
    if (disk !== undefined) tsrunCycle(true, false, disk)();
    cniCycle(true)();
    const logStart = readFileSync(logFile, 'utf8').length;

    const t = interleave(runs, {
      hook: tsrunCycle(true),
      cni: cniCycle(true),
      hookNoPorts: tsrunCycle(false),
      hookLauncher: tsrunCycle(true, true),
      ...(disk !== undefined ? { hookDisk: tsrunCycle(true, false, disk) } : {}),
      hookRuncOrder: runcOrderCycle,
      cniNoPorts: cniCycle(false),
      node: () => timeCommand(process.execPath, ['-e', '0'], { env }),
      nodeHook: () => timeCommand(...nodeLoadingBundle('hook', EXIT_AS_THE_DOOR_DOES), { env }),
    });
    const hookMs = median(t.hook!);
    const cniMs = median(t.cni!);
    report.add({ name: 'tsrun hook createRuntime + poststop (2 processes, 1 port)', value: hookMs, unit: 'ms' });
    report.add({ name: 'CNI bridge + portmap ADD, portmap + bridge DEL', value: cniMs, unit: 'ms' });
    report.add({ name: 'hook / CNI, one published port', value: hookMs / cniMs, unit: '×', target: '≤ 0.5' });
    report.add({ name: 'the same through the sh launcher (dist/bundle/tsrun), as hooks were registered before', value: median(t.hookLauncher!), unit: 'ms', note: 'for information; a runtime runs the hook as registered: node tsrun.cjs' });
    if (t.hookDisk !== undefined) report.add({ name: 'the same with tsrun\'s run directory on the disk (the VM\'s ext4, where /run is here)', value: median(t.hookDisk), unit: 'ms', note: 'for information; the rows keep run/ on tmpfs, as /run is on a host' });
    report.add({ name: 'the same, namespace gone before poststop (plain runc\'s order)', value: median(t.hookRuncOrder!), unit: 'ms', note: 'for information; the row above keeps the namespace alive at poststop' });
    const hookNp = median(t.hookNoPorts!);
    const cniNp = median(t.cniNoPorts!);
    report.add({ name: 'tsrun hook createRuntime + poststop, no port', value: hookNp, unit: 'ms' });
    report.add({ name: 'CNI bridge ADD + DEL, no port', value: cniNp, unit: 'ms' });
    // No target: without portmap's iptables work, CNI's side is one Go binary (plus host-local),
    // and the hook's floor is two cold Node processes.
    report.add({ name: 'hook / CNI, no port', value: hookNp / cniNp, unit: '×', note: 'for information; the target is for the published-port case' });

    // The split, from the hook's own "hook done" lines of the measured runs.
    const done = readFileSync(logFile, 'utf8').slice(logStart).split('\n').filter((l) => l.includes('"msg":"hook done"')).map((l) => JSON.parse(l) as Record<string, number | string>);
    const node = median(t.node!);
    report.add({ name: 'node -e 0 (a cold Node process, for reference)', value: node, unit: 'ms' });
    // The floor of two Node front doors doing this work: two cold Node processes that load hook.cjs
    // and exit, plus the work the hook did in-process (its own workMs: stdin, validation, the
    // engine's netlink, nft and store). What is left above it is tsrun's start-up cost: the
    // launcher, the lazy imports of the stage, and exiting.
    const nodeHook = median(t.nodeHook!);
    report.add({ name: 'node loading hook.cjs and exiting (a cold front door doing nothing)', value: nodeHook, unit: 'ms' });
    const work = (stage: string) => median(done.filter((d) => d.stage === stage && withPorts.has(String(d.containerId))).map((d) => Number(d.workMs)));
    const inProcess = work('createRuntime') + work('poststop');
    if (Number.isFinite(inProcess)) {
      report.add({ name: 'hook in-process work, createRuntime + poststop (1 port)', value: inProcess, unit: 'ms' });
      report.add({ name: 'floor A: 2 × node -e 0 + that work; hook / floor A', value: hookMs / (2 * node + inProcess), unit: '×', target: '≤ 1.1' });
      report.add({ name: 'floor B: 2 × node loading hook.cjs + that work; hook / floor B', value: hookMs / (2 * nodeHook + inProcess), unit: '×', target: '≤ 1.1' });
      report.add({ name: 'floor B / CNI bridge + portmap (the best two Node processes can do)', value: (2 * nodeHook + inProcess) / cniMs, unit: '×' });
    }
    for (const stage of ['createRuntime', 'poststop']) {
      const lines = done.filter((d) => d.stage === stage);
      if (lines.length === 0) continue;
      const m = (k: string) => median(lines.map((d) => Number(d[k])));
      report.add({ name: `hook ${stage}: start-to-exit (in-process)`, value: m('totalMs'), unit: 'ms' });
      report.add({ name: `  Node start-up (process start → the hook's door running)`, value: m('startupMs'), unit: 'ms' });
      report.add({ name: `  module loading (hook.cjs + lazy imports)`, value: m('loadMs'), unit: 'ms' });
      report.add({ name: `  wiring (stdin, validation, netlink, nft, store)`, value: m('workMs'), unit: 'ms' });
    }
  } finally {
    if (disk !== undefined) spawnSync(TSRUN, ['network', 'rm', disk.network], { env: disk.env });
    rmSync(root, { recursive: true, force: true });
    if (shmRun !== undefined) rmSync(shmRun, { recursive: true, force: true });
    if (diskRoot !== undefined) rmSync(diskRoot, { recursive: true, force: true });
  }
}
