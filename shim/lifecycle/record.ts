// What tsrun keeps about a detached container, beside the claim record (container.json) in the
// container's state directory. Every file here is written aside and renamed into place, so a
// reader (ps, inspect, the exit command, gc) sees the old version or the new one, never half.
//
//   <runDir>/containers/<id>/
//     container.json     the claim (runtime/containers.ts): owner = conmon once it monitors
//     lifecycle.json     this record: options, command, monitor, times, recorded exit code
//     bundle/config.json the spec runc runs (and conmon's ctl/winsz fifos, attach socket)
//     pid                the container's init pid (runc writes it)
//     conmon.pid         conmon's pid
//     exits/<id>         conmon's exit file: the status, written when the container ended
//     ctr.log            conmon's log, k8s-file format
//     runc.log           runc's own log (JSON), for one-line errors
//     cleanup            exclusive marker: one cleanup at a time (exit command, stop, rm, gc)
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { writeFileReplacing } from '../../runtime/files.js';
import path from 'node:path';
import { containerDir } from '../../runtime/containers.js';
import type { RunOptions } from '../run.js';

export interface LifecycleRecord {
  id: string;
  /** Random, new for each creation: the exit command names it, so the exit command of an earlier
   * container with the same id (rm and run again, restart) never touches this one. */
  instance: string;
  created: string;
  /** Normalized options of `run -d`/`create`, so `restart` can create it again. */
  options: RunOptions;
  /** The process as the spec runs it (args after the bundle's and the flags' overrides). */
  command: string[];
  tty: boolean;
  stdin: boolean;
  /** conmon's log limit (-1: none); undefined in records written before the option existed. */
  logMaxBytes?: number | undefined;
  /** What `stop` sends first; undefined: SIGTERM. */
  stopSignal?: string | undefined;
  /** `--rm`: removed once it has ended (shim/lifecycle/cleanup.ts removeIfAutoRemove). */
  autoRemove?: boolean | undefined;
  conmonPid?: number | undefined;
  conmonStart?: string | undefined;
  /** The container's init (host pid namespace). */
  pid?: number | undefined;
  pidStart?: string | undefined;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
  /** Recorded by cleanup from conmon's exit file (undefined when the monitor died without one). */
  exitCode?: number | undefined;
  /** The network, runc state and cgroup are gone; only this directory is left. */
  cleanedUp?: boolean | undefined;
  restartCount?: number | undefined;
}

export interface ContainerPaths {
  dir: string;
  record: string;
  bundle: string;
  pidFile: string;
  conmonPidFile: string;
  exitDir: string;
  exitFile: string;
  persistDir: string;
  log: string;
  runcLog: string;
  cleanupMarker: string;
}

/** The paths of a container's files. Kept once made (they depend on nothing else, and a wait for
 * the end of a container asks for them at every look, every millisecond for rm -f). Frozen:
 * callers share the object. */
export function pathsOf(runDir: string, id: string): ContainerPaths {
  const key = `${runDir}\0${id}`;
  let p = madePaths.get(key);
  if (p === undefined) {
    p = Object.freeze(makePaths(runDir, id));
    madePaths.set(key, p);
  }
  return p;
}
const madePaths = new Map<string, ContainerPaths>();

function makePaths(runDir: string, id: string): ContainerPaths {
  const dir = containerDir(runDir, id);
  return {
    dir,
    record: path.join(dir, 'lifecycle.json'),
    bundle: path.join(dir, 'bundle'),
    pidFile: path.join(dir, 'pid'),
    conmonPidFile: path.join(dir, 'conmon.pid'),
    exitDir: path.join(dir, 'exits'),
    exitFile: path.join(dir, 'exits', id),
    persistDir: path.join(dir, 'persist'),
    log: path.join(dir, 'ctr.log'),
    runcLog: path.join(dir, 'runc.log'),
    cleanupMarker: path.join(dir, 'cleanup'),
  };
}

export function readLifecycle(runDir: string, id: string): LifecycleRecord | undefined {
  try {
    return JSON.parse(readFileSync(pathsOf(runDir, id).record, 'utf8')) as LifecycleRecord;
  } catch {
    return undefined;
  }
}

export function writeLifecycle(runDir: string, rec: LifecycleRecord): void {
  const file = pathsOf(runDir, rec.id).record;
  writeFileReplacing(file, JSON.stringify(rec, null, 2));
}

/** Read, change, write back; undefined when the container is gone (removed meanwhile). */
export function updateLifecycle(runDir: string, id: string, change: (r: LifecycleRecord) => void): LifecycleRecord | undefined {
  const rec = readLifecycle(runDir, id);
  if (!rec) return undefined;
  change(rec);
  try {
    writeLifecycle(runDir, rec);
  } catch {
    return undefined; // the directory went away (rm): nothing to record any more
  }
  return rec;
}

/**
 * Where a removed container's exit code is kept for the waits that were waiting for it
 * (`<run>/exited/<id>.<instance>`): `tsrun wait X` on a `run -d --rm` container (or one `rm -f`
 * removes) woke on conmon's exit file, and when the removal had taken the state directory before
 * it read the file (a stopped or slow wait, a loaded machine) it printed -1. By instance: a
 * container of the same name created since is another one. gc removes entries older than ten
 * minutes (runtime/gc.ts).
 */
export function exitedFile(runDir: string, id: string, instance: string): string {
  return path.join(runDir, 'exited', `${id}.${instance}`);
}

/** Before a container's state directory goes: its exit code (conmon's exit file, else the
 * record's), kept for waits already waiting. Never fails the removal. */
export function keepExitCode(runDir: string, id: string): void {
  const l = readLifecycle(runDir, id);
  const code = readExitFile(pathsOf(runDir, id))?.code ?? l?.exitCode;
  if (l === undefined || code === undefined) return;
  try {
    mkdirSync(path.dirname(exitedFile(runDir, id, l.instance)), { recursive: true, mode: 0o700 });
    writeFileReplacing(exitedFile(runDir, id, l.instance), `${code}\n`);
  } catch {
    // A full run directory: a wait prints -1 as before.
  }
}

/** The exit code keepExitCode kept for that instance, if any. */
export function readKeptExitCode(runDir: string, id: string, instance: string): number | undefined {
  try {
    const code = Number(readFileSync(exitedFile(runDir, id, instance), 'utf8').trim());
    return Number.isInteger(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/** conmon's exit file: the container's status (128+N for a signal), once it has ended. */
export function readExitFile(p: ContainerPaths): { code: number; at: string } | undefined {
  try {
    const text = readFileSync(p.exitFile, 'utf8').trim();
    const code = Number(text);
    if (text === '' || !Number.isInteger(code)) return undefined;
    return { code, at: statSync(p.exitFile).mtime.toISOString() };
  } catch {
    return undefined;
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SIGKILL to the forked monitor whose pid `pidFile` holds, only while that pid is still a conmon
 * started with this pid file (its command line names it): for a rollback. The monitor of a failed
 * `runc create` has already exited when the rollback runs, and its pid may by then be another
 * process's (pid_max is 32768 on many hosts).
 */
export function killMonitor(pidFile: string): void {
  const pid = readPid(pidFile);
  if (pid === undefined) return;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return; // gone
  }
  if (!cmdline.includes(`\0--conmon-pidfile\0${pidFile}\0`)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}
