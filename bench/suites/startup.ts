// `tsrun run --net none` of busybox /bin/true vs `runc run` of the same bundle.
// Target ≤ 1.6× runc. tsrun's floor is runc's own time plus a cold Node process, so that floor
// (node -e 0 + runc run) is measured in the same run and reported next to the ratio; tsrun's own
// overhead above it, ≤ 1.1×. tsrun runs as installed (the launcher, from the CLI's start-up
// snapshot) and from the plain bundle, to show what the snapshot is worth.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Report, TSRUN, TSRUN_PLAIN, benchBundle, benchEnv, interleave, median, timeCommand } from '../lib.js';

export function startupSuite(report: Report, runs: number): void {
  report.section(`start-up: tsrun run --net none vs runc run, busybox /bin/true (median of ${runs})`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-root-'));
  const bundle = benchBundle(['/bin/true']);
  const env = benchEnv({ TSRUN_ROOT: root });
  const runcRoot = path.join(root, 'runc-ref');
  let n = 0;
  try {
    const t = interleave(runs, {
      runc: () => timeCommand('runc', ['--root', runcRoot, 'run', '--bundle', bundle.dir, `ref-${n++}`], { env }),
      tsrun: () => timeCommand(TSRUN, ['run', '--net', 'none', bundle.dir], { env }),
      plain: () => timeCommand(process.execPath, [TSRUN_PLAIN, 'run', '--net', 'none', bundle.dir], { env }),
      node: () => timeCommand(process.execPath, ['-e', '0'], { env }),
    });
    const runc = median(t.runc!);
    const tsrun = median(t.tsrun!);
    const node = median(t.node!);
    const plain = median(t.plain!);
    report.add({ name: 'runc run', value: runc, unit: 'ms' });
    report.add({ name: 'tsrun run --net none', value: tsrun, unit: 'ms' });
    report.add({ name: 'node -e 0 (a cold Node process)', value: node, unit: 'ms' });
    report.add({ name: 'tsrun run --net none / runc run', value: tsrun / runc, unit: '×', target: '≤ 1.6' });
    report.add({ name: 'floor: (node -e 0 + runc run) / runc run', value: (node + runc) / runc, unit: '×' });
    report.add({ name: 'tsrun / floor', value: tsrun / (node + runc), unit: '×', target: '≤ 1.1', note: "tsrun's own overhead above the floor" });
    report.add({ name: 'tsrun run --net none, plain bundle (no snapshot)', value: plain, unit: 'ms' });
    report.add({ name: 'plain bundle / floor', value: plain / (node + runc), unit: '×' });
    report.add({ name: 'launcher + snapshot / plain bundle', value: tsrun / plain, unit: '×', note: 'below 1: the snapshot pays' });
  } finally {
    spawnSync('rm', ['-rf', runcRoot]);
    bundle.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}
