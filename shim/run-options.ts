// `tsrun run`'s flags as parsed (by commander in shim/cli.ts, or by shim/run-args.ts on the fast
// path) turned into RunOptions: every value checked once, so nothing below sees raw strings.
import { readFileSync } from 'node:fs';
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

/**
 * `--env-file FILE`'s text read as docker reads it (its opts/file.go): lines with their leading
 * blanks dropped; empty lines and lines starting with `#` skipped; `KEY=VALUE` kept as written (no
 * quote processing, the value's blanks kept); a bare `KEY` takes the caller's value and is left out
 * when the caller has none. A key with a blank in it, an empty key or a NUL is refused. `file` only
 * names the file in the error.
 */
export function parseEnvFile(text: string, file: string, callerEnv: NodeJS.ProcessEnv = process.env): string[] {
  const env: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const bad = (why: string) => new UserError(`invalid --env-file ${JSON.stringify(file)}: line ${i + 1}: ${why}`);
    if (line.includes('\0')) throw bad('a NUL byte');
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (key === '') throw bad('no variable name');
    if (/\s/.test(key)) throw bad(`variable ${JSON.stringify(key)} contains blanks`);
    if (eq >= 0) env.push(line);
    else if (Object.hasOwn(callerEnv, key) && callerEnv[key] !== undefined) env.push(`${key}=${callerEnv[key]}`);
  }
  return env;
}

/** The files of `--env-file`, in order (docker's: the files first, then `-e`, the later value of a key winning). */
export function envFiles(files: readonly string[] | undefined): string[] {
  const env: string[] = [];
  for (const file of files ?? []) {
    let text: string;
    try {
      // Read whole, as docker does (a pipe too: `--env-file <(…)`), then bounded.
      const buf = readFileSync(file);
      if (buf.length > ENV_FILE_MAX_BYTES) throw new UserError(`invalid --env-file ${JSON.stringify(file)}: larger than 1 MiB`);
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
      } catch {
        throw new UserError(`invalid --env-file ${JSON.stringify(file)}: not UTF-8 text`);
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new UserError(`invalid --env-file ${JSON.stringify(file)}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : (err as Error).message}`);
    }
    env.push(...parseEnvFile(text, file));
  }
  return env;
}
const ENV_FILE_MAX_BYTES = 1024 * 1024;

/** `-u/--user USER[:GROUP]`: each part a number (0 to 2^31-1) or a name to look up in the root
 * filesystem's /etc/passwd and /etc/group when the container is created (shim/user.ts). */
export function checkUserSpec(s: string): string {
  const m = /^([^:\s]+)(?::([^:\s]+))?$/.exec(s);
  const tooBig = (p: string | undefined) => p !== undefined && /^\d+$/.test(p) && Number(p) > 2 ** 31 - 1;
  if (!m || tooBig(m[1]) || tooBig(m[2])) throw new UserError(`invalid --user ${JSON.stringify(s)}: expected USER or USER:GROUP, each a number or a name`);
  return s;
}

/** `--cwd` or docker's `-w`/`--workdir` (the spec rewrite checks the path). */
function workdir(cwd: string | undefined, w: string | undefined): string | undefined {
  if (cwd !== undefined && w !== undefined && cwd !== w) throw new UserError(`--cwd ${JSON.stringify(cwd)} and --workdir ${JSON.stringify(w)} disagree: give one of them`);
  return cwd ?? w;
}

export function normalizeRunOptions(bundle: string, command: string[], f: Record<string, unknown>): RunOptions {
  const str = (k: string) => (f[k] === undefined ? undefined : String(f[k]));
  const files = f.envFile as string[] | undefined;
  const env = files !== undefined && files.length > 0 ? [...envFiles(files), ...envFlags(f.env as string[])] : envFlags(f.env as string[]);
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
    ...(f.user === undefined ? {} : { user: checkUserSpec(String(f.user)) }),
  };
}
