// `tsrun run`'s flags as parsed (by commander in shim/cli.ts, or by shim/run-args.ts on the fast
// path) turned into RunOptions: every value checked once, so nothing below sees raw strings.
import { availableParallelism } from 'node:os';
import { UserError } from '../config/errors.js';
import { checkContainerId } from '../config/ids.js';
import { parseNetMode } from '../config/net-mode.js';
import { parsePublishList } from '../config/ports.js';
import { checkDnsName, parseUpstream } from '../config/resolv-conf.js';
import { parseCpus, parsePositiveInt, parseSize, parseSizeOrUnlimited } from '../config/units.js';
import type { RunOptions } from './run.js';

/** `--stop-timeout`: whole seconds, 0 (kill at once) allowed. */
function parseStopTimeout(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d{1,6}$/.test(s)) throw new UserError(`invalid --stop-timeout ${JSON.stringify(s)}: use a whole number of seconds`);
  return Number(s);
}

/** `-e KEY=VALUE`, or `-e KEY` as docker and podman take it: the caller's value of KEY, and
 * nothing when the caller has none. Shared by run, create and exec. */
export function envFlags(flags: readonly string[], callerEnv: NodeJS.ProcessEnv = process.env): string[] {
  const env: string[] = [];
  for (const e of flags) {
    if (/^[^=\s]+=/.test(e)) env.push(e);
    else if (/^[^=\s]+$/.test(e)) {
      // Own keys only: process.env['constructor'] (or '__proto__', 'toString') is Object's, and
      // was passed as constructor=function Object() { [native code] }.
      const value = Object.hasOwn(callerEnv, e) ? callerEnv[e] : undefined;
      if (value !== undefined) env.push(`${e}=${value}`);
    } else throw new UserError(`invalid --env ${JSON.stringify(e)}: expected KEY=VALUE, or KEY to pass this shell's value`);
  }
  return env;
}

/** `--cwd` or docker's `-w`/`--workdir` (the spec rewrite checks the path). */
function workdir(cwd: string | undefined, w: string | undefined): string | undefined {
  if (cwd !== undefined && w !== undefined && cwd !== w) throw new UserError(`--cwd ${JSON.stringify(cwd)} and --workdir ${JSON.stringify(w)} disagree: give one of them`);
  return cwd ?? w;
}

export function normalizeRunOptions(bundle: string, command: string[], f: Record<string, unknown>): RunOptions {
  const str = (k: string) => (f[k] === undefined ? undefined : String(f[k]));
  const env = envFlags(f.env as string[]);
  const hostname = str('hostname');
  if (hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(hostname)) {
    throw new UserError(`invalid --hostname ${JSON.stringify(hostname)}: use up to 63 letters, digits, '.' and '-'`);
  }
  const memory = str('memory');
  const swap = str('memorySwap');
  const cpus = str('cpus');
  const shares = str('cpuShares');
  const pids = str('pidsLimit');
  return {
    bundle,
    name: f.name === undefined ? undefined : checkContainerId(String(f.name)),
    args: command,
    env,
    hostname,
    cwd: workdir(str('cwd'), str('workdir')),
    net: parseNetMode(String(f.net)),
    publish: parsePublishList(f.publish as string[]),
    ip: str('ip'),
    ip6: str('ip6'),
    mac: str('mac'),
    networkAliases: [...new Set((f.networkAlias as string[] | undefined ?? []).map((a) => checkDnsName(a)))],
    dns: (f.dns as string[] | undefined ?? []).map((d) => (parseUpstream(d), d)),
    resources: {
      memoryBytes: memory === undefined ? undefined : parseSize('--memory', memory),
      memorySwapBytes: swap === undefined ? undefined : parseSizeOrUnlimited('--memory-swap', swap),
      cpus: cpus === undefined ? undefined : parseCpus('--cpus', cpus, availableParallelism()),
      cpuShares: shares === undefined ? undefined : parsePositiveInt('--cpu-shares', shares, 262144),
      pidsLimit: pids === undefined ? undefined : parsePositiveInt('--pids-limit', pids),
    },
    init: f.init === true ? true : undefined,
    stopTimeoutS: parseStopTimeout(str('stopTimeout')),
  };
}
