// `tsrun run -d`: create the container under conmon, then start it; print its id. Its own module
// (no commander), so that run's own front door (shim/run-door.ts) can run it as the CLI does.
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import type { RunOptions } from '../run.js';
import { detachOptionsOf, type DetachOptions } from './detach-options.js';
import { writeStdout } from '../setup.js';


async function wiring() {
  return (await import('../network-wiring.js')).shimNetworkWiring;
}

/** `tsrun run -d …`: prints the id. */
export async function runDetachedCmd(o: RunOptions, flags: Record<string, unknown>, settings: Settings, log: Logger): Promise<void> {
  writeStdout(`${await runDetached(o, detachOptionsOf(flags), settings, log)}\n`);
}

/** `run -d`: create, then start. A container that cannot start is removed. */
export async function runDetached(o: RunOptions, d: DetachOptions, settings: Settings, log: Logger): Promise<string> {
  const { createAndStart } = await import('./create.js');
  return createAndStart(o, d, settings, log, await wiring());
}
