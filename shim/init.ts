// `--init`: a minimal init as the container's PID 1, for workloads not written to be PID 1 (they
// ignore SIGTERM, which the kernel does not deliver to a PID 1 without a handler, and never reap
// zombies). tsrun does not ship one: it bind-mounts Debian's, which must be static because it runs
// inside the container's root filesystem (tini-static or catatonit; the dynamic `tini` would
// need the host's libc in the container).
import { UserError } from '../config/errors.js';
import { resolveBinary } from '../runtime/binaries.js';

const CANDIDATES = ['tini-static', 'catatonit'];

/** The host path of the first static init found. */
export function findInit(): string {
  for (const name of CANDIDATES) {
    try {
      return resolveBinary(name);
    } catch {
      // try the next one
    }
  }
  throw new UserError(`--init needs ${CANDIDATES.join(' or ')} on the host: run scripts/setup-host.sh (package tini)`);
}
