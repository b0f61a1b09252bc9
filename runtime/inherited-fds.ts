// Descriptors this process inherited open and inheritable, made close-on-exec before it starts a
// program that outlives it (conmon, the DNS resolver).
//
// Why: Node marks the descriptors it inherits close-on-exec as it starts (libuv's
// uv_disable_stdio_inheritance), but only 0-15 and, above those, up to the first that is not open:
// one above a gap stays inheritable (`exec 200>lock; flock 200; tsrun run -d …` in a script, a
// runner's pipe at a high number). node:child_process closes nothing else in the child, so conmon
// and the resolver, which run on long after the command that started them, kept it open: the
// caller's lock was never released and its pipe never saw its end. (Programs tsrun waits for, such
// as `runc run`, end with it; runc marks everything above stdio close-on-exec for the container.)
import { readdirSync, readFileSync } from 'node:fs';
import { libcFunction } from './koffi.js';

/** O_CLOEXEC as /proc/<pid>/fdinfo's "flags" shows it (octal) for a close-on-exec descriptor. */
const O_CLOEXEC = 0o2000000;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
/** Node has made 0-15 close-on-exec itself: only the descriptors above are looked at. */
const FIRST_UNCHECKED = 16;

/** Whether /proc/<pid>/fdinfo/<fd>'s text describes an inheritable descriptor. */
export function inheritableByFdinfo(text: string): boolean {
  const m = /^flags:\s*([0-7]+)$/m.exec(text);
  return m !== null && (parseInt(m[1]!, 8) & O_CLOEXEC) === 0;
}

/** This process's descriptors above 15 that are not close-on-exec (none in the usual case: one
 * listing of /proc/self/fd and a read of Node's own few above 15). */
export function inheritableFds(fdDir = '/proc/self/fd', fdinfoDir = '/proc/self/fdinfo'): number[] {
  let names: string[];
  try {
    names = readdirSync(fdDir);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd < FIRST_UNCHECKED) continue;
    try {
      if (inheritableByFdinfo(readFileSync(`${fdinfoDir}/${name}`, 'utf8'))) out.push(fd);
    } catch {
      // closed since the listing (the listing's own descriptor)
    }
  }
  return out;
}

/** Marks them close-on-exec (koffi is loaded only when there is one). Best effort: where koffi
 * cannot be loaded they stay as they were, as before. */
export function closeInheritedOnExec(): void {
  const fds = inheritableFds();
  if (fds.length === 0) return;
  try {
    const fcntl = libcFunction('int fcntl(int fd, int cmd, ...)');
    for (const fd of fds) {
      const flags = fcntl(fd, F_GETFD);
      if (flags >= 0) fcntl(fd, F_SETFD, 'int', flags | FD_CLOEXEC);
    }
  } catch {
    // no koffi here
  }
}
