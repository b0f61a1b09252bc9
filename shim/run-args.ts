// `tsrun run`'s command line without commander, for the entry (shim/main.ts) to send a foreground
// `run` to its own small front door (shim/run-door.ts) instead of the whole CLI: loading the CLI's
// bundle (commander and every command) is most of what a cold `tsrun run` spends before runc.
//
// It reads exactly what commander reads for the command lines people type, and nothing else: any
// argument it is not sure of (help, --version, the detach-only options without -d, an unknown or
// combined short option, `-p8080:80`, an option value that begins with "-" other than a number,
// a missing value or bundle, a bad --log-level) makes it answer undefined, and the entry hands the
// whole command line to the CLI, which parses (or refuses) it as it always has. Its unit test
// compares it with commander's own parse of the same command lines.
import { isLogLevel } from '../config/settings.js';
import type { GlobalFlags } from './setup.js';

export interface RunArgs {
  globals: GlobalFlags;
  bundle: string;
  command: string[];
  /** As commander gives them to run's action: camel-case keys, collected lists, defaults. */
  flags: Record<string, unknown>;
}

interface Spec {
  key: string;
  /** flag: takes no value; list: repeatable, collected */
  kind: 'value' | 'flag' | 'list';
  global?: true;
}

const GLOBAL: Record<string, Spec> = {
  '--root': { key: 'root', kind: 'value', global: true },
  '--store': { key: 'store', kind: 'value', global: true },
  '--log': { key: 'log', kind: 'value', global: true },
  '--log-level': { key: 'logLevel', kind: 'value', global: true },
  '--debug': { key: 'debug', kind: 'flag', global: true },
};

/** run's own options (shim/cli.ts), with their short forms. Keep in step with buildProgram. */
const RUN: Record<string, Spec> = {
  '--name': { key: 'name', kind: 'value' },
  '--env': { key: 'env', kind: 'list' },
  '-e': { key: 'env', kind: 'list' },
  '--env-file': { key: 'envFile', kind: 'list' },
  '--user': { key: 'user', kind: 'value' },
  '-u': { key: 'user', kind: 'value' },
  '--hostname': { key: 'hostname', kind: 'value' },
  '--cwd': { key: 'cwd', kind: 'value' },
  '--workdir': { key: 'workdir', kind: 'value' },
  '-w': { key: 'workdir', kind: 'value' },
  '--net': { key: 'net', kind: 'value' },
  '--publish': { key: 'publish', kind: 'list' },
  '-p': { key: 'publish', kind: 'list' },
  '--ip': { key: 'ip', kind: 'value' },
  '--ip6': { key: 'ip6', kind: 'value' },
  '--mac': { key: 'mac', kind: 'value' },
  '--network-alias': { key: 'networkAlias', kind: 'list' },
  '--dns': { key: 'dns', kind: 'list' },
  '--memory': { key: 'memory', kind: 'value' },
  '-m': { key: 'memory', kind: 'value' },
  '--memory-swap': { key: 'memorySwap', kind: 'value' },
  '--cpus': { key: 'cpus', kind: 'value' },
  '--cpu-shares': { key: 'cpuShares', kind: 'value' },
  '--pids-limit': { key: 'pidsLimit', kind: 'value' },
  '--init': { key: 'init', kind: 'flag' },
  '--stop-timeout': { key: 'stopTimeout', kind: 'value' },
  '--tty': { key: 'tty', kind: 'flag' },
  '-t': { key: 'tty', kind: 'flag' },
  '--interactive': { key: 'interactive', kind: 'flag' },
  '-i': { key: 'interactive', kind: 'flag' },
  '--rm': { key: 'rm', kind: 'flag' },
  '--detach': { key: 'detach', kind: 'flag' },
  '-d': { key: 'detach', kind: 'flag' },
  // Detached only (shim/lifecycle/detach-options.ts): without -d the CLI refuses them.
  '--log-max-size': { key: 'logMaxSize', kind: 'value' },
  '--stop-signal': { key: 'stopSignal', kind: 'value' },
};

/** `args` as typed after `tsrun`: a foreground `run` read as commander would, or undefined. */
export function parseRunArgs(args: readonly string[]): RunArgs | undefined {
  const globals: Record<string, unknown> = {};
  const flags: Record<string, unknown> = { env: [], envFile: [], net: 'bridge', publish: [], networkAlias: [], dns: [] };
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      if (operands.length === 0) return undefined; // no command word yet: the CLI's business
      operands.push(...args.slice(i + 1));
      break;
    }
    if (a.length < 2 || a[0] !== '-') {
      operands.push(a);
      continue;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq < 0 ? a : a.slice(0, eq);
    const spec = GLOBAL[name] ?? (operands.length > 0 ? RUN[name] : undefined);
    if (spec === undefined) return undefined;
    const into = spec.global ? globals : flags;
    if (spec.kind === 'flag') {
      if (eq >= 0) return undefined;
      into[spec.key] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = args[++i];
      // commander would take any next word, but a word that looks like an option may be read
      // by the program first (--debug, --root=x): leave such lines to commander itself.
      if (value === undefined || (value.startsWith('-') && !/^-\d+$/.test(value))) return undefined;
    }
    if (spec.kind === 'list') (into[spec.key] as string[]).push(value);
    else into[spec.key] = value;
  }
  if (operands[0] !== 'run' || operands.length < 2) return undefined;
  if (globals.logLevel !== undefined && !isLogLevel(globals.logLevel as string)) return undefined;
  if (flags.detach !== true && (flags.logMaxSize !== undefined || flags.stopSignal !== undefined)) return undefined;
  return { globals: globals as GlobalFlags, bundle: operands[1]!, command: operands.slice(2), flags };
}

/** --net names a network to attach to (not none, host or container:<id>; see config/net-mode.ts). */
export function wiresANetwork(net: string): boolean {
  const v = net.trim();
  return v !== 'none' && v !== 'host' && !v.startsWith('container:');
}

/** A foreground run with --net none or host: shim/run-door-plain.ts's (no engine to load). */
export function isPlainRun(a: RunArgs): boolean {
  const net = String(a.flags.net).trim();
  return a.flags.detach !== true && (net === 'none' || net === 'host');
}

/** run -d with --net none or host: shim/lifecycle/run-detached-door.ts's (no engine to load). */
export function isPlainDetachedRun(a: RunArgs): boolean {
  const net = String(a.flags.net).trim();
  return a.flags.detach === true && (net === 'none' || net === 'host');
}
