// The command word of a tsrun command line, without commander: the CLI uses it to build only the
// command asked for (shim/cli.ts), the entry to pick the CLI's code cache (shim/main.ts).

const GLOBAL_WITH_VALUE = new Set(['--root', '--store', '--log', '--log-level']);

/** The command word of `argv` (after node, script and global options), if any. */
export function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Commands that attach or detach containers or change networks: they run the engine, whose
 * functions the CLI's eager code cache holds compiled (scripts/bundle.mjs). The others (ps, logs,
 * inspect, exec, help…) load less from the lazy cache. A wrong guess costs milliseconds, never
 * behaviour: both caches are of the same bundle.
 */
const ENGINE_COMMANDS = new Set(['run', 'create', 'stop', 'rm', 'restart', 'cleanup', 'network', 'gc']);

export function runsTheEngine(args: readonly string[]): boolean {
  const word = commandWord(['', '', ...args]);
  return word !== undefined && ENGINE_COMMANDS.has(word);
}

/**
 * Commands that are done when their action returns: nothing they start needs this process's event
 * loop afterwards (conmon runs on its own; no server, no stream). The entry exits at once after
 * them (process.exit) instead of letting the loop run dry: a natural exit first tears V8's heap
 * down and runs the native addons' exit handlers (koffi's fsyncs stdout and stderr). Left out:
 * whatever may serve or stream (resolver, agent, logs, exec, network with its resolver start,
 * topology, hook, spec, cni, oci-runtime), which keep the natural exit.
 */
const DONE_WHEN_RETURNED = new Set(['rm', 'stop', 'kill', 'ps', 'inspect', 'wait', 'start', 'create', 'restart', 'cleanup', 'pause', 'unpause', 'gc']);

export function doneWhenReturned(args: readonly string[]): boolean {
  const word = commandWord(['', '', ...args]);
  return word !== undefined && DONE_WHEN_RETURNED.has(word);
}

/** `tsrun rm [-f|--force] ID…` with nothing else (no global option, no other flag, no `--`). */
export interface RmArgs {
  force: boolean;
  names: string[];
}

/**
 * The command line of rm's own door (shim/lifecycle/rm-door.ts), or undefined: any other command
 * line, help included, is the CLI's, which reads it with commander as before.
 */
export function rmArgs(args: readonly string[]): RmArgs | undefined {
  if (args[0] !== 'rm') return undefined;
  const a: RmArgs = { force: false, names: [] };
  for (const arg of args.slice(1)) {
    if (arg === '-f' || arg === '--force') a.force = true;
    else if (arg === '' || arg.startsWith('-')) return undefined;
    else a.names.push(arg);
  }
  return a.names.length > 0 ? a : undefined;
}
