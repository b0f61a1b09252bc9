// The front door of a foreground `tsrun run` that wires no network (--net none or host), bundled
// as run-plain.cjs: shim/run-door.ts's run path without the engine, netlink, the firewall or the
// store, so a cold `tsrun run --net none` reads, deserializes and evaluates only what it runs
// (see docs/fast-path.md). Anything that needs more is handed back to the entry, which runs the
// whole command line through run.cjs's door instead: a container id left by a tsrun that died
// (reclaiming it may need its network detached), or a --net this door does not know.
import { existsSync } from 'node:fs';
import { UserError } from '../config/errors.js';
import { containerDir } from '../runtime/containers.js';
import { resolveSettings } from '../config/settings.js';
import { normalizeRunOptions } from './run-options.js';
import { reportFailure, settingsAndLog } from './setup.js';
import { resolverState } from '../runtime/dns/paths.js';
import { runContainer, type NetworkWiring } from './run.js';
import { wireWithoutNetwork } from './network-plain.js';
import { isPlainRun, parseRunArgs, type RunArgs } from './run-args.js';
import { dispatch, type PlainDoor } from './dispatch.js';
import { warmCgroupMigration } from '../runtime/cgroups/migration-warmup.js';
import { hostHierarchies } from '../runtime/cgroups/hierarchies.js';

/** Thrown on the way back to the entry: this run needs run.cjs's door. Nothing is left behind (it
 * is thrown before, or by, the claim of the container id, and the setup rolls back). */
class NeedsFullDoor extends UserError {}

const plainWiring: NetworkWiring = {
  async wire(o, containerId, settings, tx, log, opts) {
    const netns = await wireWithoutNetwork(o, containerId, settings, tx, log, opts);
    if (netns === undefined) throw new NeedsFullDoor(`--net ${o.net.kind} is run.cjs's`);
    return netns;
  },
  release() {
    // A stale state directory with this id: its owner may have wired a network.
    throw new NeedsFullDoor('a stale container id is reclaimed by run.cjs');
  },
};

/**
 * Runs `first`, the process's first asynchronous call (the warm-up's move: its write is the only
 * work this door gives libuv's thread pool, one move at a time), with the pool made one thread
 * instead of four, unless UV_THREADPOOL_SIZE says otherwise. libuv starts its pool on the first
 * such call and waits until every thread has run, on the main thread: a cold process's
 * wall time before runc's spawn (0.6-25 ms at load 8 for four, docs/fast-path.md). The variable is
 * read then and taken off the environment again at once, so nothing started later inherits it. A
 * command line this door hands back to run.cjs's door in the same process keeps the one thread
 * (its asynchronous calls queue behind a pending move, a grace period at most).
 */
function withOnePoolThread(first: () => void): void {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return first();
  process.env.UV_THREADPOOL_SIZE = '1';
  try {
    first();
  } finally {
    delete process.env.UV_THREADPOOL_SIZE;
  }
}

/** Runs the container and returns the process exit code, or undefined: the entry must run the
 * command line through run.cjs's door. Never throws (as the CLI's main). */
export async function door(a: RunArgs): Promise<number | undefined> {
  // runc's first cgroup migration waits for an RCU grace period unless one passed just before:
  // started now, it passes while this door works (runtime/cgroups/migration-warmup.ts).
  withOnePoolThread(() => warmCgroupMigration(hostHierarchies()));
  try {
    // A named container whose state directory exists: taken (refused) or stale (reclaimed), both
    // the full door's, which this door would otherwise only find out at the claim.
    if (a.flags.name !== undefined && existsSync(containerDir(resolveSettings(process.env, a.globals).runDir, String(a.flags.name)))) return undefined;
    const options = normalizeRunOptions(a.bundle, a.command, a.flags);
    const { settings, log } = settingsAndLog(a.globals);
    // The DNS resolver's supervision, as setup() does it for every other command (one file read
    // when it is well or absent). Its client (the stand-ins of node:child_process and node:net, and
    // koffi's loader through the synchronous control request) is loaded only when it died.
    if (resolverState(settings.runDir) === 'dead') (await import('../runtime/dns/client.js')).reviveResolver(settings, log);
    log.debug({ options }, 'run');
    return await runContainer(options, settings, log, plainWiring, a.flags.tty === true ? true : undefined);
  } catch (err) {
    if (err instanceof NeedsFullDoor) return undefined;
    return reportFailure(err);
  }
}

/** The entry's routing (shim/dispatch.ts) with this door in the same script: what the entry runs
 * when it guesses a plain run from the command line (scripts/bundle.mjs), so that process
 * deserializes one code cache, this bundle's, instead of the dispatcher's and then this one.
 * Anything else the routing passes on as dispatch.cjs would. `exit` and `plainDoor`: the build's
 * warm-up's (main below). */
export function start(args: string[], exit?: (code: number | undefined) => void, plainDoor: PlainDoor = door): void {
  dispatch(args, plainDoor, performance.now(), exit);
}

/** The CLI's signature (argv with node and the script first), for the build's code-cache warm-up
 * (scripts/code-cache.cjs runs a whole `run --net none` through it, through the routing as start()
 * runs it, so the cache holds the routing's functions too). */
export function main(argv: string[]): Promise<number> {
  const a = parseRunArgs(argv.slice(2));
  if (a === undefined || !isPlainRun(a)) throw new Error(`not a command line for the plain run door: ${argv.slice(2).join(' ')}`);
  return new Promise((resolve, reject) => {
    const here: PlainDoor = async (run) => {
      const c = await door(run);
      if (c === undefined) reject(new Error('the plain run door handed the warm-up run back'));
      return c ?? 0;
    };
    start(argv.slice(2), (code) => resolve(code ?? 0), here);
  });
}

/** For the bench's floor B (bench/suites/startup.ts): runc started exactly as this door starts it. */
export { spawnInherit } from './spawn-inherit.js';
