// The front door of `tsrun rm [-f] ID…`, bundled as rm.cjs: rm's path without commander, the other
// commands or the engine, so a cold `tsrun rm -f` reads and evaluates only what it runs (loading
// cli.cjs cost a cold rm ~20 ms, more than runc's delete). It removes containers that need no engine
// to release their network (--net none: a namespace of their own with no endpoint); anything else
// is handed back to the entry before anything is changed (the names are resolved and checked here,
// read only, and again there), which runs the same command line through rm-door-wired.ts
// (rm-wired.cjs: this door with the engine's network release, still without the CLI).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Settings } from '../../config/settings.js';
import type { Logger } from '../../runtime/log.js';
import { rootOf } from '../../runtime/netns-users.js';
import type { RmArgs } from '../command-word.js';
import { leaveNamespace } from '../network-plain.js';
import type { NetworkWiring } from '../run.js';
import { reportFailure, writeStdout } from '../setup.js';
import { setup } from '../setup-supervised.js';
import { missingError, removalViews, removeAll, removeOrphan } from './signals.js';
import type { ContainerView } from './status.js';

/** The release of a --net none container's namespace: it leaves the users' registry (its own
 * entry; nothing to detach). wire() is never called by rm. */
const plainRelease: NetworkWiring = {
  wire() {
    throw new Error('rm wires nothing');
  },
  async release(containerId, _stale, settings, log) {
    const root = rootOf(settings.runDir, containerId);
    if (root !== undefined) await leaveNamespace(settings, root, containerId, log);
  },
};

/** True when removing `v` needs no engine: --net none, registered as the owner of its namespace
 * (no joiner's share in another's), no pin; or already cleaned up (nothing left to release). */
export function releasesWithoutEngine(settings: Settings, v: ContainerView): boolean {
  if (v.lifecycle?.cleanedUp === true) return true;
  if (v.lifecycle?.options.net.kind !== 'none') return false;
  return rootOf(settings.runDir, v.id) === v.id && !existsSync(path.join(settings.runDir, 'netns', v.id));
}

/** Removes the containers and returns the exit code, or undefined: the entry must run the command
 * line through rm-door-wired.ts (a container whose network needs the engine). Never throws. */
export function door(a: RmArgs): Promise<number | undefined> {
  return removeWith(a, undefined);
}

/** rm with `network` releasing the networks; without one, only containers that need no engine
 * (else undefined, before anything is changed). */
export async function removeWith(a: RmArgs, network: NetworkWiring | undefined): Promise<number | undefined> {
  try {
    const { settings, log } = setup({});
    const missing: string[] = [];
    const orphans: string[] = [];
    const views = await removalViews(settings, a.names, a.force, missing, orphans);
    // An orphan's network is not known from its record: the engine's release looks (rm-wired.cjs).
    if (network === undefined && (orphans.length > 0 || !views.every((v) => releasesWithoutEngine(settings, v)))) return undefined;
    const ids = await removeAll(settings, log as Logger, network ?? plainRelease, views);
    for (const id of orphans) await removeOrphan(settings, log as Logger, network!, id);
    writeStdout([...ids, ...orphans].map((id) => `${id}\n`).join(''));
    if (missing.length > 0) throw missingError(missing);
    return 0;
  } catch (err) {
    return reportFailure(err);
  }
}
