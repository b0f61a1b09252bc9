// waitEnded (shim/lifecycle/signals.ts): a detached container's end is seen through an inotify
// watch of conmon's exit directory, and still through the looks when no event comes (no exit
// directory to watch, a monitor that died without writing the file). Real files, a real process
// standing in for the monitor; no timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveSettings } from '../../../../config/settings.js';
import { waitEnded } from '../../../../shim/lifecycle/signals.js';
import { pathsOf, writeLifecycle } from '../../../../shim/lifecycle/record.js';
import type { ContainerView } from '../../../../shim/lifecycle/status.js';

let root: string;
const children: ChildProcess[] = [];
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-wait-ended-test-'));
});
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function startTicks(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** A detached container whose monitor (a sleep) runs: its state directory, its lifecycle record,
 * and an exit directory unless `exitDir` is false. */
function detached(id: string, exitDir = true): { view: ContainerView; monitor: ChildProcess; settings: ReturnType<typeof resolveSettings> } {
  const settings = resolveSettings({ TSRUN_ROOT: root }, {});
  const p = pathsOf(settings.runDir, id);
  mkdirSync(p.dir, { recursive: true });
  if (exitDir) mkdirSync(p.exitDir);
  const monitor = spawn('sleep', ['30']);
  children.push(monitor);
  writeLifecycle(settings.runDir, { id, instance: 'i', created: '', options: {} as never, command: [], tty: false, stdin: false, conmonPid: monitor.pid, conmonStart: startTicks(monitor.pid!) });
  const view = { id, record: { id, detached: 'monitored', ownerPid: monitor.pid, ownerStart: '' }, status: 'running' } as unknown as ContainerView;
  return { view, monitor, settings };
}

describe('waitEnded', () => {
  it("returns once conmon's exit file is written", async () => {
    const { view, settings } = detached('c1');
    setTimeout(() => writeFileSync(pathsOf(settings.runDir, 'c1').exitFile, '137'), 50);
    await expect(waitEnded(settings, view, 10_000)).resolves.toBe(true);
  });

  it('without an exit directory to watch, still sees a monitor that died without writing the file', async () => {
    const { view, monitor, settings } = detached('c2', false);
    setTimeout(() => monitor.kill('SIGKILL'), 50);
    await expect(waitEnded(settings, view, 10_000)).resolves.toBe(true);
  });

  it('false after the timeout while the container runs', async () => {
    const { view, settings } = detached('c3');
    await expect(waitEnded(settings, view, 100)).resolves.toBe(false);
  });
});
