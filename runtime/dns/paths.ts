// Where the resolver of a state root is found: its control socket, its lock and its pidfile.
import { sha256Hex } from '../hash.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { processStartTime } from '../containers.js';
import { recordLocksWork } from '../record-locks-abi.js';

/** An abstract unix socket (no file; the kernel frees the name when the holder dies), per state
 * root; abstract names are per network namespace, so each host namespace has its own. Only where
 * controlAddress cannot use a socket file: any local user can bind an abstract name first. */
export function controlSocketName(runDir: string): string {
  return `\0tsrun-resolver-${sha256Hex(path.resolve(runDir)).slice(0, 20)}`;
}

/** sockaddr_un's sun_path holds 108 bytes with the terminating NUL. */
const SUN_PATH_MAX = 107;

/** The resolver's lock: a record lock on this file, held for its life (runtime/dns/server.ts). */
export function resolverLockPath(runDir: string): string {
  return path.join(path.resolve(runDir), 'dns', 'resolver.lock');
}

/**
 * Where the resolver's control socket is: a socket file in the run directory's dns/ (0700), so
 * that only root can reach it or bind it. The abstract name it was before session 7 could be
 * bound by any local user before tsrun's resolver started (the name is predictable), which kept
 * the resolver from starting and let that user answer the engine's reloads. The abstract name
 * remains only where the file cannot be used: a path longer than sun_path, or a machine where
 * the lock that guards the file (record locks, runtime/host-lock.ts) cannot be taken.
 */
export function controlAddress(runDir: string, recordLocks: boolean = recordLocksWork()): string {
  const file = path.join(path.resolve(runDir), 'dns', 'control.sock');
  return recordLocks && Buffer.byteLength(file) <= SUN_PATH_MAX ? file : controlSocketName(runDir);
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
