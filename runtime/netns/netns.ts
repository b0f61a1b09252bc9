// Network namespaces from Node: create and pin one, delete a pin, run synchronous work inside one.
//
// The namespace rule. setns(2) moves one *thread*, not the process. Node runs JavaScript on the
// main thread but has more: libuv's pool runs async fs, dns and crypto, and V8 has helpers. So a
// namespace switch must be a synchronous section on the main thread:
//   - no `await` inside: the function's continuation, and any other ready continuation, would run
//     later in whatever namespace the thread is in by then;
//   - no async fs or dns inside: pool threads never moved and would act in the original namespace;
//   - sync fs (openSync, writeFileSync on /proc/sys/net/...) and creating sockets are fine: they
//     run on this thread, and a socket keeps the namespace it was created in for life;
//   - inside, /proc/self/ns/net names the entered namespace (self is the main thread, the one that
//     moved): to name the original one, keep a descriptor and use /proc/self/fd/N.
// That is why netlink work happens through an Rtnl whose socket was opened inside (see
// runtime/netlink/rtnl.ts) rather than by staying inside the namespace.
import { closeSync, openSync, statSync, unlinkSync } from 'node:fs';
import { mkdirPrivate } from '../files.js';
import path from 'node:path';
import { ConflictError, NotFoundError, SystemError, isTsrunError } from '../../config/errors.js';
import { setUp } from '../netlink/requests.js';
import { requestSync } from '../netlink/sync.js';
import { hasCode } from './errno.js';
import { CLONE_NEWNET, MNT_DETACH, MS_BIND, libcSys, type Sys } from './sys.js';

/** The calling thread's own network namespace (not /proc/self, which is the main thread's). */
export const THREAD_NETNS = '/proc/thread-self/ns/net';

/** The kernel gives a namespace's loopback device index 1, always. */
const LOOPBACK_IFINDEX = 1;

// Set if the thread ever failed to return to its namespace: from then on nothing it does can be
// trusted to act where the caller thinks, so every later switch refuses to run.
let stranded: Error | undefined;

function checkNotStranded(): void {
  if (stranded) throw new SystemError('enter network namespace', stranded, 'refusing: this thread failed to return to its own network namespace earlier');
}

/** setns back to `home`; failing that, mark the thread as stranded and throw. */
function returnHome(sys: Sys, home: number): void {
  try {
    sys.setns(home, CLONE_NEWNET);
  } catch (err) {
    stranded = err as Error;
    throw new SystemError('return to the original network namespace', err);
  }
}

/**
 * Runs `fn` with the calling thread inside the network namespace at `nsPath` (a pin or
 * /proc/PID/ns/net) and moves it back afterwards, even when `fn` throws. `fn` must be
 * synchronous: see the namespace rule at the top of this file.
 */
export function withNetnsSync<T>(nsPath: string, fn: () => T, sys: Sys = libcSys): T {
  checkNotStranded();
  // The thread's own namespace: there is nothing to enter or leave (two opens and two setns saved
  // on every attach, whose host sysctls are read here).
  if (nsPath === THREAD_NETNS) return checkSync(fn());
  const target = openNetns(nsPath);
  try {
    const home = openSync(THREAD_NETNS, 'r');
    try {
      try {
        sys.setns(target, CLONE_NEWNET);
      } catch (err) {
        throw new SystemError(`enter netns "${nsPath}"`, err);
      }
      let result: T;
      try {
        result = fn();
      } finally {
        returnHome(sys, home);
      }
      return checkSync(result);
    } finally {
      closeSync(home);
    }
  } finally {
    closeSync(target);
  }
}

/** `result` itself, unless it is a promise: its async part would have run outside the namespace. */
function checkSync<T>(result: T): T {
  if (isThenable(result)) {
    (result as Promise<unknown>).catch(() => undefined);
    throw new TypeError('withNetnsSync: the function returned a promise; its async part ran outside the namespace');
  }
  return result;
}

/** Opens a namespace file; a missing one (the process exited, the pin is gone) is NotFoundError. */
function openNetns(nsPath: string): number {
  try {
    return openSync(nsPath, 'r');
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ESRCH')) throw new NotFoundError(`network namespace "${nsPath}" not found`, { cause: err });
    throw new SystemError(`open netns "${nsPath}"`, err);
  }
}

/**
 * Creates a network namespace, pins it by bind-mounting it on `pinPath` (made empty, parent
 * directories created) and brings its `lo` up. The calling thread ends where it started: it
 * unshares, mounts its new namespace, and setns back. On failure nothing is left behind.
 */
export function createPinnedNetns(pinPath: string, sys: Sys = libcSys): void {
  checkNotStranded();
  makePinFile(pinPath);
  let mounted = false;
  try {
    const home = openSync(THREAD_NETNS, 'r');
    try {
      sys.unshare(CLONE_NEWNET);
      try {
        sys.mount(THREAD_NETNS, pinPath, 'none', MS_BIND, null);
        mounted = true;
        requestSync(sys, setUp(LOOPBACK_IFINDEX, true), `set link "lo" up in netns "${pinPath}"`);
      } finally {
        returnHome(sys, home);
      }
    } finally {
      closeSync(home);
    }
  } catch (err) {
    if (mounted) ignore(() => sys.umount2(pinPath, MNT_DETACH));
    ignore(() => unlinkSync(pinPath));
    throw isTsrunError(err) ? err : new SystemError(`create netns "${pinPath}"`, err);
  }
}

/**
 * Unpins the namespace at `pinPath` and removes the file. Idempotent: an absent or unmounted
 * pin counts as deleted. The namespace itself dies once nothing else holds it (processes,
 * open descriptors, netlink sockets).
 */
export function deletePinnedNetns(pinPath: string, sys: Sys = libcSys): void {
  // A pin mounted twice (two racing creators) has stacked mounts: detach until none is left.
  for (let i = 0; i < 8; i++) {
    try {
      sys.umount2(pinPath, MNT_DETACH);
    } catch (err) {
      if (hasCode(err, 'EINVAL', 'ENOENT')) break; // not a mount point (any more), or absent
      throw new SystemError(`unmount netns pin "${pinPath}"`, err);
    }
  }
  try {
    unlinkSync(pinPath);
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw new SystemError(`remove netns pin "${pinPath}"`, err);
  }
}

/** A namespace's identity ("dev:inode" of its nsfs file) for comparing two paths or descriptors. */
export function netnsId(nsPath: string): string {
  try {
    const st = statSync(nsPath, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ESRCH')) throw new NotFoundError(`network namespace "${nsPath}" not found`, { cause: err });
    throw new SystemError(`stat netns "${nsPath}"`, err);
  }
}

/**
 * A descriptor for the namespace at `nsPath` (close-on-exec; close it with fs.closeSync), as
 * IFLA_NET_NS_FD wants: create or move a link straight into that namespace.
 */
export function openNetnsFd(nsPath: string): number {
  return openNetns(nsPath);
}

function isThenable(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function ignore(fn: () => void): void {
  try {
    fn();
  } catch {
    // best effort: the original error is the one worth reporting
  }
}

/** The empty file a pin is mounted on; refused if it exists (another pin, or a live one). */
function makePinFile(pinPath: string): void {
  mkdirPrivate(path.dirname(pinPath));
  try {
    closeSync(openSync(pinPath, 'wx'));
  } catch (err) {
    if (hasCode(err, 'EEXIST')) throw new ConflictError(`netns pin "${pinPath}" already exists`, { cause: err });
    throw new SystemError(`create netns pin "${pinPath}"`, err);
  }
}

/**
 * Pins the existing namespace at `nsPath` on `pinPath` (a bind mount, as createPinnedNetns
 * does for a new one), so it outlives the process it was reached through. Nothing is left on
 * failure.
 */
export function pinExistingNetns(nsPath: string, pinPath: string, sys: Sys = libcSys): void {
  makePinFile(pinPath);
  try {
    sys.mount(nsPath, pinPath, 'none', MS_BIND, null);
  } catch (err) {
    try {
      sys.umount2(pinPath, MNT_DETACH);
    } catch {
      // not mounted: nothing to undo
    }
    unlinkSync(pinPath);
    throw new SystemError(`pin netns "${nsPath}" on "${pinPath}"`, err);
  }
}
