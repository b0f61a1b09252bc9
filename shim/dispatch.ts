// The routing of tsrun's entry: which front door takes a command line. Its one caller is a loader
// of a whole cold process: the dispatcher dispatch.cjs (shim/main.ts) for most command lines, and
// the plain run door's own bundle run-plain.cjs (shim/run-door-plain.ts) for a command line the
// entry guesses is a foreground `run --net none` or `host` (scripts/bundle.mjs): that process then
// deserializes one code cache instead of two. The guess only picks which script carries this
// routing; the routing decides, the same code in both, and passes a foreground run it does not
// take itself to the other doors as dispatch.cjs does.
import { isPlainDetachedRun, isPlainRun, parseRunArgs, wiresANetwork, type RunArgs } from './run-args.js';
import { doneWhenReturned, rmArgs, runsTheEngine } from './command-word.js';

/** The plain run door (run-door-plain.ts's `door`), or how to load it: the script that carries this
 * routing passes it in, so run-plain.cjs runs its own door without loading itself again. */
export type PlainDoor = (run: RunArgs) => Promise<number | undefined>;

/** The process's exit code, and whether to exit as soon as it is known. */
export interface Routed {
  code: number | undefined;
  exitNow: boolean;
}

// The same routing, as far as the start-up snapshots go, is in shim/entry.ts (snapshotDoor), which
// picks the door's snapshot when TSRUN_SNAPSHOT=1: keep the two in step.
export async function route(args: string[], plainDoor: PlainDoor, entryMs: number): Promise<Routed> {
  // A container runtime calling tsrun as its CNI plugin (cni/): the protocol is in the
  // environment, and runtimes pass no arguments (a `tsrun …` command line is the CLI's).
  if (process.env.CNI_COMMAND && args.length === 0) {
    // VERSION (libcni runs it for every plugin whenever it loads a conflist) has a door of its
    // own, without the engine: cni-version.cjs.
    if (process.env.CNI_COMMAND === 'VERSION') return { code: await (await import('../cni/version-door.js')).door(), exitNow: false };
    return { code: await (await import('../cni/main.js')).door(args, entryMs), exitNow: false };
  }
  if (args[0] === 'hook' && args[1] !== undefined && !args[1].startsWith('-') && args[1] !== 'install' && args[1] !== 'uninstall') {
    return { code: await (await hookDoor(args[1])).door(args, entryMs), exitNow: false };
  }
  const run = parseRunArgs(args);
  if (run !== undefined) {
    // A foreground run with --net none or host: the plain door (run-plain.cjs), which has no
    // engine to load; it hands back what needs one (undefined). Otherwise run.cjs's door; a
    // network to wire runs the engine, whose functions come compiled from run.cjs's eager code
    // cache (run-door-wired.js is that import: scripts/bundle.mjs).
    // run -d with --net none or host: the plain detached door (run-detached.cjs), the same way.
    const plain = isPlainRun(run) ? await plainDoor(run) : isPlainDetachedRun(run) ? await import('./lifecycle/run-detached-door.js').then((d) => d.door(run)) : undefined;
    const code = plain ?? (await (wiresANetwork(String(run.flags.net)) ? import('./run-door-wired.js') : import('./run-door.js')).then((d) => d.door(run)));
    // Exit now rather than when the event loop runs dry, as the hook does: the container is gone
    // and torn down, the log is written synchronously, stdio to pipes and files is synchronous on
    // Linux. A natural exit first tears V8's heap down and runs the native addons' exit handlers
    // (koffi's, loaded by a run that wires a network, fsyncs stdout and stderr).
    return { code, exitNow: true };
  }
  // `rm [-f] ID…`: its own door (rm.cjs), which hands back containers whose network needs the
  // engine (undefined): those go through rm-wired.cjs, the same door with the engine.
  const rm = rmArgs(args);
  if (rm !== undefined) {
    const code = (await import('./lifecycle/rm-door.js').then((d) => d.door(rm))) ?? (await import('./lifecycle/rm-door-wired.js').then((d) => d.door(rm)));
    return { code, exitNow: true };
  }
  // Commands that attach, detach or change networks (run -d, rm, network …) load the CLI with its
  // eager code cache, the others with the lazy one (cli-wired.js is that import: scripts/bundle.mjs).
  const code = await (runsTheEngine(args) ? import('./cli-wired.js') : import('./cli.js')).then((d) => d.door(args));
  // The lifecycle verbs (rm, stop, ps …) are done when they return: exit at once, as run does.
  return { code, exitNow: doneWhenReturned(args) };
}

/** The hook's bundle with the code cache of its stage: what a createRuntime or a poststop runs
 * (made by the build from real ones), or every function for the others (scripts/bundle.mjs). */
function hookDoor(stage: string): Promise<typeof import('../hook/main.js')> {
  if (stage === 'createRuntime' || stage === 'prestart') return import('../hook/main-setup.js');
  if (stage === 'poststop') return import('../hook/main-teardown.js');
  return import('../hook/main.js');
}

/** Routes the process's command line and exits with the door's code. `exit`: instead of
 * process.exit, for the build's code-cache warm-up (run-door-plain.ts main), so that the cache holds
 * what a real run runs here too. */
export function dispatch(args: string[], plainDoor: PlainDoor, entryMs: number, exit?: (code: number | undefined) => void): void {
  void route(args, plainDoor, entryMs).then(({ code, exitNow }) => {
    if (exitNow) {
      if (exit !== undefined) return exit(code);
      process.exit(code);
    }
    process.exitCode = code;
    // The work is done and every store closed; a connection attempt to an unreachable etcd can
    // still hold the event loop for minutes (a TCP connect in progress outlives the gRPC channel
    // that started it). Exit anyway, shortly: stdio to pipes and files is synchronous on Linux and
    // the log is written synchronously, so nothing is lost. The timer does not delay a normal exit.
    setTimeout(() => process.exit(code), 500).unref();
  });
}
