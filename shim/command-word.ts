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
