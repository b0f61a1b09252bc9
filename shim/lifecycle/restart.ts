// `tsrun restart`: stop (if it runs), clean up, and create and start the container again from the
// options it was created with, under the same id. The log continues (conmon appends to it).
import { renameSync, rmSync } from 'node:fs';
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
import { currentView, isLive, stopContainer, waitMonitorGone } from './signals.js';

export async function restartContainer(settings: Settings, log: Logger, network: NetworkWiring, id: string, timeoutS: number | undefined): Promise<void> {
  const before = readLifecycle(settings.runDir, id);
  if (!before) throw new UserError(`container ${id} has no record to restart from`);
  const v = await currentView(settings, id);
  if (isLive(v)) await stopContainer(settings, log, network, v, timeoutS);
  if ((await cleanupContainer(id, settings, log, network)) === 'running') throw new UserError(`container ${id} is still running`);

  await waitMonitorGone(settings, id);
  const kept = path.join(containersDir(settings.runDir), `.${id}.log.restart`);
  try {
    renameSync(pathsOf(settings.runDir, id).log, kept);
  } catch {
    // nothing logged
  }
  rmSync(pathsOf(settings.runDir, id).dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  try {
    await createDetached({ ...before.options, name: id }, { tty: before.tty, stdin: before.stdin, logMaxBytes: before.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES, stopSignal: before.stopSignal ?? DEFAULT_STOP_SIGNAL }, settings, log, network, {
      beforeMonitor: (p) => {
        try {
          renameSync(kept, p.log);
        } catch {
          // nothing logged
        }
      },
      restartCount: (before.restartCount ?? 0) + 1,
    });
  } finally {
    rmSync(kept, { force: true });
  }
  await startCreated(id, settings);
}
