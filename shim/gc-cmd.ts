// `tsrun gc`: opens the engine and runs the collector in the current (host) namespace.
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import { openEngine } from '../runtime/context.js';
import { collectGarbage as collect, type GcReport } from '../runtime/gc.js';
import { createFirewall } from '../runtime/firewall/backend.js';
import { removeRuncState } from './runc.js';
import { runcPaths } from './run.js';
import { killMonitor, pathsOf } from './lifecycle/record.js';

export async function collectGarbage(settings: Settings, log: Logger): Promise<GcReport> {
  const handle = await openEngine(settings, log);
  try {
    await handle.engine.repairFirewall();
    const runc = runcPaths(settings);
    return await collect(settings, {
      engine: handle.engine,
      store: handle.store,
      firewall: createFirewall('nft', { nftBinary: settings.nft, backend: settings.nftBackend ?? 'auto', log }),
      deleteRuntimeContainer: async (id) => {
        // A run -d that died while runc create ran left its conmon monitoring the container: it
        // goes first, or it would write its exit file once the container ends, into a new state
        // directory of this id if one exists by then (cleanupStale in shim/run.ts does the same).
        killMonitor(pathsOf(settings.runDir, id).conmonPidFile);
        await removeRuncState(runc, id);
      },
      detachedContainer: async (id) => (await import('./lifecycle/gc.js')).detachedForGc(id, settings, log),
      log,
    });
  } finally {
    await handle.close();
  }
}
