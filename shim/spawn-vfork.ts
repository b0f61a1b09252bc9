// Starts runc for a run that has already loaded koffi (one that wired a network) through libc's
// posix_spawnp instead of Node's process handle: the same child, without fork's copy of tsrun's
// address space.
//
// Why: libuv (1.46, Node 20) starts a child with fork(), which copies the page tables of the whole
// Node process (~50 MB resident once the engine has run) and leaves every page copy-on-write, so
// the parent's next write to each page (its teardown) faults. glibc's posix_spawn starts the child
// with clone(CLONE_VM | CLONE_VFORK): nothing is copied, and it reports an exec failure (ENOENT,
// EACCES) as its return value. Measured in a process of that size (node with koffi loaded, /bin/true,
// 30 alternated calls): the spawn call 1.5-1.7 ms through the process handle, 0.19-0.24 ms here.
//
// The child is set up as libuv sets up one with inherited stdio (uv__process_child_init): every
// signal's disposition reset to the default (Node ignores SIGPIPE, and an ignored signal survives
// exec), an empty signal mask, stdin/stdout/stderr in blocking mode (libuv clears O_NONBLOCK on
// them in the child, i.e. on the descriptions the parent shares; here the parent clears it before
// the spawn, to the same effect), the same environment, working directory, process group and
// session; every other descriptor tsrun holds is close-on-exec, as with libuv. The end is seen
// through SIGCHLD: a listener asks waitpid(pid, WNOHANG) for this child only (libuv's own
// handler reaps only the children it started), so no thread waits for it.
//
// Used only where koffi is already loaded (loading it costs more than fork does); anything that
// is not as expected (no koffi, a function missing) returns undefined, and the caller starts the
// child through the process handle as before.
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { blockingStdio, koffiLoaded, libcFunction, loadKoffi, type LibcFn } from '../runtime/koffi.js';
import { posixSpawnCalls, type PosixSpawnCalls } from '../runtime/spawn-detached.js';
import type { InheritingChild } from './spawn-inherit.js';

// glibc's <spawn.h> flags and <sys/wait.h> values (Linux, every architecture koffi is used on).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const WNOHANG = 1;
const EINTR = 4;
const ECHILD = 10;
/** glibc's posix_spawnattr_t is 336 bytes, posix_spawn_file_actions_t 80 and sigset_t 128 on
 * 64-bit Linux; room to spare. */
const ATTR_BYTES = 1024;
const ACTIONS_BYTES = 256;
const SIGSET_BYTES = 256;

interface Libc extends PosixSpawnCalls {
  waitpid: LibcFn;
  errno: () => number;
}

let libc: Libc | null | undefined;

function bindings(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    const koffi = loadKoffi();
    libc = {
      ...posixSpawnCalls(),
      waitpid: libcFunction('int waitpid(int pid, _Out_ int *status, int options)'),
      errno: () => koffi.errno(),
    };
  } catch {
    libc = null;
  }
  return libc;
}

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** A spawned child's end from waitpid's status: exit code or signal, as ChildProcess reports them. */
export function decodeWaitStatus(status: number): { code: number | null; signal: NodeJS.Signals | null } | undefined {
  const termsig = status & 0x7f;
  if (termsig === 0) return { code: (status >> 8) & 0xff, signal: null }; // WIFEXITED
  if (termsig !== 0x7f) return { code: null, signal: signalNames.get(termsig) ?? (`SIG${termsig}` as NodeJS.Signals) }; // WIFSIGNALED
  return undefined; // stopped or continued: not an end (never asked for: no WUNTRACED)
}

class SpawnedChild extends EventEmitter implements InheritingChild {
  pid: number | undefined;
  private exited = false;
  private readonly onSigchld = () => this.reap();
  /** Signal listeners do not keep Node's event loop alive (a process handle does): this does,
   * until the child is reaped. */
  private alive: NodeJS.Timeout | undefined;

  constructor(private readonly c: Libc, file: string, args: readonly string[]) {
    super();
    const envp = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    const attr = Buffer.alloc(ATTR_BYTES);
    const actions = Buffer.alloc(ACTIONS_BYTES);
    // Every signal, glibc's own two included (SIGCANCEL and SIGSETXID, 32 and 33, which
    // sigfillset leaves out): posix_spawn's child sets a signal the parent handles and that is not
    // in this set to SIG_IGN if it is one of those two, and SIG_IGN survives exec (runc, then the
    // container, would start with signal 32 ignored; fork and exec leave it at its default).
    const all = Buffer.alloc(SIGSET_BYTES, 0xff);
    const none = Buffer.alloc(SIGSET_BYTES); // zeroed: the empty set
    let err = c.attrInit(attr) || c.actionsInit(actions);
    if (err === 0) {
      try {
        err = c.setSigDefault(attr, all) || c.setSigMask(attr, none) || c.setFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        // Node marks its stdin, stdout and stderr close-on-exec; a dup2 onto itself clears that
        // in the child (POSIX 2017, glibc 2.29), as libuv does for inherited stdio.
        for (const fd of [0, 1, 2]) err ||= c.addDup2(actions, fd, fd);
        if (err === 0) {
          // libuv clears O_NONBLOCK on a child's stdin, stdout and stderr: they are the parent's descriptions.
          blockingStdio();
          // Listening before the child exists: its SIGCHLD cannot come before the listener.
          process.on('SIGCHLD', this.onSigchld);
          const pid = [0];
          err = c.spawnp(pid, file, actions, attr, [file, ...args, null], [...envp, null]);
          if (err === 0) {
            this.pid = pid[0];
            this.alive = setInterval(() => {}, 1 << 30);
          } else process.off('SIGCHLD', this.onSigchld);
        }
      } finally {
        c.attrDestroy(attr);
        c.actionsDestroy(actions);
      }
    }
    if (err !== 0) {
      // As ChildProcess: the failure is an 'error' event, after the caller has subscribed.
      this.exited = true;
      const code = errnoName(err);
      const error = Object.assign(new Error(`spawn ${file} ${code}`), { errno: -err, code, syscall: `spawn ${file}`, path: file, spawnargs: [...args] });
      process.nextTick(() => this.emit('error', error));
      return;
    }
  }

  private reap(): void {
    if (this.exited || this.pid === undefined) return;
    const status = [0];
    let r: number;
    do r = this.c.waitpid(this.pid, status, WNOHANG);
    while (r < 0 && this.c.errno() === EINTR);
    if (r === 0) return; // still running (another child's SIGCHLD)
    this.exited = true;
    process.off('SIGCHLD', this.onSigchld);
    clearInterval(this.alive);
    // ECHILD: someone else reaped it (nothing in tsrun does); its end is unknown, as a kill by SIGKILL.
    const end = r < 0 ? (this.c.errno() === ECHILD ? { code: null, signal: 'SIGKILL' as NodeJS.Signals } : undefined) : decodeWaitStatus(status[0]!);
    if (end === undefined) {
      this.emit('error', Object.assign(new Error(`waitpid ${errnoName(this.c.errno())}`), { code: errnoName(this.c.errno()), syscall: 'waitpid' }));
      return;
    }
    this.emit('exit', end.code, end.signal);
  }

  kill(signal: NodeJS.Signals): boolean {
    // After the reap the pid may be another process's: nothing is sent (ChildProcess does the same).
    if (this.exited || this.pid === undefined) return false;
    if (constants.signals[signal] === undefined) throw new TypeError(`unknown signal ${signal}`);
    try {
      process.kill(this.pid, signal);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ESRCH') process.nextTick(() => this.emit('error', err));
      return false;
    }
  }
}

function errnoName(err: number): string {
  return Object.entries(constants.errno).find(([, n]) => n === err)?.[0] ?? `E${err}`;
}

/** `file args…` with tsrun's stdio through posix_spawnp, or undefined when koffi is not loaded
 * (or not usable): then the caller starts it through Node's process handle. */
export function spawnInheritVfork(file: string, args: readonly string[]): InheritingChild | undefined {
  if (process.env.TSRUN_SPAWN === 'child_process' || process.env.TSRUN_SPAWN === 'process_wrap' || !koffiLoaded()) return undefined;
  const c = bindings();
  return c === null ? undefined : new SpawnedChild(c, file, args);
}
