// Resolves the programs tsrun executes to absolute paths. Hooks may run with an empty
// environment (podman's poststop has no PATH), so the Debian system directories are searched too.
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../config/errors.js';

const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const cache = new Map<string, string>();

export function resolveBinary(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string {
  const cached = cache.get(nameOrPath);
  if (cached) return cached;
  const candidates = nameOrPath.includes('/')
    ? [nameOrPath]
    : // Absolute directories only: an empty or relative entry ("", ".", "bin") names the caller's
      // working directory, which for a hook is wherever the runtime ran it (a bundle), so a
      // program found there would run as root in tsrun's place.
      [...(env.PATH ?? '').split(':').filter((d) => path.isAbsolute(d)), ...SYSTEM_BIN_DIRS].map((d) => path.join(d, nameOrPath));
  for (const candidate of candidates) {
    // Looked for first: a failed accessSync builds an Error with a stack (~50-100 µs in a cold
    // process), and runc is usually found several directories down the PATH.
    if (!existsSync(candidate)) continue;
    try {
      accessSync(candidate, constants.X_OK);
      const abs = path.resolve(candidate);
      cache.set(nameOrPath, abs);
      return abs;
    } catch {
      // try the next directory
    }
  }
  throw new UserError(`${nameOrPath} is not installed (not found in PATH or ${SYSTEM_BIN_DIRS.join(':')}): run scripts/setup-host.sh`);
}

/**
 * Whether a program started by its bare name through a PATH search done at exec (libuv's execvp,
 * glibc's posix_spawnp) is the one resolveBinary would find in `PATH`: every entry absolute (an
 * empty or relative one names the working directory, which resolveBinary never searches), and every
 * system directory resolveBinary adds among them (so that adding them finds nothing the exec's
 * search would not). Both take the first entry with an executable file of that name; the exec's
 * search also passes over a directory or a file it cannot execute, where resolveBinary would stop.
 */
export function pathSearchedAsResolved(PATH: string | undefined): boolean {
  if (PATH === undefined || PATH === '') return false;
  const dirs = PATH.split(':');
  return dirs.every((d) => d.startsWith('/')) && SYSTEM_BIN_DIRS.every((d) => dirs.includes(d));
}
