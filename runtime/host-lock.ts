// This host's readers-writer lock when it lives on this machine (the run directory): POSIX record
// locks (fcntl F_SETLK) on one long-lived file, instead of a Store key per acquisition.
//
// Why: StoreLock (locks.ts) over the local store wrote a key per acquisition (a temp file, a
// rename, an unlink: a new inode each time) and read the writer's key; an attach and its detach
// paid that twice, and on ext4 creating an inode in a churned directory takes 0.1-0.8 ms. A record
// lock is a few fcntl calls on a file that exists already: no inode, no directory entry. It is
// also released by the kernel when its holder dies, however it dies: no stale holder to recognize
// and break. The cluster's lock (locks across hosts, in etcd) stays a StoreLock.
//
// Two one-byte ranges of the file:
//   GATE  a writer holds it exclusive from the moment it asks until it is done; a reader holds it
//         shared only for the instant of taking MAIN. So a writer that waits closes the gate and
//         new readers wait behind it (it is not starved), as StoreLock's announced writer does.
//   MAIN  readers hold it shared for the whole attach or detach; the writer exclusive.
// Every attempt is non-blocking (F_SETLK), retried with the same backoff, timeout, error and onWait
// report as StoreLock's: a blocking wait would stall the event loop, and with it the other
// attaches of this process whose release the wait may depend on.
//
// Record locks belong to the process, not to a descriptor: a process never conflicts with itself,
// and asking for a write lock where it holds a read lock converts it in one step (or fails and
// leaves the read lock as it was). So the attaches of one process share one read lock (counted
// here), and gc holding it exclusive can detach through the engine (shared inside exclusive is a
// no-op, as with StoreLock). The flip side: closing any descriptor of the file drops all of the
// process's locks on it, so the file is opened once per process, here, and never closed; and one
// file reached by two paths (a symlinked run directory) is one hold, found by device and inode.
import { fstatSync, mkdirSync, openSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { SystemError } from '../config/errors.js';
import { ErrnoError } from './netns/errno.js';
import { F_GETLK, F_SETLK, fcntlRecordLock } from './netns/sys.js';
import { lockWaiter, type LockOptions, type ReadWriteLock, type Release } from './locks.js';

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export type LockType = typeof F_RDLCK | typeof F_WRLCK | typeof F_UNLCK;

/** The byte ranges (see the header). */
export const GATE = 0;
export const MAIN = 1;

/** The record-lock calls this module makes (a fake one in unit tests). */
export interface RecordLocks {
  open(file: string): number;
  /** Which file `fd` is (device and inode), so that one file reached by two paths is held once;
   * absent (unit tests' fakes): the path alone names it. */
  identity?(fd: number): string;
  /** Sets or clears the lock on one byte without waiting; false when another process's conflicts. */
  set(fd: number, type: LockType, byte: number): boolean;
  /** The pid of a process whose lock conflicts with `type` on that byte, or undefined. */
  holder(fd: number, type: LockType, byte: number): number | undefined;
}

const EAGAIN = 11;
const EACCES = 13;

/** One process's hold on one lock file, shared by every FileLock object naming it. */
interface ProcessHold {
  fd: number;
  /** Shared acquisitions not yet released. */
  readers: number;
  /** Exclusive acquisitions not yet released (nested ones count too). */
  writers: number;
  /** An exclusive acquisition of this process is waiting or holding: the gate is ours. */
  gate: boolean;
}

/** Per process (per RecordLocks: unit tests give each simulated process its own), per file: by
 * path, and by identity ("#dev:ino") for the same file reached by another path. */
const holds = new WeakMap<RecordLocks, Map<string, ProcessHold>>();

export class FileLock implements ReadWriteLock {
  readonly file: string;

  constructor(
    file: string,
    readonly name: string,
    private readonly opts: LockOptions = {},
    private readonly sys: RecordLocks = libcRecordLocks,
  ) {
    this.file = path.resolve(file);
  }

  async shared(): Promise<Release> {
    const hold = this.hold();
    // This very process holds it exclusive (gc cleaning up a container through the engine).
    if (hold.writers > 0) return async () => undefined;
    const waiter = lockWaiter(this.name, this.opts);
    for (;;) {
      // An exclusive acquisition of this process that is waiting: wait behind it like any reader
      // (taking the gate shared here would convert this process's own exclusive gate).
      if (!hold.gate && hold.writers === 0) {
        if (this.sys.set(hold.fd, F_RDLCK, GATE)) {
          // No writer holds the gate, so none holds MAIN: this cannot fail, unless another
          // process holds MAIN outside the protocol.
          const got = hold.readers > 0 || this.sys.set(hold.fd, F_RDLCK, MAIN);
          this.sys.set(hold.fd, F_UNLCK, GATE);
          if (got) {
            hold.readers++;
            return once(async () => this.releaseShared(hold));
          }
        }
      }
      if (hold.writers > 0) return async () => undefined; // became exclusive here while we waited
      await waiter(hold.gate ? 'this process' : (this.heldBy(hold, GATE, F_RDLCK) ?? this.heldBy(hold, MAIN, F_RDLCK) ?? 'another process'));
    }
  }

  async exclusive(): Promise<Release> {
    const hold = this.hold();
    if (hold.writers > 0) {
      hold.writers++;
      return once(async () => this.releaseExclusive(hold));
    }
    const waiter = lockWaiter(this.name, this.opts);
    // The gate first: from here on, no new reader of any process gets in.
    while (hold.gate || !this.sys.set(hold.fd, F_WRLCK, GATE)) {
      if (hold.writers > 0) {
        hold.writers++;
        return once(async () => this.releaseExclusive(hold));
      }
      await waiter(hold.gate ? 'this process' : (this.heldBy(hold, GATE, F_WRLCK) ?? 'another process'));
    }
    hold.gate = true;
    try {
      // Then MAIN, once the readers of other processes are done (this process's own never
      // conflict: their read lock is converted in place).
      while (!this.sys.set(hold.fd, F_WRLCK, MAIN)) await waiter(this.heldBy(hold, MAIN, F_WRLCK) ?? 'shared holder(s)');
    } catch (err) {
      hold.gate = false;
      this.sys.set(hold.fd, F_UNLCK, GATE);
      throw err;
    }
    hold.writers = 1;
    return once(async () => this.releaseExclusive(hold));
  }

  private releaseShared(hold: ProcessHold): void {
    hold.readers--;
    if (hold.readers === 0 && hold.writers === 0) this.sys.set(hold.fd, F_UNLCK, MAIN);
  }

  private releaseExclusive(hold: ProcessHold): void {
    if (--hold.writers > 0) return;
    // Back to what this process's remaining readers hold, if any (a conversion: never waits).
    this.sys.set(hold.fd, hold.readers > 0 ? F_RDLCK : F_UNLCK, MAIN);
    hold.gate = false;
    this.sys.set(hold.fd, F_UNLCK, GATE);
  }

  /** This process's hold on the file, opening it (and its directory) on first use. */
  private hold(): ProcessHold {
    let files = holds.get(this.sys);
    if (!files) holds.set(this.sys, (files = new Map()));
    let hold = files.get(this.file);
    if (!hold) {
      const fd = this.sys.open(this.file);
      // The file may already be held under another path (a symlinked run directory): the locks
      // are the process's on the file, so a second hold's unlock would drop the first's. The
      // extra descriptor stays open (closing it would drop them all): one per path, never more.
      const id = this.sys.identity ? `#${this.sys.identity(fd)}` : undefined;
      hold = (id !== undefined ? files.get(id) : undefined) ?? { fd, readers: 0, writers: 0, gate: false };
      files.set(this.file, hold);
      if (id !== undefined) files.set(id, hold);
    }
    return hold;
  }

  private heldBy(hold: ProcessHold, byte: number, type: LockType): string | undefined {
    const pid = this.sys.holder(hold.fd, type, byte);
    return pid === undefined ? undefined : `process ${pid}`;
  }

}

/** A release that does its work once, however often it is called. */
function once(fn: () => Promise<void>): Release {
  let done = false;
  return async () => {
    if (done) return;
    done = true;
    await fn();
  };
}

/** Record locks as this machine's kernel takes them: struct flock of 64-bit Linux. */
export const libcRecordLocks: RecordLocks = {
  open(file) {
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      // Read and write: a read lock needs the one, a write lock the other.
      return openSync(file, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new SystemError(`open the lock file ${file}`, e);
    }
  },
  identity(fd) {
    const st = fstatSync(fd, { bigint: true });
    return `${st.dev}:${st.ino}`;
  },
  set(fd, type, byte) {
    try {
      fcntlRecordLock(fd, F_SETLK, flock(type, byte));
      return true;
    } catch (e) {
      // EAGAIN (named EWOULDBLOCK here) or EACCES, as POSIX allows either for a conflict.
      if (e instanceof ErrnoError && (e.errno === EAGAIN || e.errno === EACCES)) return false;
      throw e;
    }
  },
  holder(fd, type, byte) {
    const f = flock(type, byte);
    fcntlRecordLock(fd, F_GETLK, f);
    return f.readInt16LE(0) === F_UNLCK ? undefined : f.readInt32LE(24);
  },
};

/** struct flock { short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid; } */
function flock(type: LockType, byte: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeInt16LE(type, 0);
  b.writeInt16LE(0, 2); // SEEK_SET
  b.writeBigInt64LE(BigInt(byte), 8);
  b.writeBigInt64LE(1n, 16);
  return b;
}

export { recordLocksWork } from './record-locks-abi.js';
