// The CNI plugin's VERSION door (dist/bundle/cni-version.cjs). libcni runs VERSION of every plugin
// of a conflist whenever it loads one (podman, CRI-O, containerd): a cold process each time, which
// needs the protocol's tables and nothing else. Loading cni.cjs, the door with the engine (its
// 213 KB and a 760 KB code cache), cost each VERSION ~8 ms of its ~37 ms.
import { writeStderr, writeStdout } from '../runtime/stdout.js';
import { newCallState, readCall, reportFailure, versionAnswer } from './call.js';

/** The door as the entry (shim/main.ts) calls it when CNI_COMMAND is VERSION. */
export function door(): never {
  const state = newCallState();
  let code = 0;
  try {
    readCall(process.env, 0, state);
    writeStdout(versionAnswer(state.version));
  } catch (err) {
    reportFailure(err, state, writeStdout, writeStderr);
    code = 1;
  }
  // As the full door does: exit at once, stdio to pipes and files is synchronous on Linux.
  process.exit(code);
}
