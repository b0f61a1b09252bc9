// `tsrun restart`: stop (if it runs), clean up, and create and start the container again from the
// options it was created with, under the same id. The log continues (conmon appends to it).
//
// A restart that fails (the bundle is gone, a published port is taken, the program cannot start)
// leaves the container as it was after the stop, as docker does: listed by `ps -a`, exited, its
// log kept, removable with `rm`. The old state directory is moved aside while the new container
// is set up, and moved back when that fails (after the failed setup has rolled back what it made);
// it was removed before, and a failed restart lost the container's record and its log.
import { linkSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { UserError } from '../../config/errors.js';
import { containersDir } from '../../runtime/containers.js';
import type { NetworkWiring } from '../run.js';
import { cleanupContainer } from './cleanup.js';
import { createDetached, startCreated } from './create.js';
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_STOP_SIGNAL } from './detach-options.js';
import { pathsOf, readLifecycle } from './record.js';
import { currentView, isLive, removeContainer, stopContainer, waitMonitorGone } from './signals.js';

export async function restartContainer(settings: Settings, log: Logger, network: NetworkWiring, id: string, timeoutS: number | undefined): Promise<void> {
  const before = readLifecycle(settings.runDir, id);
  if (!before) throw new UserError(`container ${id} has no record to restart from`);
  const v = await currentView(settings, id);
  if (isLive(v)) await stopContainer(settings, log, network, v, timeoutS);
  if ((await cleanupContainer(id, settings, log, network)) === 'running') throw new UserError(`container ${id} is still running`);

  await waitMonitorGone(settings, id);
  const p = pathsOf(settings.runDir, id);
  // A dot name: ps, gc and the namespace users' scan skip it, and the id's claim is free.
  const aside = path.join(containersDir(settings.runDir), `.${id}.restart`);
  rmSync(aside, { recursive: true, force: true }); // a restart killed half-way
  renameSync(p.dir, aside);
  let created = false;
  try {
    await createDetached({ ...before.options, name: id }, { tty: before.tty, stdin: before.stdin, logMaxBytes: before.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES, stopSignal: before.stopSignal ?? DEFAULT_STOP_SIGNAL }, settings, log, network, {
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
    } catch (e) {
      // Its id was claimed again meanwhile (a run -d --name of the same id): the old record yields.
      log.warn({ containerId: id, err: (e as Error).message }, 'restart: the old record could not be put back');
      rmSync(aside, { recursive: true, force: true });
    }
    throw err;
  }
  rmSync(aside, { recursive: true, force: true });
}
