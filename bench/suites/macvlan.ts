// macvlan: attach+detach of one container through the engine (in-process, as `tsrun run` and the
// hook do it) vs the CNI macvlan plugin's ADD+DEL (one process each, as CNI is called, with
// host-local IPAM) on the same parent, in one run. Target ≤ 1.0×.
//
// The parent is a veth pair made in the benchmark's own network namespace (run.ts re-executes
// the benchmark under `unshare --net`), so nothing touches the machine's network.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings } from '../../config/settings.js';
import { createLogger } from '../../runtime/log.js';
import { openEngine } from '../../runtime/context.js';
import { createPinnedNetns, deletePinnedNetns } from '../../runtime/netns/netns.js';
import { Report, benchEnv, median } from '../lib.js';
import { engineVsCni } from '../engine-vs-cni.js';

const PARENT = 'bmv0';

export async function macvlanSuite(report: Report, runs: number): Promise<void> {
  report.section(`macvlan attach+detach of one container: tsrun engine vs CNI macvlan plugin ADD+DEL, parent ${PARENT} (median of ${runs})`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-macvlan-'));
  const env = benchEnv({ TSRUN_ROOT: root });
  const settings = resolveSettings(env);
  const log = createLogger({ file: settings.logFile, level: 'warn', debug: false });
  ip(['link', 'add', PARENT, 'type', 'veth', 'peer', 'name', `${PARENT}p`]);
  ip(['link', 'set', PARENT, 'up']);
  ip(['link', 'set', `${PARENT}p`, 'up']);
  const handle = await openEngine(settings, log);
  const pin = path.join(settings.runDir, 'netns', 'bench-mv');
  const cniPin = path.join(settings.runDir, 'netns', 'bench-mv-cni');
  const conf = JSON.stringify({
    cniVersion: '1.0.0', name: 'benchmv', type: 'macvlan', master: PARENT, mode: 'bridge',
    ipam: { type: 'host-local', subnet: '10.232.0.0/16', dataDir: path.join(root, 'cni-ipam') },
  });
  try {
    await handle.engine.createNetwork({ name: 'benchmv', driver: 'macvlan', parent: PARENT, subnet: '10.231.0.0/16' });
    createPinnedNetns(pin);
    createPinnedNetns(cniPin);
    const req = { containerId: 'bench-mv', netnsPath: pin, network: 'benchmv', ports: [] };
    const { attach: att, detach: det, wiring, cniAdd: add, cniDel: del } = await engineVsCni(runs, handle.engine, req, { plugin: 'macvlan', conf, containerId: 'benchmv', netnsPath: cniPin });
    report.add({ name: 'CNI macvlan ADD (process, host-local IPAM)', value: median(add), unit: 'ms' });
    report.add({ name: 'CNI macvlan DEL', value: median(del), unit: 'ms' });
    report.add({ name: 'tsrun macvlan attach', value: median(att), unit: 'ms' });
    report.add({ name: 'tsrun macvlan detach', value: median(det), unit: 'ms' });
    report.add({ name: 'tsrun macvlan attach+detach / CNI ADD+DEL', value: (median(att) + median(det)) / (median(add) + median(del)), unit: '×', target: '≤ 1.0' });
    report.add({ name: 'in-process wiring of one macvlan attach (record.wiringMs)', value: median(wiring), unit: 'ms', note: 'IPAM, create in the container netns, rename, address, route' });
  } finally {
    await handle.engine.detach('bench-mv');
    await handle.engine.removeNetwork('benchmv', true).catch(() => undefined);
    deletePinnedNetns(pin);
    deletePinnedNetns(cniPin);
    await handle.close();
    spawnSync('ip', ['link', 'del', PARENT]);
    rmSync(root, { recursive: true, force: true });
  }
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}
