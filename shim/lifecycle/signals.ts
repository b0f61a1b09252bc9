// stop, kill, wait and rm: signals through `runc kill`, the end seen through conmon's exit file.
import { UserError } from '../../config/errors.js';
import { NoSuchContainer, noSuchContainers } from './resolve.js';
export { parseSignal } from './signal-names.js';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { watch, type FSWatcher } from 'node:fs';
import { isAlive, unreadableRecord } from '../../runtime/containers.js';
import { killAndWait, waitGone } from '../../runtime/process-exit.js';
import type { NetworkWiring } from '../run.js';
import { runcPaths, runcDeleteForce, runcOutput, runcStateExists, removeRuncState, type RuncPaths } from '../runc.js';
import { removeCgroup } from '../../runtime/cgroups/cleanup.js';
import { cgroupsPathFor } from '../../runtime/cgroups/resources.js';
import { cleanupContainer, removeIfAutoRemove, removeTreeRetrying } from './cleanup.js';
import { isFrozen, resumeAfterSignal } from './pause.js';
import { DEFAULT_STOP_SIGNAL, DEFAULT_STOP_TIMEOUT_S } from './detach-options.js';
import { keepExitCode, pathsOf, readExitFile, readLifecycle } from './record.js';
import { processRuns, runcState, viewOf, type ContainerView } from './status.js';

const LIVE = new Set(['created', 'running', 'paused']);

/** The current view of one container (runc state + exit file + records). */
export async function currentView(settings: Settings, id: string): Promise<ContainerView> {
  const view = viewOf(settings.runDir, id, await runcState(runcPaths(settings), id));
  if (!view) throw unreadableRecord(settings.runDir, id) ?? new NoSuchContainer(`no such container: ${id}`);
  return view;
}

export function isLive(v: ContainerView): boolean {
  return LIVE.has(v.status);
}

export async function runcKill(runc: RuncPaths, id: string, signal: string): Promise<void> {
  const r = await runcOutput(runc, ['kill', id, signal]);
  // "container not running" / "process already finished": it ended on its own in between.
  if (r.code !== 0 && !/not running|already finished|no such process/i.test(r.stderr)) {
    throw new UserError(`runc kill ${id} ${signal}: ${r.stderr.trim().split('\n').pop()}`);
  }
}

/** True once the container has ended: conmon's exit file, or (a foreground container, or a
 * monitor that died) no process left. */
export function hasEnded(settings: Settings, v: ContainerView, instance?: string): boolean {
  if (v.record.detached) {
    // Waiting for one instance (`tsrun wait`): removed, or replaced by a container of the same
    // name, it has ended (its code is kept: record.ts keepExitCode).
    if (instance !== undefined && readLifecycle(settings.runDir, v.id)?.instance !== instance) return true;
    if (readExitFile(pathsOf(settings.runDir, v.id))) return true;
    const l = readLifecycle(settings.runDir, v.id);
    if (l?.cleanedUp) return true;
    return !processRuns(l?.conmonPid, l?.conmonStart) && !processRuns(l?.pid, l?.pidStart);
  }
  return v.pid === undefined ? !isAlive(v.record.ownerPid, v.record.ownerStart) : !processRuns(v.pid);
}

/**
 * True once the container has ended (hasEnded), false after `timeoutMs`. A detached container's
 * end is conmon writing its exit file: inotify (fs.watch on the exit directory) wakes the wait at
 * once instead of at its next look. The looks go on regardless — short first (a killed container
 * ends within milliseconds), then every 20 ms —, for what no event announces (a monitor that died
 * without writing the file, a foreground container, a watch that could not be set up or missed).
 */
export async function waitEnded(settings: Settings, v: ContainerView, timeoutMs: number, maxDelayMs = 20, instance?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  let wake: (() => void) | undefined;
  // Ended already (rm -f has watched the killed init end): no watch to set up and take down.
  if (hasEnded(settings, v, instance)) return true;
  // Set up before the next look, so that an exit file written in between is not missed.
  const watcher = v.record.detached ? watchDir(pathsOf(settings.runDir, v.id).exitDir, () => wake?.()) : undefined;
  try {
    for (;;) {
      if (hasEnded(settings, v, instance)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      delay = Math.min(delay * 1.5, maxDelayMs);
    }
  } finally {
    watcher?.close();
  }
}

/** An inotify watch of `dir` (not keeping the process alive), or undefined when it cannot be set
 * up (no such directory, out of watches): the caller's looks still see the change. */
function watchDir(dir: string, onChange: () => void): FSWatcher | undefined {
  try {
    const w = watch(dir, { persistent: false }, onChange);
    w.on('error', () => undefined);
    return w;
  } catch {
    return undefined;
  }
}

/**
 * The container's stop signal (its record's; SIGTERM), then SIGKILL after `timeoutS` (given on the
 * command line, else its record's --stop-timeout, else 10 s, as docker does); a detached container
 * is cleaned up before returning.
 */
export async function stopContainer(settings: Settings, log: Logger, network: NetworkWiring, v: ContainerView, timeoutS: number | undefined): Promise<void> {
  const runc = runcPaths(settings);
  const timeout = timeoutS ?? v.lifecycle?.options.stopTimeoutS ?? DEFAULT_STOP_TIMEOUT_S;
  const signal = v.lifecycle?.stopSignal ?? DEFAULT_STOP_SIGNAL;
  // A created container's process is runc's init waiting to exec: only SIGKILL ends it.
  if (v.status !== 'created' && timeout > 0) {
    await runcKill(runc, v.id, signal);
    await resumeAfterSignal(runc, v);
    if (await waitEnded(settings, v, timeout * 1000)) return finish(settings, log, network, v);
  }
  log.info({ containerId: v.id, timeoutS: timeout, signal }, 'did not stop within the timeout: SIGKILL');
  await runcKill(runc, v.id, 'SIGKILL');
  await resumeAfterSignal(runc, v);
  if (!(await waitEnded(settings, v, 10_000))) throw new UserError(`container ${v.id} did not end after SIGKILL`);
  return finish(settings, log, network, v);
}

async function finish(settings: Settings, log: Logger, network: NetworkWiring, v: ContainerView): Promise<void> {
  if (!v.record.detached) return;
  await cleanupContainer(v.id, settings, log, network, undefined, { ended: true });
  // --rm: gone when stop returns (its exit command may be removing it too: either does it whole).
  await removeIfAutoRemove(settings, log, v.id, v.lifecycle?.instance);
}

/**
 * `rm [-f] names…`: the views of the containers to remove, every name resolved and checked before
 * anything is done (a running container without -f is refused). Names that match no container are
 * pushed to `missing` (removeAll's caller reports them after removing the others, as docker rm
 * does, exit 1: a container that went away meanwhile must not keep the rest in place). With -f and
 * `orphans`, containers nothing owns any more go there (removeOrphan; resolve.ts detachedIds).
 */
export async function removalViews(settings: Settings, names: string[], force: boolean, missing: string[] = [], orphans?: string[]): Promise<ContainerView[]> {
  const { detachedIds } = await import('./resolve.js');
  const ids = detachedIds(settings.runDir, names, missing, force ? orphans : undefined);
  // -f removes whatever the state: no need to ask runc for it first.
  const views = await Promise.all(ids.map(async (id) => (force ? viewOf(settings.runDir, id, undefined) : undefined) ?? currentView(settings, id)));
  for (const v of views) {
    if (!force && isLive(v) && v.status !== 'created') throw new UserError(`container ${v.id} is ${v.status}: stop it first, or use tsrun rm -f`);
  }
  return views;
}

/** The error of rm's names that matched no container, once the others are removed: one line
 * naming each, exit 1 (resolve.ts noSuchContainers). */
export { noSuchContainers as missingError };

/** Removes them side by side; their ids, for the output. */
export async function removeAll(settings: Settings, log: Logger, network: NetworkWiring, views: ContainerView[]): Promise<string[]> {
  await Promise.all(views.map((v) => removeContainer(settings, log, network, v)));
  return views.map((v) => v.id);
}

/** Removes a detached container: ended (or, with force, killed), cleaned up, its state deleted. */
export async function removeContainer(settings: Settings, log: Logger, network: NetworkWiring, v: ContainerView): Promise<void> {
  const runc = runcPaths(settings);
  // The monitor's remaining work is for a container that goes away (its log, the exit file, an
  // exit command that would find nothing left to do): end it first, so no exit command runs.
  killMonitor(settings, v.id);
  if (runcStateExists(runc, v.id)) {
    // A frozen init would never die of SIGKILL (docker, too, thaws a paused container before it
    // kills it).
    if (isFrozen(v.id)) await resumeAfterSignal(runc, { id: v.id, status: 'paused' });
    // SIGKILL to init, then a wait for it to end: what `runc delete --force` does, without the
    // 100 ms runc sleeps before it first looks. Cleanup's `runc delete --force` then finds the
    // container stopped and only destroys it (processes left in the cgroup of a container without
    // a pid namespace of its own are killed there). Not seen to end: runc's own kill and wait.
    // Only a process whose start time was recorded: a bare pid may have been reused since.
    const l = readLifecycle(settings.runDir, v.id);
    // A look every millisecond (a few microseconds each): a SIGKILLed init and conmon end within
    // milliseconds, and a growing pause would overshoot that by up to its length on a loaded machine.
    const ended = l?.pid !== undefined && l.pidStart !== undefined && (await killAndWait(l.pid, l.pidStart, 2_000, 1));
    if (!ended) await runcDeleteForce(runc, v.id);
    if (!(await waitEnded(settings, v, 10_000, 1))) throw new UserError(`container ${v.id} did not end after SIGKILL`);
  }
  const r = await cleanupContainer(v.id, settings, log, network, undefined, { ended: true });
  if (r === 'running') throw new UserError(`container ${v.id} is still running`);
  await waitMonitorGone(settings, v.id, 10_000, 1);
  if (v.record.detached) keepExitCode(settings.runDir, v.id); // for a `tsrun wait` that has not read it yet
  // A late exit command may still create its marker while the directory goes: retried. (Not
  // fs.rmSync: Node 20's is a JavaScript rimraf, ~3-5 ms of CPU for this small tree.)
  await removeTreeRetrying(pathsOf(settings.runDir, v.id).dir);
}

/**
 * rm -f of a container nothing owns any more: its record unreadable (truncated, corrupt: what it
 * is and who runs it are unknown), or its tsrun gone (a foreground run or a run -d setup killed).
 * Everything that can be of it goes, as gc removes a container whose owner is gone: its monitor
 * (lifecycle.json is a file of its own), runc's container, the network (endpoint records in the
 * Store, by container id, and what an attach held unrecorded), the pin, the cgroup, the state
 * directory. Before, only gc removed them.
 */
export async function removeOrphan(settings: Settings, log: Logger, network: NetworkWiring, id: string): Promise<void> {
  const runc = runcPaths(settings);
  killMonitor(settings, id);
  await removeRuncState(runc, id);
  await network.release(id, undefined, settings, log);
  removeCgroup(cgroupsPathFor(id), undefined, { keepParents: true });
  await waitMonitorGone(settings, id, 10_000, 1);
  await removeTreeRetrying(pathsOf(settings.runDir, id).dir);
}

function killMonitor(settings: Settings, id: string): void {
  const l = readLifecycle(settings.runDir, id);
  if (!processRuns(l?.conmonPid, l?.conmonStart)) return;
  try {
    process.kill(l!.conmonPid!, 'SIGKILL');
  } catch {
    // gone in between
  }
}

/** conmon writes its last files (persist/exit, the end of the log) after the exit file. */
export async function waitMonitorGone(settings: Settings, id: string, timeoutMs = 10_000, maxDelayMs?: number): Promise<void> {
  const l = readLifecycle(settings.runDir, id);
  if (l?.conmonPid !== undefined) await waitGone(l.conmonPid, l.conmonStart ?? '', timeoutMs, maxDelayMs);
}
