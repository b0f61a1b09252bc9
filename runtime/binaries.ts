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
