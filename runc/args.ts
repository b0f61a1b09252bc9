// runc's command line as engines send it, parsed only as far as tsrun-runc needs: the global
// flags, the command, and for the commands tsrun takes part in (create, run, delete) their flags
// and the container id. runc's CLI (urfave/cli over Go's flag package) accepts `-flag` and
// `--flag`, a value as the next word or after `=`, and stops reading flags at the first
// positional word or at `--`. Nothing is rewritten: the original words go to runc unchanged.
// Pure: no I/O.

/** runc's global flags that take a value (the rest are booleans: --debug, --systemd-cgroup). */
const GLOBAL_VALUE_FLAGS = new Set(['log', 'log-format', 'root', 'criu', 'rootless']);

/** Flags with a value, per command tsrun-runc looks into. Aliases map to the long name. */
const COMMAND_FLAGS: Record<string, { values: Set<string>; aliases: Record<string, string> }> = {
  create: { values: new Set(['bundle', 'console-socket', 'pid-file', 'preserve-fds']), aliases: { b: 'bundle' } },
  run: { values: new Set(['bundle', 'console-socket', 'pid-file', 'preserve-fds']), aliases: { b: 'bundle', d: 'detach' } },
  delete: { values: new Set(), aliases: { f: 'force' } },
};

export interface RuncArgs {
  /** Global flags by long name ("root", "log", …); a boolean given bare is "true". */
  globals: Map<string, string>;
  /** The words before the command (global flags), as given: reused for tsrun's own runc calls. */
  globalWords: string[];
  /** `--version`/`-v` before any command. */
  version: boolean;
  /** The command (`create`, `start`, …), or undefined when there is none (`runc --help`). */
  command?: string | undefined;
  /** The command's flags by long name (only for create, run and delete). */
  flags: Map<string, string>;
  /** Positional words after the command's flags: the container id first. */
  positionals: string[];
}

/** Splits `--name=value` / `-name` into its parts; undefined for a word that is not a flag. */
function flagWord(word: string): { name: string; value?: string } | undefined {
  if (!word.startsWith('-') || word === '-' || word === '--') return undefined;
  const body = word.replace(/^--?/, '');
  const eq = body.indexOf('=');
  return eq < 0 ? { name: body } : { name: body.slice(0, eq), value: body.slice(eq + 1) };
}

export function parseRuncArgs(argv: readonly string[]): RuncArgs {
  const globals = new Map<string, string>();
  let i = 0;
  let version = false;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    const f = flagWord(word);
    if (!f) break;
    if (f.name === 'v' || f.name === 'version') version = true;
    if (GLOBAL_VALUE_FLAGS.has(f.name) && f.value === undefined) {
      globals.set(f.name, argv[i + 1] ?? '');
      i++;
    } else {
      globals.set(f.name, f.value ?? 'true');
    }
  }
  const globalWords = argv.slice(0, i);
  const command = argv[i];
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  const table = command === undefined ? undefined : COMMAND_FLAGS[command];
  let j = i + 1;
  if (table) {
    for (; j < argv.length; j++) {
      const word = argv[j]!;
      if (word === '--') {
        j++;
        break;
      }
      const f = flagWord(word);
      if (!f) break;
      const name = table.aliases[f.name] ?? f.name;
      if (table.values.has(name) && f.value === undefined) {
        flags.set(name, argv[j + 1] ?? '');
        j++;
      } else {
        flags.set(name, f.value ?? 'true');
      }
    }
  }
  if (command !== undefined) positionals.push(...argv.slice(j));
  return { globals, globalWords, version: version && command === undefined, command, flags, positionals };
}

/** A Go boolean flag's value: runc reads `--force`, `--force=true`, `--force=1`, … as true. */
export function flagIsTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 't', 'T', 'TRUE', 'True'].includes(value);
}
