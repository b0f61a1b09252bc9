// The runc wrapper. tsrun gives runc a private --root under its state directory, so its
// containers never mix with other runc users', and a --log file in JSON so that runc's own
// failures can be told apart from the container's exit status and reported in one line.
import { spawn } from 'node:child_process';
import { spawnInherit, type InheritingChild } from './spawn-inherit.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface RuncPaths {
  binary: string;
  root: string;
}

export interface RuncRunOptions {
  id: string;
  bundle: string;
  pidFile: string;
  logFile: string;
}

export function spawnRuncRun(runc: RuncPaths, o: RuncRunOptions): InheritingChild {
  const args = ['--root', runc.root, '--log', o.logFile, '--log-format', 'json', 'run', '--bundle', o.bundle, '--pid-file', o.pidFile, o.id];
  // stdio passes straight through: runc hands these very descriptors to the container.
  return spawnInherit(runc.binary, args);
}

/** runc's state for `id` exists when `runc run` did not get to delete it (runc was killed). */
export function runcStateExists(runc: RuncPaths, id: string): boolean {
  return existsSync(path.join(runc.root, id, 'state.json'));
}

export async function runcDeleteForce(runc: RuncPaths, id: string): Promise<void> {
  await runcOutput(runc, ['delete', '--force', id]);
}

export interface RuncResult {
  /** runc's exit status; -1 when it could not run or a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * runc with `--root` and `args`, its output collected; never rejects. A plain spawn: these calls
 * are on the path of every stop, rm and cleanup, and loading execa costs 20–35 ms there.
 */
export function runcOutput(runc: RuncPaths, args: readonly string[]): Promise<RuncResult> {
  return new Promise((resolve) => {
    const child = spawn(runc.binary, ['--root', runc.root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (err) => resolve({ code: -1, stdout, stderr: `${stderr}${err.message}\n` }));
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The last error runc logged, in one line without runc's "runc run failed:" prefix. */
export function lastRuncError(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const rec = JSON.parse(line) as { level?: string; msg?: string };
      if ((rec.level === 'error' || rec.level === 'fatal') && rec.msg) last = rec.msg;
    } catch {
      last = line.trim();
    }
  }
  return last?.replace(/^runc (run|create|start) failed: /, '');
}

/** Sends `signal` to the container's init through runc (SIGKILL cannot be proxied by `runc run`). */
export async function runcKill(runc: RuncPaths, id: string, signal: string): Promise<void> {
  await runcOutput(runc, ['kill', id, signal]);
}
