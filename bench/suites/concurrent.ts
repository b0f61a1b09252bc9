// 50 containers attached at once to one network: wall time of tsrun's engine (in one process,
// the attaches running concurrently, as a host's runtime would start them) against the CNI
// bridge plugin the way a runtime with a worker pool calls it (`xargs -P 8`, one process per
// ADD, host-local IPAM, ipMasq). Target ≤ 0.5×. Also reported, for information: tsrun called as
// a CNI plugin through the same `xargs -P 8` (a cold process per ADD, from its start-up snapshot).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings } from '../../config/settings.js';
import { openEngine } from '../../runtime/context.js';
import { createLogger } from '../../runtime/log.js';
import { createPinnedNetns, deletePinnedNetns } from '../../runtime/netns/netns.js';
import { CNI_PATH } from '../cni-plugin.js';
import { Report, TSRUN, benchEnv } from '../lib.js';

const N = 50;
const PARALLEL = 8;

export async function concurrentSuite(report: Report, runs: number): Promise<void> {
  report.section(`${N} containers attached at once to one network: tsrun engine vs CNI bridge with xargs -P ${PARALLEL} (best of ${Math.max(1, Math.min(runs, 3))})`);
  const rounds = Math.max(1, Math.min(runs, 3));
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-concurrent-'));
  const env = benchEnv({ TSRUN_ROOT: root });
  const settings = resolveSettings(env);
  const log = createLogger({ file: settings.logFile, level: 'warn', debug: false });
  const handle = await openEngine(settings, log);
  const netnsDir = path.join(root, 'netns');
  const pins = (prefix: string) => Array.from({ length: N }, (_, i) => path.join(netnsDir, `${prefix}${i}`));
  const tsrunTimes: number[] = [];
  const cniTimes: number[] = [];
  const tsrunCniTimes: number[] = [];
  try {
    // Warm-up: the first attach makes the default network and the firewall table.
    createPinnedNetns(path.join(netnsDir, 'warm'));
    await handle.engine.attach({ containerId: 'warm', netnsPath: path.join(netnsDir, 'warm'), network: 'tsrun', ports: [] });
    await handle.engine.detach('warm', { netnsGoing: true });
    deletePinnedNetns(path.join(netnsDir, 'warm'));
    const cniConf = path.join(root, 'bridge.json');
    writeFileSync(cniConf, JSON.stringify({ cniVersion: '1.0.0', name: 'cniconc', type: 'bridge', bridge: 'cniconc0', isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: '10.78.0.0/24', dataDir: path.join(root, 'cni-ipam') } }));
    const tsrunConf = path.join(root, 'tsrun.json');
    writeFileSync(tsrunConf, JSON.stringify({ cniVersion: '1.0.0', name: 'tsrun', type: 'tsrun', network: 'tsrun', ports: [] }));

    for (let r = 0; r < rounds; r++) {
      // tsrun engine: all N at once, in-process.
      const ours = pins(`t${r}-`);
      for (const p of ours) createPinnedNetns(p);
      const t0 = performance.now();
      await Promise.all(ours.map((p, i) => handle.engine.attach({ containerId: `conc-${r}-${i}`, netnsPath: p, network: 'tsrun', ports: [] })));
      tsrunTimes.push(performance.now() - t0);
      for (let i = 0; i < N; i++) await handle.engine.detach(`conc-${r}-${i}`, { netnsGoing: true });
      for (const p of ours) deletePinnedNetns(p);

      // CNI bridge: N ADDs through xargs -P 8.
      const theirs = pins(`c${r}-`);
      for (const p of theirs) createPinnedNetns(p);
      cniTimes.push(xargsCni(path.join(CNI_PATH, 'bridge'), 'ADD', cniConf, theirs, `cc${r}-`, env));
      xargsCni(path.join(CNI_PATH, 'bridge'), 'DEL', cniConf, theirs, `cc${r}-`, env);
      for (const p of theirs) deletePinnedNetns(p);

      // tsrun as a CNI plugin, the same way.
      const plugin = pins(`p${r}-`);
      for (const p of plugin) createPinnedNetns(p);
      tsrunCniTimes.push(xargsCni(TSRUN, 'ADD', tsrunConf, plugin, `tc${r}-`, env));
      xargsCni(TSRUN, 'DEL', tsrunConf, plugin, `tc${r}-`, env);
      for (const p of plugin) deletePinnedNetns(p);
    }
  } finally {
    spawnSync('ip', ['link', 'del', 'cniconc0']);
    spawnSync('ip', ['link', 'del', 'tsrun0']);
    await handle.close();
    rmSync(root, { recursive: true, force: true });
  }
  const best = (xs: number[]) => Math.min(...xs);
  report.add({ name: `tsrun engine: ${N} attaches at once (wall)`, value: best(tsrunTimes), unit: 'ms' });
  report.add({ name: `CNI bridge ADD × ${N}, xargs -P ${PARALLEL} (wall)`, value: best(cniTimes), unit: 'ms' });
  report.add({ name: `tsrun engine / CNI bridge -P ${PARALLEL}`, value: best(tsrunTimes) / best(cniTimes), unit: '×', target: '≤ 0.5' });
  report.add({ name: `tsrun as CNI plugin ADD × ${N}, xargs -P ${PARALLEL} (wall)`, value: best(tsrunCniTimes), unit: 'ms' });
  report.add({ name: `tsrun CNI plugin / CNI bridge, both -P ${PARALLEL}`, value: best(tsrunCniTimes) / best(cniTimes), unit: '×', note: 'for information: a cold process per ADD on both sides' });
}

/** `command` for every namespace in `pins` through `xargs -P 8`; returns the wall time. */
function xargsCni(plugin: string, command: string, conf: string, pins: string[], idPrefix: string, env: NodeJS.ProcessEnv): number {
  const script = `CNI_COMMAND=${command} CNI_CONTAINERID=${idPrefix}$(basename "$1") CNI_NETNS="$1" CNI_IFNAME=eth0 CNI_PATH=${CNI_PATH} "$0" < ${conf} > /dev/null`;
  const started = performance.now();
  const r = spawnSync('xargs', ['-P', String(PARALLEL), '-n', '1', 'sh', '-c', script, plugin], { input: pins.join('\n'), env, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`xargs ${path.basename(plugin)} ${command} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return ms;
}
