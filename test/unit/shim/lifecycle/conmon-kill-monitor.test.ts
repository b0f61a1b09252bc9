// A rollback kills the forked conmon by the pid in its pid file (killMonitor). After a failed
// `runc create` that conmon has already exited and its pid may be another process's by then: only a
// process whose command line names this pid file is killed.
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killMonitor } from '../../../../shim/lifecycle/conmon.js';

let dir: string;
let pidFile: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-killmon-'));
  pidFile = path.join(dir, 'conmon.pid');
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A process whose command line is `args` (node ignores what follows the script). */
function idle(args: string[]): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', ...args], { stdio: 'ignore' });
  children.push(c);
  return new Promise((resolve) => c.once('spawn', () => resolve(c)));
}

function exited(c: ChildProcess): Promise<NodeJS.Signals | null> {
  return new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(c.signalCode) : c.once('exit', (_code, sig) => resolve(sig))));
}

it('kills the conmon that wrote the pid file', async () => {
  const c = await idle(['--conmon-pidfile', pidFile, '--runtime-arg', '--root=/x']);
  writeFileSync(pidFile, String(c.pid));
  killMonitor(pidFile);
  expect(await exited(c)).toBe('SIGKILL');
});

it('leaves alone another process that has the pid now (the monitor exited, its pid reused)', async () => {
  const other = await idle(['--conmon-pidfile', `${pidFile}.other`]);
  writeFileSync(pidFile, String(other.pid));
  killMonitor(pidFile);
  const unrelated = await idle([]);
  writeFileSync(pidFile, String(unrelated.pid));
  killMonitor(pidFile);
  await new Promise((r) => setTimeout(r, 100));
  expect(other.exitCode === null && other.signalCode === null).toBe(true);
  expect(unrelated.exitCode === null && unrelated.signalCode === null).toBe(true);
});

it('does nothing without a pid file, or with one naming no process', () => {
  expect(() => killMonitor(pidFile)).not.toThrow();
  writeFileSync(pidFile, '999999999');
  expect(() => killMonitor(pidFile)).not.toThrow();
});
