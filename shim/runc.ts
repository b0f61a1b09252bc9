// The runc wrapper. tsrun gives runc a private --root under its state directory, so its
// containers never mix with other runc users', and a --log file in JSON so that runc's own
// failures can be told apart from the container's exit status and reported in one line.
import { spawn } from 'node:child_process';
import { spawnInherit, type InheritingChild } from './spawn-inherit.js';
import { closeSync, constants, existsSync, openSync, readFileSync, readSync, rmdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../config/settings.js';
import { pathSearchedAsResolved, resolveBinary } from '../runtime/binaries.js';
import { isAlive } from '../runtime/containers.js';
import { removeTree } from '../runtime/files.js';
import { UserError } from '../config/errors.js';

export interface RuncPaths {
  binary: string;
  root: string;
}

/** runc as tsrun runs it: the configured binary, with a private --root under the run directory.
 * Here rather than in run.ts, so that the lifecycle commands (rm's door above all) can have it
 * without loading the foreground run and the spec parsing it brings. */
export function runcPaths(settings: Settings): RuncPaths {
  return { binary: resolveBinary(settings.runc), root: path.join(settings.runDir, 'runc') };
}

/**
 * runcPaths for a process that starts runc only through a PATH search at exec (the foreground
 * run: Node's process handle, posix_spawnp, child_process): runc's bare name when the search finds
 * what resolveBinary would (pathSearchedAsResolved), so that no PATH walk of JavaScript (an
 * `existsSync` per directory before runc's, ~0.3 ms of a cold process at load) comes before the
 * spawn; the child's exec walks it in C. A runc found nowhere then fails the spawn (ENOENT), where
 * the caller asks resolveBinary for its one line (runcNotFound).
 */
export function runcPathsForSpawn(settings: Settings, env: NodeJS.ProcessEnv = process.env): RuncPaths {
  if (settings.runc.includes('/') || !pathSearchedAsResolved(env.PATH)) return runcPaths(settings);
  return { binary: settings.runc, root: path.join(settings.runDir, 'runc') };
}

/** After a spawn of runc by the bare name of runcPathsForSpawn failed: throws resolveBinary's one
 * line when runc is nowhere to be found (not installed), else returns (another failure: the spawn's
 * own error follows). */
export function runcNotFound(settings: Settings): void {
  resolveBinary(settings.runc);
}

export interface RuncRunOptions {
  id: string;
  bundle: string;
  pidFile: string;
  logFile: string;
}

export function spawnRuncRun(runc: RuncPaths, o: RuncRunOptions, spawn: (file: string, args: readonly string[]) => InheritingChild = spawnInherit): InheritingChild {
  const args = ['--root', runc.root, '--log', o.logFile, '--log-format', 'json', 'run', '--bundle', o.bundle, '--pid-file', o.pidFile, o.id];
  // stdio passes straight through: runc hands these very descriptors to the container.
  return spawn(runc.binary, args);
}

/** runc's state for `id` exists when `runc run` did not get to delete it (runc was killed). */
export function runcStateExists(runc: RuncPaths, id: string): boolean {
  return existsSync(path.join(runc.root, id, 'state.json'));
}

export async function runcDeleteForce(runc: RuncPaths, id: string): Promise<void> {
  await runcOutput(runc, ['delete', '--force', id]);
}

/**
 * Removes what runc left for `id`: a container (`runc delete --force`), or, when runc was killed
 * before it wrote its state.json (a foreground run's setup failing while runc waits at its gate,
 * shim/runc-gate.ts, or a kill during runc's start-up), the directory runc makes first: left, it
 * refuses the id to every later runc ("container with given ID already exists"). Only for an id this
 * process holds (its claim, or a dead owner's reclaimed) once that runc has ended.
 */
export async function removeRuncState(runc: RuncPaths, id: string): Promise<void> {
  const dir = path.join(runc.root, id);
  // Usually gone: a `runc run` that ended deleted it. Looked for first, as removeTree's listing of
  // a directory that is not there builds an Error with a stack (~0.1 ms in a cold process, on the
  // path between runc's exit and tsrun's).
  if (!existsSync(dir)) return;
  if (runcStateExists(runc, id)) return runcDeleteForce(runc, id);
  removeTree(dir);
}

/** The parts of runc's state.json (runc 1.x) that its delete of a stopped container acts on. */
interface RuncStateFile {
  init_process_pid?: unknown;
  init_process_start?: unknown;
  cgroup_paths?: unknown;
  intel_rdt_path?: unknown;
  config?: { namespaces?: unknown; Hooks?: unknown; hooks?: unknown };
}

/**
 * The cgroup directories to remove when a container whose init has ended can be deleted without
 * runc, or undefined when runc must do it. For a stopped container `runc delete` kills what is
 * left in the cgroup when the container had no pid namespace of its own, removes the cgroup
 * directories, the Intel RDT group and its state directory, and runs the poststop hooks. Only the
 * plain case is done here (an own pid namespace, whose processes the kernel killed with its init;
 * no hooks; no RDT group; cgroup directories under /sys/fs/cgroup); anything else, or a state
 * this does not recognise, is left to runc.
 */
export function cgroupsToDeleteInProcess(state: unknown, initAlive: (pid: number, start: string) => boolean): string[] | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const s = state as RuncStateFile;
  if (typeof s.init_process_pid !== 'number' || typeof s.init_process_start !== 'number') return undefined;
  if (initAlive(s.init_process_pid, String(s.init_process_start))) return undefined; // runc kills it
  if (s.intel_rdt_path !== undefined && s.intel_rdt_path !== '') return undefined;
  const ns = s.config?.namespaces;
  if (!Array.isArray(ns) || !ns.some((n: { type?: unknown; path?: unknown }) => n?.type === 'NEWPID' && (n.path ?? '') === '')) return undefined;
  if (hasHooks(s)) return undefined;
  const cg = s.cgroup_paths;
  if (cg === undefined || cg === null) return [];
  if (typeof cg !== 'object') return undefined;
  const dirs = Object.values(cg);
  if (!dirs.every((d): d is string => typeof d === 'string' && d.startsWith('/sys/fs/cgroup/') && !d.split('/').includes('..'))) return undefined;
  return [...new Set(dirs)];
}

/** Hooks in runc's record of the spec (runc 1.1 names the key Hooks); something else than a hook
 * list counts as hooks, so that a state this does not recognise goes to runc. */
function hasHooks(s: RuncStateFile): boolean {
  for (const hooks of [s.config?.Hooks, s.config?.hooks]) {
    if (hooks === undefined || hooks === null) continue;
    if (typeof hooks !== 'object' || Object.values(hooks).some((h) => h !== null && (!Array.isArray(h) || h.length > 0))) return true;
  }
  return false;
}

/** True when `runc start` of this created container needs nothing but its exec fifo: no hooks
 * (runc 1.2 runs the poststart hooks at start), a recognised state, an init that is alive. */
export function startableInProcess(state: unknown, initAlive: (pid: number, start: string) => boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (typeof state !== 'object' || state === null) return false;
  const s = state as RuncStateFile;
  if (typeof s.init_process_pid !== 'number' || typeof s.init_process_start !== 'number') return false;
  // runc start with NOTIFY_SOCKET waits for the container's sd_notify READY: runc's to do.
  if (env.NOTIFY_SOCKET !== undefined && env.NOTIFY_SOCKET !== '') return false;
  return !hasHooks(s) && initAlive(s.init_process_pid, String(s.init_process_start));
}

/**
 * `runc start` of a created container, in this process when startableInProcess allows: all runc's
 * start does then is open the container's exec fifo (<root>/<id>/exec.fifo) for reading — runc's
 * init waits in its open for writing —, read the byte the init writes just before it execs the
 * program, and remove the fifo (runc tells a created container from a running one by whether the
 * fifo exists). One Go process fewer (~8 ms) on every run -d and start. False: nothing was done
 * (no fifo, hooks, an init that ended, no byte within the timeout), and the caller runs
 * `runc start`, which reports what is wrong in its own words.
 */
export async function startInProcess(runc: RuncPaths, id: string, timeoutMs = 5_000, initAlive: (pid: number, start: string) => boolean = isAlive): Promise<boolean> {
  const fifo = openExecFifo(runc, id, initAlive);
  return fifo !== undefined && awaitStartByte(fifo, timeoutMs, initAlive);
}

/** A created container's exec fifo, opened for reading by openExecFifo: its init is on its way to
 * the program. */
export interface ExecFifo {
  path: string;
  fd: number;
  initPid: number;
  initStart: string;
}

/**
 * startInProcess's first half: the exec fifo opened for reading, when startableInProcess allows
 * (else undefined: nothing was done). From this open the init, which waits in its open for
 * writing, goes on: it writes its byte and execs the program; awaitStartByte reads the byte and
 * removes the fifo. run -d writes its records in between (shim/lifecycle/create.ts).
 */
export function openExecFifo(runc: RuncPaths, id: string, initAlive: (pid: number, start: string) => boolean = isAlive): ExecFifo | undefined {
  const dir = path.join(runc.root, id);
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (!startableInProcess(state, initAlive)) return undefined;
  const s = state as { init_process_pid: number; init_process_start: number };
  const fifo = path.join(dir, 'exec.fifo');
  try {
    // Non-blocking: a blocking open of a fifo waits for a writer, for ever if the init has died.
    // (libuv opens with O_CLOEXEC: nothing spawned meanwhile inherits it.)
    return { path: fifo, fd: openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK), initPid: s.init_process_pid, initStart: String(s.init_process_start) };
  } catch {
    return undefined; // no fifo: not created (started already, or ended)
  }
}

/** startInProcess's second half: the init's byte read (the fifo closed either way), the fifo
 * removed. False: no byte (an init that ended first, the timeout); the caller runs `runc start`. */
export async function awaitStartByte(f: ExecFifo, timeoutMs = 5_000, initAlive: (pid: number, start: string) => boolean = isAlive): Promise<boolean> {
  try {
    const buf = Buffer.alloc(1);
    const deadline = performance.now() + timeoutMs;
    let delay = 0;
    for (;;) {
      // Asked before the read, not after: an init that writes its byte, execs and ends (a program
      // that exits at once) between a read and the look would be taken for one that died before
      // starting, and run -d would report, and remove, a container that ran (runc start, too,
      // takes a byte left in the fifo by an init that has ended for a start).
      const alive = initAlive(f.initPid, f.initStart);
      let n = 0;
      try {
        n = readSync(f.fd, buf, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return false;
      }
      if (n > 0) break;
      // 0: the init has not opened its end yet (EOF before a writer); EAGAIN: opened, not written.
      if (!alive || performance.now() > deadline) return false;
      // EOF with the fifo gone: another start (tsrun's or runc's) took the byte and removed it; the
      // init, running now, never writes again (runc start says so: an already running container).
      if (n === 0 && !existsSync(f.path)) return false;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay + 1, 5);
    }
  } finally {
    closeExecFifo(f);
  }
  try {
    unlinkSync(f.path);
  } catch {
    // removed already
  }
  return true;
}

/** Closes the fifo's descriptor (once): awaitStartByte does; a run -d that fails before it, too. */
export function closeExecFifo(f: ExecFifo): void {
  if (f.fd < 0) return;
  try {
    closeSync(f.fd);
  } catch {
    // closed already
  }
  f.fd = -1;
}

/**
 * Deletes the runc state of a container whose init has ended (its exit file, or no process left):
 * what `runc delete --force` does for a stopped container, in this process when
 * cgroupsToDeleteInProcess allows (one Go process fewer, ~10 ms, on every rm, stop and exit
 * command), else through runc. Nothing to do when runc has no state for it.
 */
export async function deleteEnded(runc: RuncPaths, id: string): Promise<'none' | 'in-process' | 'runc'> {
  const dir = path.join(runc.root, id);
  let state: unknown;
  try {
    state = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    state = undefined; // being written, or not runc's format: runc decides
  }
  const cgroups = cgroupsToDeleteInProcess(state, isAlive);
  if (cgroups === undefined || !removeEmptyDirs(cgroups)) {
    await runcDeleteForce(runc, id);
    return 'runc';
  }
  // Last, as runc does: while the state exists, a failure above can still be handed to runc.
  removeTree(dir);
  return 'in-process';
}

/** rmdir of each (gone already is fine); false at the first that cannot go (EBUSY: a process
 * left; ENOTEMPTY: a child cgroup), which runc then removes with its retries and recursion. */
function removeEmptyDirs(dirs: readonly string[]): boolean {
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
  }
  return true;
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

/** docker's statuses: 127 the program was not found, 126 the program exists but could not run
 * (the container started and its exec failed, or runc's own look at the program before it creates
 * the container (runc >= 1.1) found it not executable: a directory, no x bit, a wrong format), 125
 * the container never started. Shared by the foreground run and the detached create/start. */
export function runcFailureStatus(runcError: string, started: boolean): number {
  const exec = EXEC_FAILURE.exec(runcError)?.[1];
  if (exec !== undefined) {
    if (/executable file not found|no such file or directory/.test(exec)) return 127;
    if (/^(permission denied|exec format error)/.test(exec)) return 126;
  }
  return started ? 126 : 125;
}

/** What follows runc's line for the container's own program failing at its exec (runc 1.1 and
 * later: `unable to start container process: exec: "<program>": <why>`; runc 1.0 and its release
 * candidates: `container_linux.go:380: starting container process caused: exec: "<program>": <why>`,
 * the Go file and line varying). Only that clause decides 127
 * or 126: a bind-mount source that does not exist is "no such file or directory" too (`error
 * during container init: error mounting "<source>" …`), which docker answers 125 (its rule needs
 * the program's name beside the error). Anchored at the line's start, so no path quoted later in
 * the line can pass for it; the program is Go-quoted (%q), escapes included. */
const EXEC_FAILURE = /^(?:unable to start container process: |[\w.-]+\.go:\d+: starting container process caused: )?exec: "(?:[^"\\]|\\.)*": (.*)$/;

/** runc failed to create or start a detached container: runc's line (its stderr went to conmon
 * or to a pipe, so tsrun prints it) and docker's status, as the foreground run's RuncFailure. */
export class DetachedRuncFailure extends UserError {
  readonly exitCode: number;
  constructor(runcError: string, started: boolean) {
    super(`runc: ${runcError}`);
    this.exitCode = runcFailureStatus(runcError, started);
  }
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
