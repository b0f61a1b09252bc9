// rm's door for containers whose network needs the engine to be released (a bridge endpoint, a
// joiner's share of another's namespace), bundled as rm-wired.cjs: shim/lifecycle/rm-door.ts with
// the shim's network wiring, still without commander and the CLI's other commands. The entry
// comes here when rm.cjs hands the command line back.
import type { RmArgs } from '../command-word.js';
import { shimNetworkWiring } from '../network-wiring.js';
import { removeWith } from './rm-door.js';

/** Removes the containers; the exit code. Never throws. */
export async function door(a: RmArgs): Promise<number> {
  return (await removeWith(a, shimNetworkWiring)) ?? 0; // with a wiring, never handed back
}
