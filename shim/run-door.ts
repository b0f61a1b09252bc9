// The front door of `tsrun run` (the entry, shim/main.ts, sends it here when shim/run-args.ts
// could read the command line), foreground or -d: the same steps as run's action in shim/cli.ts,
// without commander and the other commands, so a cold `tsrun run` loads only what it runs.
import { normalizeRunOptions } from './run-options.js';
import { reportFailure } from './setup.js';
import { setup } from './setup-supervised.js';
import { runContainer } from './run.js';
import { checkAhead, shimNetworkWiring } from './network-wiring.js';
import { parseRunArgs, type RunArgs } from './run-args.js';
import { exitFast } from '../runtime/koffi.js';
import { spawnInherit, type InheritingChild } from './spawn-inherit.js';
import { spawnInheritVfork } from './spawn-vfork.js';

/** Runs the container and returns the process exit code; never throws (as the CLI's main). */
export async function door(a: RunArgs): Promise<number> {
  try {
    const options = normalizeRunOptions(a.bundle, a.command, a.flags);
    const { settings, log } = setup(a.globals);
    if (a.flags.detach === true) {
      // run -d: conmon supervises the container; this process prints its id and exits.
      const { runDetachedCmd } = await import('./lifecycle/run-detached.js');
      await runDetachedCmd(options, a.flags, settings, log);
      // Its id and the log are written synchronously and nothing listens for 'exit': a run -d that
      // wired a network (koffi loaded) leaves through libc's _exit, as the hook does (~1.1 ms of
      // Node's own exit; runtime/koffi.ts exitFast, which does nothing without koffi).
      exitFast(0);
      return 0;
    }
    log.debug({ options }, 'run');
    const code = await runContainer(options, settings, log, shimNetworkWiring, a.flags.tty === true ? true : undefined, spawnRunc);
    // The container has exited and runContainer's teardown is done (network detached, pin, state
    // and cgroup removed); the log is written synchronously, nothing listens for 'exit', and on
    // this path tsrun printed nothing itself. A run that wired a network has koffi loaded: it
    // leaves through libc's _exit, as run -d, rm and the hook do, skipping Node's own exit (the
    // platform's and the pool's threads stopped and joined, destructors, the addons' exit
    // handlers): 2-4 ms from the exit call to the parent's wait4 (docs/fast-path.md, Exit when done).
    // Not after a failure (its line goes through process.stderr), and not for --net none, host or
    // container:<id> (koffi may not be loaded; the build's code-cache warm-up runs --net none in
    // its own process).
    if (options.net.kind === 'network') exitFast(code);
    return code;
  } catch (err) {
    return reportFailure(err);
  }
}

/** runc through posix_spawn when the run has loaded koffi (it wired a network: shim/spawn-vfork.ts),
 * else through Node's process handle. */
function spawnRunc(file: string, args: readonly string[]): InheritingChild {
  const child = spawnInheritVfork(file, args) ?? spawnInherit(file, args);
  // The detach's firewall self-check, made while runc runs (network-wiring.ts checkAhead).
  setImmediate(() => void checkAhead());
  return child;
}

/** The CLI's signature (argv with node and the script first), for the build's code-cache warm-up
 * (scripts/code-cache.cjs runs a whole `run --net none` through it). */
export function main(argv: string[]): Promise<number> {
  const a = parseRunArgs(argv.slice(2));
  if (a === undefined) return Promise.reject(new Error(`not a command line for run's door: ${argv.slice(2).join(' ')}`));
  return door(a);
}

/** For the bench's floor B (bench/suites/startup.ts): runc started exactly as this door starts it. */
export { spawnInherit } from './spawn-inherit.js';
