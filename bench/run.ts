// `npm run bench`: every target as a ratio against runc and the peer tools, measured in one run.
// The benchmark runs in a network namespace of its own (it re-executes itself under
// `unshare --net`), so nothing it builds touches the machine's network, and all of it vanishes
// with the process.
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { Report } from './lib.js';
import { Progress } from './progress.js';
import { saveRun } from './saved-run.js';
import { startupSuite } from './suites/startup.js';
import { hookSuite } from './suites/hook.js';
import { bridgeSuite } from './suites/bridge.js';
import { macvlanSuite } from './suites/macvlan.js';
import { overlaySuite } from './suites/overlay.js';
import { partsSuite } from './suites/parts.js';
import { concurrentSuite } from './suites/concurrent.js';
import { cniSuite } from './suites/cni.js';
import { dnsSuite } from './suites/dns.js';
import { detachedSuite } from './suites/detached.js';
import { ociRuntimeSuite } from './suites/oci-runtime.js';
import { throughputSuite } from './suites/throughput.js';

const SUITES: Record<string, (r: Report, runs: number) => void | Promise<void>> = {
  startup: startupSuite,
  hook: hookSuite,
  bridge: bridgeSuite,
  throughput: throughputSuite,
  macvlan: macvlanSuite,
  overlay: overlaySuite,
  parts: partsSuite,
  concurrent: concurrentSuite,
  cni: cniSuite,
  dns: dnsSuite,
  detached: detachedSuite,
  'oci-runtime': ociRuntimeSuite,
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (!args.includes('--inside')) {
    const env = { ...process.env, TSRUN_BENCH_OUTER_NETNS: readlinkSync('/proc/self/ns/net') };
    const r = spawnSync('unshare', ['--net', process.execPath, process.argv[1]!, '--inside', ...args], { stdio: 'inherit', env });
    process.exit(r.status ?? 1);
  }
  if (readlinkSync('/proc/self/ns/net') === process.env.TSRUN_BENCH_OUTER_NETNS) throw new Error('refusing to benchmark in the root network namespace');
  spawnSync('ip', ['link', 'set', 'lo', 'up']);
  const runs = Number(process.env.BENCH_RUNS ?? 20);
  const only = args.filter((a) => !a.startsWith('--'));
  const unknown = only.filter((s) => !(s in SUITES));
  if (unknown.length > 0) throw new Error(`unknown suite ${unknown.join(', ')}: choose from ${Object.keys(SUITES).join(', ')}`);
  const selected = Object.keys(SUITES).filter((name) => only.length === 0 || only.includes(name));
  const progress = new Progress(selected, runs);
  const report = new Report((title) => progress.step(title));
  const started = new Date().toISOString();
  console.log(`tsrun benchmark: ${started}, node ${process.version}, runs per measurement ${runs}`);
  for (const name of selected) {
    progress.startSuite(name);
    await SUITES[name]!(report, runs);
    progress.endSuite();
  }
  progress.done();
  saveRun({ date: started, node: process.version, runs, suites: selected, rows: report.rows });
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
