// tsrun as a CNI plugin against the reference plugins, as runtimes call them: one process per
// verb, the config on stdin (containernetworking-plugins from /usr/lib/cni).
//  - tsrun ADD + DEL vs bridge (host-local IPAM, ipMasq) ADD + DEL                target ≤ 0.7×
//  - tsrun ADD + DEL with its own published port (portMappings capability) vs bridge + portmap
//    ADD, portmap + bridge DEL                                                     target ≤ 0.7×
//  - podman 4 (CNI backend) run --rm -p 8080:80 on a tsrun conflist vs on podman's own CNI
//    bridge conflist (bridge, portmap, firewall, tuning)                           for information
// Also reported: VERSION, the call libcni makes for every plugin whenever it loads a conflist.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PodmanCni, havePodman } from '../../test/harness/podman-cni.js';
import { readFileSync } from 'node:fs';
import { Report, TSRUN, benchEnv, interleave, median, nodeLoadingBundle, timeCommand } from '../lib.js';
import { CNI_PATH, cniPlugin, pinNetns, type NetnsPin } from '../cni-plugin.js';

/** Floor B exits as the door does, at once (process.exit), not when the event loop runs dry: a
 * natural exit tears V8's heap down first, which the door no longer pays. */
const EXIT_AS_THE_DOOR_DOES = 'process.exit(0)';

/** One plugin process (tsrun's bundle or a reference plugin); its time and its stdout. `exe`:
 * what runs for tsrun (default the launcher). */
function plugin(type: string, command: string, conf: object, ns: NetnsPin | undefined, id: string, env: NodeJS.ProcessEnv, exe?: string): { ms: number; out: string } {
  return cniPlugin(type, command, conf, { netnsPath: ns?.path, containerId: id, env, exe });
}

/** tsrun as runtimes run it: the executable `tsrun cni install` writes into the plugin directory
 * (with the bench's state root recorded in it), not dist/bundle/tsrun, which no runtime calls. */
function installedPlugin(env: NodeJS.ProcessEnv, root: string): string {
  const binDir = path.join(root, 'cni-bin');
  const r = spawnSync(TSRUN, ['cni', 'install', '--bin-dir', binDir, '--conf-dir', path.join(root, 'cni-conf')], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsrun cni install: ${r.stderr}`);
  return path.join(binDir, 'tsrun');
}

export async function cniSuite(report: Report, runs: number): Promise<void> {
  if (!existsSync(path.join(CNI_PATH, 'bridge')) || !existsSync(path.join(CNI_PATH, 'portmap'))) {
    report.section('cni: skipped (the reference plugins are not installed in /usr/lib/cni: apt install containernetworking-plugins)');
    return;
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-cni-'));
  const env = benchEnv({ TSRUN_ROOT: root });
  try {
    verbs(report, runs, env, root);
    if (havePodman) await podman(report, Math.min(runs, 10), env, root);
    else report.section('cni: podman run+rm skipped (podman is not installed)');
  } finally {
    spawnSync('ip', ['link', 'del', 'ts-cnibench']);
    spawnSync('ip', ['link', 'del', 'cni-bench1']);
    rmSync(root, { recursive: true, force: true });
  }
}

function verbs(report: Report, runs: number, env: NodeJS.ProcessEnv, root: string): void {
  report.section(`cni: tsrun as a CNI plugin vs the reference plugins, ADD + DEL as processes (median of ${runs})`);
  const PORT = { hostPort: 8080, containerPort: 80, protocol: 'tcp' };
  const tsrunConf = (ports: boolean) => ({
    cniVersion: '1.0.0',
    name: 'cnibench',
    type: 'tsrun',
    subnet: '10.75.0.0/16',
    // The same work as the reference bridge, which serves no names: no resolver to keep in step.
    enableDns: false,
    ...(ports ? { capabilities: { portMappings: true }, runtimeConfig: { portMappings: [PORT] } } : {}),
  });
  const bridgeConf = {
    cniVersion: '1.0.0',
    name: 'cnibenchref',
    type: 'bridge',
    bridge: 'cni-bench1',
    isGateway: true,
    ipMasq: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.76.0.0/16' }]], dataDir: path.join(root, 'cni-ipam') },
  };
  const portmapConf = (prevResult: unknown) => ({ cniVersion: '1.0.0', name: 'cnibenchref', type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [PORT] }, prevResult });

  // Runtimes run the wrapper `tsrun cni install` writes (node by its shebang since session 6); the
  // cycle through dist/bundle/tsrun (the measured row until then, a sh launcher before session 6)
  // stays beside it for information.
  const installed = installedPlugin(env, root);
  let n = 0;
  const withPorts = new Set<string>();
  const viaLauncher = new Set<string>();
  const tsrunCycle = (ports: boolean, exe: string = installed) => (): number => {
    const ns = pinNetns();
    const id = `tc-${++n}`;
    if (ports) withPorts.add(id);
    if (exe === TSRUN) viaLauncher.add(id);
    try {
      const add = plugin('tsrun', 'ADD', tsrunConf(ports), ns, id, env, exe);
      return add.ms + plugin('tsrun', 'DEL', { ...tsrunConf(ports), prevResult: JSON.parse(add.out) }, ns, id, env, exe).ms;
    } finally {
      ns.kill();
    }
  };
  const refCycle = (ports: boolean) => (): number => {
    const ns = pinNetns();
    const id = `rc-${++n}`;
    try {
      const add = plugin('bridge', 'ADD', bridgeConf, ns, id, env);
      const prev = JSON.parse(add.out);
      let ms = add.ms;
      if (ports) ms += plugin('portmap', 'ADD', portmapConf(prev), ns, id, env).ms;
      if (ports) ms += plugin('portmap', 'DEL', portmapConf(prev), ns, id, env).ms;
      return ms + plugin('bridge', 'DEL', { ...bridgeConf, prevResult: prev }, ns, id, env).ms;
    } finally {
      ns.kill();
    }
  };
  // Warm-up, not measured: the first ADD creates the network, the bridges, nft and iptables state.
  tsrunCycle(true)();
  refCycle(true)();
  const logFile = path.join(root, 'log', 'tsrun.log');
  const logStart = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;

  const t = interleave(runs, {
    tsrun: tsrunCycle(false),
    tsrunLauncher: tsrunCycle(false, TSRUN),
    ref: refCycle(false),
    tsrunPorts: tsrunCycle(true),
    refPorts: refCycle(true),
    tsrunVersion: () => timeCommand(installed, [], { env: benchEnv({ ...env, CNI_COMMAND: 'VERSION' }), input: '{"cniVersion":"1.0.0"}', stdio: ['pipe', 'ignore', 'pipe'] }),
    refVersion: () => timeCommand(path.join(CNI_PATH, 'bridge'), [], { env: benchEnv({ CNI_COMMAND: 'VERSION' }), input: '{"cniVersion":"1.0.0"}', stdio: ['pipe', 'ignore', 'pipe'] }),
    node: () => timeCommand(process.execPath, ['-e', '0'], { env }),
    nodeCni: () => timeCommand(...nodeLoadingBundle('cni', EXIT_AS_THE_DOOR_DOES), { env }),
    nodeCniVersion: () => timeCommand(...nodeLoadingBundle('cni-version', EXIT_AS_THE_DOOR_DOES), { env }),
  });
  const m = (k: string) => median(t[k]!);
  report.add({ name: 'tsrun CNI ADD + DEL (2 processes, the plugin as installed)', value: m('tsrun'), unit: 'ms' });
  report.add({ name: 'tsrun CNI ADD + DEL through dist/bundle/tsrun', value: m('tsrunLauncher'), unit: 'ms', note: 'for information: runtimes run the installed wrapper' });
  report.add({ name: 'bridge + host-local + ipMasq ADD + DEL', value: m('ref'), unit: 'ms' });
  report.add({ name: 'tsrun / reference bridge', value: m('tsrun') / m('ref'), unit: '×', target: '≤ 0.7' });
  report.add({ name: 'tsrun CNI ADD + DEL, its own published port', value: m('tsrunPorts'), unit: 'ms' });
  report.add({ name: 'bridge + portmap ADD, portmap + bridge DEL', value: m('refPorts'), unit: 'ms' });
  report.add({ name: 'tsrun (own ports) / bridge + portmap', value: m('tsrunPorts') / m('refPorts'), unit: '×', target: '≤ 0.7' });
  report.add({ name: 'tsrun CNI VERSION (a cold process, as installed)', value: m('tsrunVersion'), unit: 'ms' });
  report.add({ name: 'bridge VERSION', value: m('refVersion'), unit: 'ms', note: 'libcni runs VERSION of every plugin whenever it loads a conflist' });
  // VERSION has a door of its own (cni-version.cjs): its floor, for information.
  report.add({ name: 'node loading cni-version.cjs and exiting (VERSION\'s door doing nothing)', value: m('nodeCniVersion'), unit: 'ms' });
  report.add({ name: 'tsrun CNI VERSION / that floor', value: m('tsrunVersion') / m('nodeCniVersion'), unit: '×', note: 'for information' });
  // tsrun's floor: ADD and DEL are two cold Node processes where the reference plugins are Go.
  report.add({ name: 'node -e 0 (a cold Node process, for reference)', value: m('node'), unit: 'ms' });
  report.add({ name: 'node loading cni.cjs and exiting (a cold front door doing nothing)', value: m('nodeCni'), unit: 'ms' });
  // Floors for the same work from two Node processes: two cold starts plus the verbs' in-process
  // time, from the plugin's own "cni done" lines (verbMs) of the measured runs.
  const done = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(logStart).split('\n').filter((l) => l.includes('"msg":"cni done"')).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
  const verbs = (ports: boolean, cmd: string) => median(done.filter((d) => d.cni === cmd && withPorts.has(String(d.containerId)) === ports && !viaLauncher.has(String(d.containerId))).map((d) => Number(d.verbMs)));
  for (const ports of [false, true]) {
    const work = verbs(ports, 'ADD') + verbs(ports, 'DEL');
    if (!Number.isFinite(work)) continue;
    const what = ports ? ', own port' : '';
    const total = m(ports ? 'tsrunPorts' : 'tsrun');
    const ref = m(ports ? 'refPorts' : 'ref');
    report.add({ name: `tsrun CNI ADD + DEL in-process verb time${what}`, value: work, unit: 'ms' });
    report.add({ name: `floor A: 2 × node -e 0 + that; tsrun / floor A${what}`, value: total / (2 * m('node') + work), unit: '×', target: '≤ 1.1' });
    report.add({ name: `floor B: 2 × node loading cni.cjs + that; tsrun / floor B${what}`, value: total / (2 * m('nodeCni') + work), unit: '×', target: '≤ 1.1' });
    report.add({ name: `floor B / reference${what} (the best two Node processes can do)`, value: (2 * m('nodeCni') + work) / ref, unit: '×' });
  }
}

async function podman(report: Report, runs: number, env: NodeJS.ProcessEnv, root: string): Promise<void> {
  report.section(`cni: podman (CNI backend) run --rm -p 8080:80, tsrun conflist vs podman's CNI bridge conflist (median of ${runs})`);
  const pm = await PodmanCni.create({ path: '/proc/self/ns/net' }, 'bench-cnipodman');
  try {
    const tsrun = (args: string[]) => {
      const r = spawnSync(TSRUN, [...args], { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')}: ${r.stderr}`);
    };
    tsrun(['network', 'create', 'benchnet', '--subnet', '10.74.0.0/24']);
    tsrun(['cni', 'install', '--bin-dir', pm.binDir, '--conf-dir', pm.confDir, '--network', 'benchnet']);
    const created = pm.podman(['network', 'create', '--subnet', '10.73.0.0/24', 'refnet']);
    if (created.status !== 0) throw new Error(`podman network create: ${created.stderr}`);
    const run = (network: string) => (): number => {
      const started = performance.now();
      const r = pm.podman(['run', '--rm', '--network', network, '-p', '8080:80', ...pm.runOptions(), '--rootfs', pm.rootfs, 'true']);
      const ms = performance.now() - started;
      if (r.status !== 0) throw new Error(`podman run --network ${network}: ${r.stderr}`);
      return ms;
    };
    run('benchnet')();
    run('refnet')();
    const t = interleave(runs, { tsrun: run('benchnet'), ref: run('refnet') });
    const a = median(t.tsrun!);
    const b = median(t.ref!);
    report.add({ name: 'podman run --rm -p 8080:80 on the tsrun CNI network', value: a, unit: 'ms' });
    report.add({ name: 'podman run --rm -p 8080:80 on its CNI bridge network', value: b, unit: 'ms' });
    report.add({ name: 'podman: tsrun plugin / CNI bridge conflist', value: a / b, unit: '×', note: 'for information: podman itself is most of both' });
  } finally {
    pm.destroy();
    spawnSync(TSRUN, ['network', 'rm', '--force', 'benchnet'], { env });
    spawnSync('ip', ['link', 'del', 'cni-podman1']);
    void root;
  }
}
