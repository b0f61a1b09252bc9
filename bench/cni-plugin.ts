// Calling CNI plugins as runtimes do, for the suites that compare tsrun with them: one process per
// verb, the configuration on stdin, the parameters in the environment, a container network
// namespace held by a sleeping process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { TSRUN, benchEnv } from './lib.js';

/** Where the reference plugins live (Debian's containernetworking-plugins). */
export const CNI_PATH = '/usr/lib/cni';

export interface NetnsPin {
  pid: number;
  path: string;
  kill(): void;
}

/** A container network namespace held by a sleeping process (not timed). */
export function pinNetns(): NetnsPin {
  const child: ChildProcess = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
  const own = readlinkSync('/proc/self/ns/net');
  const nsPath = `/proc/${child.pid}/ns/net`;
  for (let i = 0; i < 2000; i++) {
    try {
      if (readlinkSync(nsPath) !== own && readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === 'sleep') break;
    } catch {
      // not there yet
    }
    spawnSync('sleep', ['0.002']);
  }
  return { pid: child.pid!, path: nsPath, kill: () => child.kill('SIGKILL') };
}

/**
 * One plugin process: `type` is a reference plugin in CNI_PATH, or 'tsrun' for tsrun's bundle
 * (`o.exe`: the executable to run for it, e.g. the wrapper `tsrun cni install` wrote; default the
 * launcher). Returns how long it took and its stdout (the result); throws when it fails.
 */
export function cniPlugin(
  type: string,
  command: string,
  conf: object | string,
  o: { netnsPath?: string | undefined; containerId: string; env?: NodeJS.ProcessEnv; exe?: string },
): { ms: number; out: string } {
  const [file, args] = type === 'tsrun' ? [o.exe ?? TSRUN, []] : [path.join(CNI_PATH, type), []];
  const env = benchEnv({ ...o.env, CNI_COMMAND: command, CNI_CONTAINERID: o.containerId, CNI_IFNAME: 'eth0', CNI_PATH, ...(o.netnsPath ? { CNI_NETNS: o.netnsPath } : {}) });
  const started = performance.now();
  const r = spawnSync(file, args, { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`CNI ${type} ${command} failed (${r.status}): ${r.stdout} ${r.stderr}`);
  return { ms, out: r.stdout };
}
