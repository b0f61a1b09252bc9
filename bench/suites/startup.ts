// `tsrun run --net none` of busybox /bin/true vs `runc run` of the same bundle.
// Target ≤ 1.6× runc. tsrun's floor is runc's own time plus a cold Node process, so two floors are
// measured in the same run and tsrun is held within 10 % of them (≤ 1.1×):
//   - (node -e 0) + runc run: a cold Node process doing nothing, then runc;
//   - one Node process that loads the bundle tsrun's entry loads for a foreground `run` (run.cjs,
//     its own door; code cache, top level evaluated) and spawns `runc run` as tsrun does (Node's
//     process handle, shim/spawn-inherit.ts) and waits for it: what
//     any Node front door of this size that runs runc costs, before tsrun's own work (state
//     directory, spec, signals, teardown).
//     Since the plain door (shim/run-door-plain.ts), `run --net none` loads run-plain.cjs instead:
//     floor B stays as it was (run.cjs, the door of run -d and of the networks), and floor B
//     (plain) beside it loads run-plain.cjs the same way.
// tsrun runs as installed (the launcher); the start-up snapshot (opt-in, TSRUN_SNAPSHOT=1) is
// measured beside it to show what it is worth.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Report, TSRUN, benchBundle, benchEnv, interleave, median, nodeLoadingBundle, timeCommand } from '../lib.js';

export function startupSuite(report: Report, runs: number): void {
  report.section(`start-up: tsrun run --net none vs runc run, busybox /bin/true (median of ${runs})`);
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-root-'));
  const bundle = benchBundle(['/bin/true']);
  const env = benchEnv({ TSRUN_ROOT: root });
  const snapshotEnv = { ...env, TSRUN_SNAPSHOT: '1' };
  const runcRoot = path.join(root, 'runc-ref');
  let n = 0;
  const runcArgs = () => ['--root', runcRoot, 'run', '--bundle', bundle.dir, `ref-${n++}`];
  // The floor's process: load run.cjs, then `runc run` with the container's stdio, started the way
  // tsrun starts it (run.cjs's spawnInherit: Node's process handle, no child_process), exit with
  // its status.
  const floorOf = (door: 'run' | 'run-plain') => () => {
    const spawnRunc = `door.spawnInherit('runc', ${JSON.stringify(runcArgs())}).once('exit', (c) => process.exit(c ?? 1));`;
    const [cmd, args] = nodeLoadingBundle(door, spawnRunc);
    return timeCommand(cmd, args, { env });
  };
  try {
    const t = interleave(runs, {
      runc: () => timeCommand('runc', runcArgs(), { env }),
      tsrun: () => timeCommand(TSRUN, ['run', '--net', 'none', bundle.dir], { env }),
      snapshot: () => timeCommand(TSRUN, ['run', '--net', 'none', bundle.dir], { env: snapshotEnv }),
      node: () => timeCommand(process.execPath, ['-e', '0'], { env }),
      floor: floorOf('run'),
      floorPlain: floorOf('run-plain'),
    });
    const runc = median(t.runc!);
    const tsrun = median(t.tsrun!);
    const node = median(t.node!);
    const floorB = median(t.floor!);
    const snapshot = median(t.snapshot!);
    const floorPlain = median(t.floorPlain!);
    report.add({ name: 'runc run', value: runc, unit: 'ms' });
    report.add({ name: 'tsrun run --net none', value: tsrun, unit: 'ms' });
    report.add({ name: 'node -e 0 (a cold Node process)', value: node, unit: 'ms' });
    report.add({ name: 'tsrun run --net none / runc run', value: tsrun / runc, unit: '×', target: '≤ 1.6' });
    report.add({ name: 'floor A: (node -e 0 + runc run) / runc run', value: (node + runc) / runc, unit: '×' });
    report.add({ name: 'tsrun / floor A', value: tsrun / (node + runc), unit: '×', target: '≤ 1.1', note: "tsrun's own overhead above a cold Node + runc" });
    report.add({ name: 'floor B: node loading run.cjs + spawning runc run', value: floorB, unit: 'ms' });
    report.add({ name: 'tsrun / floor B', value: tsrun / floorB, unit: '×', target: '≤ 1.1', note: "tsrun's work above loading its bundle and running runc" });
    report.add({ name: 'floor B (plain): node loading run-plain.cjs + spawning runc run', value: floorPlain, unit: 'ms', note: 'the bundle `run --net none` loads' });
    report.add({ name: 'tsrun / floor B (plain)', value: tsrun / floorPlain, unit: '×', note: "tsrun's work above loading its own door and running runc" });
    report.add({ name: 'tsrun run --net none from the start-up snapshot (TSRUN_SNAPSHOT=1)', value: snapshot, unit: 'ms' });
    report.add({ name: 'snapshot / default (plain bundle)', value: snapshot / tsrun, unit: '×', note: 'below 1: the snapshot pays' });
  } finally {
    spawnSync('rm', ['-rf', runcRoot]);
    bundle.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}
