// Boot identity. Everything tsrun records about a live thing (an endpoint, a container's owner, a
// namespace user) is only meaningful within the boot that made it: after a reboot, or any loss of
// the run directory while the library directory survives, pids, start times and namespace inodes
// from the last boot can belong to anything now. Records carry the boot id, and a record from
// another boot is stale by definition.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/**
 * The kernel's boot id (/proc/sys/kernel/random/boot_id, new at every boot). TSRUN_BOOT_ID
 * replaces it for tests that simulate a reboot without one (test-only, like the fault injection
 * in tx.ts): the variable is read here because this is the one place that knows what a boot is.
 */
export function bootId(): string {
  if (cached !== undefined) return cached;
  const forced = process.env.TSRUN_BOOT_ID;
  if (forced) return (cached = forced);
  try {
    cached = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    cached = 'unknown';
  }
  return cached;
}

/** True when a record made with boot id `recorded` is from this boot. Records written before boot
 * ids were recorded (undefined) are judged by their other fields alone. */
export function sameBoot(recorded: string | undefined): boolean {
  return recorded === undefined || recorded === bootId();
}
