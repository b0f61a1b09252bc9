// A `tsrun restart`'s set-aside state directory (shim/lifecycle/restart.ts): the container's old
// directory is renamed to `.<id>.restart` while the new container is set up under the id, and put
// back when that fails. A restart killed in between (SIGKILL, the machine's OOM killer) left it
// there until the next restart of that id, and `ps -a` no longer listed the container. gc settles
// it, by the holder's identity (pid, start time, boot) written into the directory before it is set
// aside, never by the name alone: a holder still running is a restart at work and is left alone.
// Then, with the holder gone: if the id is free, the old directory is put back (the container is
// exited, as before the restart; the id is claimed with mkdir first, as any claim, so a claim in
// progress is never overwritten); if the id holds a container again (the new one, or one run
// since), the old directory is only a stale copy and is removed (the log lives on through the
// hard link the new container made of it).
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { bootId } from './boot.js';
import { containerDir, containersDir, isAlive, processStartTime } from './containers.js';
import { PRIVATE_DIR_MODE, writeFileReplacing } from './files.js';
import { checkContainerId } from '../config/ids.js';

/** The holder's identity, inside the directory set aside. */
export const RESTART_HOLDER_FILE = 'restart-holder.json';

interface Holder {
  pid: number;
  start: string;
  boot: string;
}

const ASIDE = /^\.(.+)\.restart$/;

export function restartAsidePath(runDir: string, id: string): string {
  return path.join(containersDir(runDir), `.${id}.restart`);
}

/** Written into the container's directory right before restart sets it aside. */
export function writeRestartHolder(dir: string): void {
  const h: Holder = { pid: process.pid, start: processStartTime(process.pid) ?? '', boot: bootId() };
  writeFileReplacing(path.join(dir, RESTART_HOLDER_FILE), JSON.stringify(h));
}

/** Removes the holder file from a directory put back (by restart itself or by gc). */
export function clearRestartHolder(dir: string): void {
  rmSync(path.join(dir, RESTART_HOLDER_FILE), { force: true });
}

function holderRuns(dir: string): boolean {
  let h: Partial<Holder>;
  try {
    h = JSON.parse(readFileSync(path.join(dir, RESTART_HOLDER_FILE), 'utf8')) as Partial<Holder>;
  } catch {
    // No holder (a restart of an older tsrun, or a torn file): nobody can be at work on it that
    // gc could ask about; an older restart holds the id's claim or has died.
    return false;
  }
  if (h.boot !== bootId() || typeof h.pid !== 'number' || typeof h.start !== 'string' || h.start === '') return false;
  return isAlive(h.pid, h.start);
}

export interface AsideOutcome {
  restored: string[];
  removed: string[];
}

/** gc's step: every set-aside directory whose restart is gone, put back or removed. */
export function settleRestartAsides(runDir: string): AsideOutcome {
  const out: AsideOutcome = { restored: [], removed: [] };
  let names: string[];
  try {
    names = readdirSync(containersDir(runDir));
  } catch {
    return out;
  }
  for (const name of names) {
    const id = ASIDE.exec(name)?.[1];
    if (id === undefined) continue;
    try {
      checkContainerId(id);
    } catch {
      continue; // not one of restart's names
    }
    const aside = path.join(containersDir(runDir), name);
    try {
      if (!lstatSync(aside).isDirectory()) continue;
    } catch {
      continue;
    }
    if (holderRuns(aside)) continue;
    const dir = containerDir(runDir, id);
    let claimed = false;
    try {
      mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
      claimed = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (claimed) {
      // Over the empty directory this process just made: rename(2) replaces an empty directory.
      renameSync(aside, dir);
      clearRestartHolder(dir);
      out.restored.push(id);
    } else {
      rmSync(aside, { recursive: true, force: true });
      out.removed.push(id);
    }
  }
  return out;
}
