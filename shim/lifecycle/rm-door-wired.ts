// rm's door for containers whose network needs the engine to be released (a bridge endpoint, a
// joiner's share of another's namespace), bundled as rm-wired.cjs: shim/lifecycle/rm-door.ts with
// the shim's network wiring, still without commander and the CLI's other commands. The entry
// comes here when rm.cjs hands the command line back.
import type { RmArgs } from '../command-word.js';
import { shimNetworkWiring } from '../network-wiring.js';
import { removeWith } from './rm-door.js';
import { exitFast } from '../../runtime/koffi.js';

/** Removes the containers; the exit code. Never throws. */
export async function door(a: RmArgs): Promise<number> {
  const code = (await removeWith(a, shimNetworkWiring)) ?? 0; // with a wiring, never handed back
  // Done: the ids (writeStdout) and the log are written synchronously and nothing listens for
  // 'exit': with koffi loaded by the release, libc's _exit (runtime/koffi.ts exitFast; ~1.1 ms).
  // Not after a failure, whose line goes through process.stderr, which may queue it.
  if (code === 0) exitFast(code);
  return code;
}
