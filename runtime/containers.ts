// A container's tsrun state directory, `<runDir>/containers/<id>/`, claimed exclusively: the
// mkdir is the lock that refuses a second live container with the same id. It holds the owner
// (the tsrun process supervising it), the spec written for runc, and what cleanup needs.
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { mkdirPrivate, PRIVATE_DIR_MODE, removeTree, writeFileExclusive, writeFileReplacing } from './files.js';
import path from 'node:path';
import { ConflictError, SystemError, UserError } from '../config/errors.js';

export interface ContainerRecord {
  id: string;
  /** The tsrun process that supervises the container (the shim), or the hook's runtime pid. */
  ownerPid: number;
  /** /proc/<pid>/stat start time, so a recycled pid is not mistaken for the owner. */
  ownerStart: string;
  created: string;
  bundle: string;
  /** The pinned network namespace tsrun created for the container, if any. */
  netnsPin?: string | undefined;
  cgroupsPath?: string | undefined;
  /** Detached containers (`run -d`, `create`; shim/lifecycle): 'setup' while the tsrun that
   * creates it works (ownerPid is that tsrun), 'monitored' once conmon watches it (ownerPid is
   * conmon). A monitored container's state stays, also after it exited, until `tsrun rm`. */
  detached?: 'setup' | 'monitored' | undefined;
}

export function containersDir(runDir: string): string {
  return path.join(runDir, 'containers');
}

export function containerDir(runDir: string, id: string): string {
  return path.join(containersDir(runDir), id);
}

/**
 * Claims `id`. A directory left by an owner that is gone (tsrun was SIGKILLed) is reported as
 * stale through `onStale`, which must clean it up; then the claim is retried once.
 */
export async function claimContainer(
  runDir: string,
  rec: Omit<ContainerRecord, 'ownerStart' | 'created'>,
  onStale: (old: ContainerRecord | undefined) => Promise<void>,
): Promise<ContainerRecord> {
  const dir = containerDir(runDir, rec.id);
  mkdirPrivate(runDir); // the state root: pins, records, bundles with secrets
  mkdirPrivate(containersDir(runDir));
  const full: ContainerRecord = { ...rec, ownerStart: processStartTime(rec.ownerPid) ?? '', created: isoNow() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new SystemError(`create state directory ${dir}`, err);
      const old = readRecord(runDir, rec.id);
      if (old && isAlive(old.ownerPid, old.ownerStart)) throw new ConflictError(`container id ${rec.id} is already in use`);
      if (old?.detached === 'monitored') throw new ConflictError(`container id ${rec.id} is already in use (remove it first: tsrun rm ${rec.id})`);
      if (!old && attempt === 0 && recentlyCreated(dir)) throw new ConflictError(`container id ${rec.id} is already in use`);
      await onStale(old);
      removeTree(dir);
      continue;
    }
    try {
      // The directory is this process's alone from the mkdir on (0700, made just now): the record
      // is written under a fixed temporary name, created exclusively without following a link
      // (writeFileExclusive), and renamed into place whole, as readers rely on (unreadableRecord).
      // A random temporary name guards a directory others can write; here it only cost a
      // /dev/urandom open, read and close.
      const file = recordFile(runDir, rec.id);
      writeFileExclusive(`${file}.new`, JSON.stringify(full, null, 2));
      renameSync(`${file}.new`, file);
      return full;
    } catch (err) {
      // A full or read-only run directory: the claim is ours, and an empty directory left here
      // would refuse this id for 2 s and stay until gc.
      removeTree(dir);
      throw new SystemError(`create state directory ${dir}`, err);
    }
  }
  throw new ConflictError(`container id ${rec.id} is already in use`);
}

/**
 * Now as Date#toISOString writes it, from the UTC fields: the first toISOString of a process costs
 * ~0.2 ms (measured, Node 20), a few percent of what a cold `tsrun run` spends on its own work;
 * this costs a quarter of that.
 */
export function isoNow(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}Z`;
}

function recordFile(runDir: string, id: string): string {
  return path.join(containerDir(runDir, id), 'container.json');
}

export function writeRecord(runDir: string, rec: ContainerRecord): void {
  writeFileReplacing(recordFile(runDir, rec.id), JSON.stringify(rec, null, 2));
}

export function readRecord(runDir: string, id: string): ContainerRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordFile(runDir, id), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/**
 * The one line for a container whose record is there but does not parse (truncated by a disk
 * error, edited by hand): commands refuse it by name instead of calling it missing ("no such
 * container") or failing with an internal error; `ps -a` shows it as unknown, and `rm -f` (or gc,
 * as a container whose owner is gone) removes it.
 * Undefined when the record reads or is absent (absent: a claim in progress, the record is renamed
 * into place whole).
 */
export function unreadableRecord(runDir: string, id: string): UserError | undefined {
  const file = recordFile(runDir, id);
  // One read decides: a look at the file after a failed read called a record renamed into place in
  // between (a claim finishing) unreadable, and rm -f took that container for a corrupt one.
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // absent: a claim in progress
    text = ''; // there, but cannot be read
  }
  try {
    if (JSON.parse(text) != null) return undefined;
  } catch {
    // does not parse: unreadable
  }
  return new UserError(`container ${id}: its record ${file} is unreadable (truncated or corrupt): tsrun rm -f ${id} removes it`);
}

/**
 * Removes a container's state directory. `expected`: the entries its run leaves there, removed by
 * name in order, the record last, without listing anything: a file (`pid`, or `bundle/config.json`
 * in a subdirectory, which must be a real directory, never a link), then a subdirectory once empty
 * (`bundle/`). Anything else there, or an entry missing, and the whole tree is removed as without
 * it. (A cold process's first readdirSync with file types costs ~0.25 ms: teardown is on the path.)
 */
export function removeContainerDir(runDir: string, id: string, expected?: readonly string[]): void {
  const dir = containerDir(runDir, id);
  if (expected !== undefined && removeByName(dir, [...expected, 'container.json'])) return;
  removeTree(dir);
}

/**
 * Compiles, while a foreground container runs, the fs calls its teardown makes that nothing before
 * it made: lstat, unlink and rmdir (removeContainerDir by name, the namespace users' entry and
 * directory). A cold process's first call of each compiles Node's JavaScript for it (~0.1-0.2 ms
 * together), which otherwise fell between runc's exit and tsrun's. Harmless: a look at the state
 * directory and removals of a name that is not there (ENOENT). Never throws.
 */
export function warmRemoval(runDir: string, id: string): void {
  const dir = containerDir(runDir, id);
  const absent = path.join(dir, '.absent');
  try {
    lstatSync(dir);
  } catch {
    // gone: nothing to warm for
  }
  for (const remove of [unlinkSync, rmdirSync]) {
    try {
      remove(absent);
    } catch {
      // ENOENT, as meant
    }
  }
}

function removeByName(dir: string, entries: readonly string[]): boolean {
  const realDirs = new Set<string>();
  try {
    for (const e of entries) {
      if (e.endsWith('/')) {
        rmdirSync(path.join(dir, e.slice(0, -1))); // ENOTEMPTY: more is there than named
        continue;
      }
      const slash = e.indexOf('/');
      if (slash > 0) {
        // Never unlink through a link planted in place of the subdirectory.
        const sub = e.slice(0, slash);
        if (!realDirs.has(sub)) {
          if (lstatSync(path.join(dir, sub), { throwIfNoEntry: false })?.isDirectory() !== true) return false;
          realDirs.add(sub);
        }
      }
      unlinkSync(path.join(dir, e));
    }
    rmdirSync(dir);
    return true;
  } catch {
    return false; // something else is there, or was not: removeTree takes what is left
  }
}

/**
 * The process that started at `startTime` still runs. A zombie does not count: it has already
 * released its namespaces and will do no more work, and until its parent reaps it its /proc entry
 * (start time included) looks exactly like the live process's.
 */
export function isAlive(pid: number, startTime: string): boolean {
  const stat = statFields(pid);
  if (stat === undefined || stat[0] === 'Z' || stat[0] === 'X') return false;
  return startTime === '' || stat[19] === startTime;
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
export function processStartTime(pid: number): string | undefined {
  // This process's own never changes, and a run asks for it several times.
  if (pid === process.pid) return (ownStart ??= statFields(pid)?.[19]);
  return statFields(pid)?.[19];
}
let ownStart: string | undefined;

/** /proc/<pid>/stat from field 3 (state) on, or undefined when there is no such process. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A directory without a record may be a claim in progress by another process (between its mkdir
 * and the record's rename): claimContainer leaves one made in the last 2 s alone. */
function recentlyCreated(dir: string): boolean {
  try {
    return Date.now() - statSync(dir).mtimeMs < 2000;
  } catch {
    return false;
  }
}

/** A claim in progress: the directory exists, made in the last 2 s, and no record is in it yet
 * (claimContainer renames the record in whole). gc leaves it alone: removed, the claimer's record
 * write failed. A record that is there but unreadable is not one (torn by a crash: gc's). */
export function claimInProgress(runDir: string, id: string): boolean {
  return !existsSync(recordFile(runDir, id)) && recentlyCreated(containerDir(runDir, id));
}

