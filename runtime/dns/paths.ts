// Where the resolver of a state root is found: its control socket and its pidfile.
import { sha256Hex } from '../hash.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { processStartTime } from '../containers.js';

/** An abstract unix socket (no file; the kernel frees the name when the holder dies), per state
 * root; abstract names are per network namespace, so each host namespace has its own. */
export function controlSocketName(runDir: string): string {
  return `\0tsrun-resolver-${sha256Hex(path.resolve(runDir)).slice(0, 20)}`;
}

export function pidfilePath(runDir: string): string {
  return path.join(runDir, 'dns', 'resolver.pid');
}

export interface ResolverPid {
  pid: number;
  start?: string | undefined;
}

export function readResolverPid(runDir: string): ResolverPid | undefined {
  // Every command looks, and there is usually none: no failed read (an Error with a stack).
  if (!existsSync(pidfilePath(runDir))) return undefined;
  try {
    const rec = JSON.parse(readFileSync(pidfilePath(runDir), 'utf8')) as ResolverPid;
    return typeof rec.pid === 'number' ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** 'running': the pidfile's process is alive and is the one that wrote it; 'dead': a pidfile
 * was left by a resolver that did not exit cleanly (a clean exit removes it); 'absent'. */
export function resolverState(runDir: string): 'running' | 'dead' | 'absent' {
  const rec = readResolverPid(runDir);
  if (!rec) return 'absent';
  const start = processStartTime(rec.pid);
  return start !== undefined && (rec.start === undefined || rec.start === start) ? 'running' : 'dead';
}
