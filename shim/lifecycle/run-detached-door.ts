// The front door of `tsrun run -d` with --net none or host, bundled as run-detached.cjs: run -d's
// path (claim, conmon held on its start pipe, spec, records, the exec-fifo start) without the
// engine, netlink, the firewall or the store, which these two never run. run.cjs carries all of
// them, and a cold `run -d --net none` spent its start-up reading and deserializing them (run.cjs
// and its code cache are ~490 KB, this door's ~1/3 of that; docs/detached.md has the measurement).
// As the plain run door (shim/run-door-plain.ts) does, it hands back to the entry, which then runs
// the whole command line through run.cjs's door, whatever needs more: a --name whose state
// directory exists (taken, or left by a tsrun that died: reclaiming it may need its network
// detached), found before anything is made.
import { existsSync } from 'node:fs';
import { UserError } from '../../config/errors.js';
import { resolveSettings } from '../../config/settings.js';
import { containerDir } from '../../runtime/containers.js';
import { resolverState } from '../../runtime/dns/paths.js';
import { exitFast } from '../../runtime/koffi.js';
import { rootOf } from '../../runtime/netns-users.js';
import { leaveNamespace, wireWithoutNetwork } from '../network-plain.js';
import type { RunArgs } from '../run-args.js';
import { normalizeRunOptions } from '../run-options.js';
import type { NetworkWiring } from '../run.js';
import { reportFailure, settingsAndLog, writeStdout } from '../setup.js';
import { createAndStart } from './create.js';
import { detachOptionsOf } from './detach-options.js';

/** Thrown on the way back to the entry: this run needs run.cjs's door. Thrown before conmon starts
 * and before anything is created (by the claim of the id, whose setup rolls back). */
class NeedsFullDoor extends UserError {}

/** --net none and host. wire() comes after the claim: a release before it is the claim's reclaim of
 * a stale id, whose owner may have wired a network (run.cjs's). After it, this container's own
 * release (a rollback, or the removal of one that could not start): --net none leaves the users'
 * registry (no endpoint to detach), host registered nothing. */
export function plainDetachedWiring(): NetworkWiring {
  let wired = false;
  return {
    async wire(o, containerId, settings, tx, log) {
      wired = true;
      const netns = await wireWithoutNetwork(o, containerId, settings, tx, log);
      if (netns === undefined) throw new NeedsFullDoor(`--net ${o.net.kind} is run.cjs's`);
      return netns;
    },
    async release(containerId, _stale, settings, log) {
      if (!wired) throw new NeedsFullDoor('a stale container id is reclaimed by run.cjs');
      const root = rootOf(settings.runDir, containerId);
      if (root !== undefined) await leaveNamespace(settings, root, containerId, log);
    },
  };
}

/** Creates and starts the container, prints its id; returns the exit code, or undefined: the entry
 * must run the command line through run.cjs's door. Never throws (as the CLI's main). */
export async function door(a: RunArgs): Promise<number | undefined> {
  try {
    // A named container whose state directory exists: taken (refused) or stale (reclaimed), both
    // the full door's, which this door would otherwise only find out at the claim.
    if (a.flags.name !== undefined && existsSync(containerDir(resolveSettings(process.env, a.globals).runDir, String(a.flags.name)))) return undefined;
    const options = normalizeRunOptions(a.bundle, a.command, a.flags);
    const { settings, log } = settingsAndLog(a.globals);
    // The DNS resolver's supervision, as setup() does it for every other command (one file read when
    // it is well or absent); its client is loaded only when it died (as in the plain run door).
    if (resolverState(settings.runDir) === 'dead') (await import('../../runtime/dns/client.js')).reviveResolver(settings, log);
    writeStdout(`${await createAndStart(options, detachOptionsOf(a.flags), settings, log, plainDetachedWiring())}\n`);
    // conmon was started through koffi (shim/lifecycle/conmon.ts): leave through libc's _exit, as
    // a wired run -d does (runtime/koffi.ts exitFast; ~1 ms of Node's own exit). The id and the
    // log are written synchronously and nothing listens for 'exit'; without koffi, returns.
    exitFast(0);
    return 0;
  } catch (err) {
    if (err instanceof NeedsFullDoor) return undefined;
    return reportFailure(err);
  }
}
