// `tsrun cleanup ID`: what happens when a detached container has ended. conmon runs it as its exit
// command (so it happens with no tsrun running); stop, rm and gc run it too. One at a time, by an
// exclusive marker; idempotent: the network is released, runc's state and the cgroup removed, the
// exit code recorded. The state directory stays for `ps -a`, `logs` and `inspect` until `rm`.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { removeTree } from '../../runtime/files.js';
import { waitGone } from '../../runtime/process-exit.js';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { processStartTime, readRecord } from '../../runtime/containers.js';
import { removeCgroup } from '../../runtime/cgroups/cleanup.js';
import { cgroupsPathFor } from '../../runtime/cgroups/resources.js';
import { hasCode } from '../../runtime/netns/errno.js';
import type { NetworkWiring } from '../run.js';
import { runcPaths, deleteEnded } from '../runc.js';
import { keepExitCode, pathsOf, readExitFile, readLifecycle, updateLifecycle } from './record.js';
import { processRuns, runcState } from './status.js';

export type CleanupResult = 'done' | 'gone' | 'running';

/**
 * `instance`: only that creation of `id` (the exit command's; others pass none). `ended`: the
 * caller has seen the container end (its exit file, or no process left), so runc need not be asked.
 */
export async function cleanupContainer(id: string, settings: Settings, log: Logger, network: NetworkWiring, instance?: string, o: { ended?: boolean; waitMs?: number } = {}): Promise<CleanupResult> {
  const rec = readRecord(settings.runDir, id);
  if (!rec?.detached) return 'gone';
  const before = readLifecycle(settings.runDir, id);
  if (instance !== undefined && before?.instance !== instance) return 'gone'; // a later container with this id
  if (before?.cleanedUp) return 'done';
  const runc = runcPaths(settings);
  if (!o.ended && !readExitFile(pathsOf(settings.runDir, id))) {
    const state = await runcState(runc, id);
    if (state && state.status !== 'stopped') return 'running';
  }

  const p = pathsOf(settings.runDir, id);
  if (!(await takeMarker(p.cleanupMarker, o.waitMs ?? 30_000, () => readLifecycle(settings.runDir, id)?.cleanedUp === true))) {
    return readRecord(settings.runDir, id) ? 'done' : 'gone';
  }
  if (readLifecycle(settings.runDir, id)?.instance !== before?.instance) {
    rmSync(p.cleanupMarker, { force: true });
    return 'gone'; // removed and created again while this one waited
  }
  const clog = log.child({ containerId: id });
  try {
    const exit = readExitFile(p);
    const failures: string[] = [];
    const attempt = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    };
    // The container has ended: runc's delete and the network's release need nothing of each
    // other, so they run side by side (each is mostly waiting: a runc process, netlink, nft).
    const runcDelete: { how?: Awaited<ReturnType<typeof deleteEnded>> } = {};
    await Promise.all([
      attempt('delete runc state', async () => (runcDelete.how = await deleteEnded(runc, id))),
      attempt('release the network', () => network.release(id, rec, settings, log)),
    ]);
    // What runc's delete left, or a runc killed before it got there. Not after the in-process
    // delete, which removed every directory runc recorded (~0.6 ms of looks in 10 hierarchies).
    // Its own directory only: tsrun's parent stays for the next container (runtime/cgroups/cleanup.ts).
    if (runcDelete.how !== 'in-process') await attempt('remove the cgroup', () => removeCgroup(cgroupsPathFor(id), undefined, { keepParents: true }));
    updateLifecycle(settings.runDir, id, (r) => {
      r.cleanedUp = true;
      r.exitCode = exit?.code ?? r.exitCode;
      r.finishedAt = exit?.at ?? r.finishedAt ?? new Date().toISOString();
    });
    if (failures.length > 0) clog.warn({ failures }, 'cleanup incomplete');
    else clog.info({ exitCode: exit?.code }, 'detached container cleaned up');
  } finally {
    rmSync(p.cleanupMarker, { force: true });
  }
  return 'done';
}

/**
 * `--rm`: once cleanup is done, the container's state directory goes too (its record, log and
 * claim), as `rm` would remove it, after its monitor has exited (conmon writes its last files after
 * the exit file and runs its exit command as it leaves). Only that creation of `id` (`instance`,
 * looked at again just before the removal) and only when cleanup is recorded. True when removed.
 * Called by the exit command, `stop` and `gc`; `restart` clears the flag before it stops the
 * container, and `rm` removes it anyway.
 */
export async function removeIfAutoRemove(settings: Settings, log: Logger, id: string, instance?: string): Promise<boolean> {
  const asked = () => {
    const l = readLifecycle(settings.runDir, id);
    return l !== undefined && l.autoRemove === true && l.cleanedUp === true && (instance === undefined || l.instance === instance) ? l : undefined;
  };
  const l = asked();
  if (l === undefined) return false;
  // Not when conmon is this process's parent: the exit command, which conmon runs last and waits
  // for (seen: conmon 2.1 still the parent 0.5 s later), after its exit file and log are written.
  const parent = l.conmonPid === process.ppid;
  if (l.conmonPid !== undefined && !parent) await waitGone(l.conmonPid, l.conmonStart ?? '', 10_000);
  if (asked()?.instance !== l.instance) return false;
  keepExitCode(settings.runDir, id); // for a `tsrun wait` that has not read it yet
  await removeTreeRetrying(pathsOf(settings.runDir, id).dir);
  log.child({ containerId: id }).info({ byExitCommand: parent }, 'detached container removed (--rm)');
  return true;
}

/** removeTree, again up to five times 20 ms apart while something is created in the tree as it
 * goes (ENOTEMPTY, EBUSY): a late exit command may still create its marker. */
export async function removeTreeRetrying(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      removeTree(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= 5 || (code !== 'ENOTEMPTY' && code !== 'EBUSY')) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Creates `marker` exclusively. When another live process holds it, waits until `done()` or until
 * that process is gone (then takes over). False when there is nothing left to do.
 */
async function takeMarker(marker: string, waitMs: number, done: () => boolean): Promise<boolean> {
  const me = JSON.stringify({ pid: process.pid, start: processStartTime(process.pid) ?? '' });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(marker, me, { flag: 'wx' });
      return true;
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return false; // the container was removed meanwhile
      if (!hasCode(err, 'EEXIST')) throw err;
    }
    if (done()) return false;
    let holder: { pid: number; start: string } | undefined;
    try {
      holder = JSON.parse(readFileSync(marker, 'utf8')) as { pid: number; start: string };
    } catch {
      holder = undefined; // being written, or just removed: look again
    }
    if (holder && !processRuns(holder.pid, holder.start)) {
      rmSync(marker, { force: true }); // its holder died mid-way: take over
      continue;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}
