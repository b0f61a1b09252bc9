// Descriptors this process inherited open and inheritable, closed before it starts a program that
// outlives it (conmon, the DNS resolver).
//
// Why: Node marks the descriptors it inherits close-on-exec as it starts (libuv's
// uv_disable_stdio_inheritance), but only 0-15 and, above those, up to the first that is not open:
// one above a gap stays inheritable (`exec 200>lock; flock 200; tsrun run -d …` in a script, a
// runner's pipe at a high number). node:child_process closes nothing else in the child, so conmon
// and the resolver, which run on long after the command that started them, kept it open: the
// caller's lock was never released and its pipe never saw its end. (Programs tsrun waits for, such
// as `runc run`, end with it; runc marks everything above stdio close-on-exec for the container.)
//
// Closed, not marked close-on-exec: tsrun never uses a descriptor it inherited above 15 (nothing
// of tsrun's takes descriptors from its caller: no --preserve-fds, no socket activation), and its
// own are all close-on-exec (libuv opens every file, pipe and socket with O_CLOEXEC), so the only
// difference is in this process, which closes its copy early. The caller's copy is untouched: a
// flock() or an OFD lock belongs to the open file and stays while the caller holds it, and this
// process holds no POSIX record lock of the caller's (they are not inherited across fork). Marking
// them needed fcntl(2), which Node does not offer: koffi was loaded for it, ~1.5-2 ms of CPU of a
// `run -d` whose caller had one such descriptor (a runner's, a test harness's pipe at 251).
import { closeSync, readdirSync, readFileSync } from 'node:fs';

/** O_CLOEXEC as /proc/<pid>/fdinfo's "flags" shows it (octal) for a close-on-exec descriptor. */
const O_CLOEXEC = 0o2000000;
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

/** Closes them (none in the usual case: one listing of /proc/self/fd). The descriptor of Node's IPC
 * channel, when this process was forked with one (NODE_CHANNEL_FD), is kept: it is Node's. */
export function closeInherited(env: NodeJS.ProcessEnv = process.env): void {
  const channel = env.NODE_CHANNEL_FD !== undefined ? Number(env.NODE_CHANNEL_FD) : -1;
  for (const fd of inheritableFds()) {
    if (fd === channel) continue;
    try {
      closeSync(fd);
    } catch {
      // closed meanwhile
    }
  }
}
