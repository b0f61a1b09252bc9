// `tsrun restart`: stop (if it runs), clean up, and create and start the container again from the
// options it was created with, under the same id. The log continues (conmon appends to it).
//
// A restart that fails (the bundle is gone, a published port is taken, the program cannot start)
// leaves the container as it was after the stop, as docker does: listed by `ps -a`, exited, its
// log kept, removable with `rm`. The old state directory is moved aside while the new container
// is set up, and moved back when that fails (after the failed setup has rolled back what it made);
// it was removed before, and a failed restart lost the container's record and its log.
import { existsSync, linkSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { UserError } from '../../config/errors.js';
import { clearRestartHolder, restartAsidePath, writeRestartHolder } from '../../runtime/restart-aside.js';
import { writeFileReplacing } from '../../runtime/files.js';
import type { NetworkWiring } from '../run.js';
import { cleanupContainer } from './cleanup.js';
import { createDetached, startCreated } from './create.js';
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_STOP_SIGNAL } from './detach-options.js';
import { pathsOf, readExitFile, readLifecycle, updateLifecycle, type ContainerPaths } from './record.js';
import { currentView, isLive, removeContainer, stopContainer, waitMonitorGone } from './signals.js';

export async function restartContainer(settings: Settings, log: Logger, network: NetworkWiring, id: string, timeoutS: number | undefined): Promise<void> {
  const before = readLifecycle(settings.runDir, id);
  if (!before) throw new UserError(`container ${id} has no record to restart from`);
  const v = await currentView(settings, id);
  // --rm: not removed by this stop (docker's restart too keeps it); the new creation has it again.
  if (before.autoRemove === true) updateLifecycle(settings.runDir, id, (r) => void delete r.autoRemove);
  if (isLive(v)) await stopContainer(settings, log, network, v, timeoutS);
  if ((await cleanupContainer(id, settings, log, network)) === 'running') throw new UserError(`container ${id} is still running`);

  await waitMonitorGone(settings, id);
  const p = pathsOf(settings.runDir, id);
  // A dot name: ps and the namespace users' scan skip it, and the id's claim is free. It carries
  // this process's identity, so gc leaves it alone while this restart runs and settles it once
  // the restart is gone without finishing (runtime/restart-aside.ts).
  const aside = restartAsidePath(settings.runDir, id);
  rmSync(aside, { recursive: true, force: true }); // a restart killed half-way
  writeRestartHolder(p.dir);
  renameSync(p.dir, aside);
  let created = false;
  try {
    await createDetached({ ...before.options, name: id }, { tty: before.tty, stdin: before.stdin, logMaxBytes: before.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES, stopSignal: before.stopSignal ?? DEFAULT_STOP_SIGNAL, autoRemove: before.autoRemove }, settings, log, network, {
      // A second name for the old log, which conmon then appends to; the old one stays whole in
      // the directory set aside, should this creation fail.
      beforeMonitor: (np) => {
        try {
          linkSync(path.join(aside, path.basename(p.log)), np.log);
        } catch {
          // nothing logged
        }
      },
      restartCount: (before.restartCount ?? 0) + 1,
    });
    created = true;
    await startCreated(id, settings, { knownCreated: true });
  } catch (err) {
    // The new container goes whole (createDetached has rolled its own setup back when it threw),
    // then the old directory comes back: the container is exited, as before the restart.
    if (created) await removeContainer(settings, log, network, await currentView(settings, id)).catch((e: unknown) => log.warn({ containerId: id, err: (e as Error).message }, 'restart: removing the failed container'));
    try {
      renameSync(aside, p.dir);
      clearRestartHolder(p.dir);
      recordFailedStart(p, settings.runDir, id, err);
    } catch (e) {
      // Its id was claimed again meanwhile (a run -d --name of the same id): the old record yields.
      log.warn({ containerId: id, err: (e as Error).message }, 'restart: the old record could not be put back');
      rmSync(aside, { recursive: true, force: true });
    }
    throw err;
  }
  rmSync(aside, { recursive: true, force: true });
}

/**
 * The container's exit code after a restart that failed, as docker records a failed start
 * (daemon/start.go): 127 or 126 when the program was not found or could not be invoked (the
 * attempt's own status); otherwise the code it had, unless that was 0 (then 128, so a container
 * that failed to start never looks like one that succeeded). Written where ps, inspect and wait
 * read it first: conmon's exit file, then the record.
 */
function recordFailedStart(p: ContainerPaths, runDir: string, id: string, err: unknown): void {
  const attempt = (err as { exitCode?: unknown }).exitCode;
  const rec = readLifecycle(runDir, id);
  const before = readExitFile(p)?.code ?? rec?.exitCode;
  const code = attempt === 127 || attempt === 126 ? attempt : before === undefined || before === 0 ? 128 : before;
  if (code === before) return;
  if (existsSync(p.exitFile)) writeFileReplacing(p.exitFile, String(code));
  updateLifecycle(runDir, id, (r) => {
    r.exitCode = code;
  });
}
