// What `tsrun gc` must know about detached containers: one is live while conmon or the
// container's process runs (gc leaves it alone); one whose monitor died without running its exit
// command is cleaned up here, and its record kept (ps -a shows it exited) until `tsrun rm`.
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { shimNetworkWiring } from '../network-wiring.js';
import { cleanupContainer, removeIfAutoRemove } from './cleanup.js';
import { readLifecycle } from './record.js';
import { processRuns } from './status.js';

export async function detachedForGc(id: string, settings: Settings, log: Logger): Promise<'live' | 'kept'> {
  const l = readLifecycle(settings.runDir, id);
  if (processRuns(l?.conmonPid, l?.conmonStart) || processRuns(l?.pid, l?.pidStart)) return 'live';
  const r = await cleanupContainer(id, settings, log, shimNetworkWiring);
  if (r === 'running') return 'live';
  await removeIfAutoRemove(settings, log, id); // --rm: as its exit command would have
  return 'kept';
}
