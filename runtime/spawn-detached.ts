// Starts a program that outlives the caller and that no one waits for: libc's posix_spawn
// through koffi, its stdio on /dev/null, every other descriptor closed, in a session of its own.
//
// Why not node:child_process: loading it costs a cold process ~5 ms (it pulls in node:net and
// node:stream), where posix_spawn (a vfork-style clone, whatever the caller's size) costs ~0.5 ms
// including binding the calls. And why stdio on /dev/null: a runtime (runc, podman) waits for a
// hook until its stdout and stderr pipes close, so a child holding them would hold the runtime.
//
// The child is not reaped by libuv (it reaps only the children it started): use this in a process
// that exits right after (the hook's and the CNI plugin's doors), whose orphans init (or the
// nearest subreaper) reaps, or reap it with reapIfEnded (run -d's conmon). Until it is reaped, a
// child that has ended stays a zombie, so its pid cannot be another process's (a kill is safe).
//
// run -d starts conmon this way, with pipes of its own on descriptors 2-4 (`fds`, `env`, `search`
// below, pipeCloexec): node:child_process, node:net and node:stream (~3 ms of a cold process), the
// fork of the whole Node process and the three sockets around the pipes cost a cold `run -d`
// ~8 ms of CPU more than koffi and posix_spawn (shim/lifecycle/conmon.ts).
import { libcFunction, loadKoffi, type LibcFn as Fn } from './koffi.js';
import { ErrnoError } from './netns/errno.js';

const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
// glibc's posix_spawnattr flags (spawn.h).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
/** sizeof(sigset_t) in glibc (1024 bits); the attribute and file-action objects are opaque and
 * smaller than these buffers (336 and 80 bytes on x86-64 and arm64). */
const SIGSET_BYTES = 128;
const ATTR_BYTES = 1024;
const ACTIONS_BYTES = 512;

/** posix_spawn's calls, bound once per process (this module's and shim/spawn-vfork.ts's). */
export interface PosixSpawnCalls {
  actionsInit: Fn;
  actionsDestroy: Fn;
  addOpen: Fn;
  addDup2: Fn;
  /** glibc ≥ 2.34; undefined where missing (Node opens its own descriptors close-on-exec). */
  addCloseFrom: Fn | undefined;
  attrInit: Fn;
  attrDestroy: Fn;
  setFlags: Fn;
  setSigMask: Fn;
  setSigDefault: Fn;
  spawn: Fn;
  spawnp: Fn;
}

let bound: PosixSpawnCalls | undefined;

export function posixSpawnCalls(): PosixSpawnCalls {
  if (bound) return bound;
  const f = libcFunction;
  let addCloseFrom: Fn | undefined;
  try {
    addCloseFrom = f('int posix_spawn_file_actions_addclosefrom_np(void *actions, int from)');
  } catch {
    addCloseFrom = undefined;
  }
  bound = {
    actionsInit: f('int posix_spawn_file_actions_init(void *actions)'),
    actionsDestroy: f('int posix_spawn_file_actions_destroy(void *actions)'),
    addOpen: f('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, unsigned int mode)'),
    addDup2: f('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)'),
    addCloseFrom,
    attrInit: f('int posix_spawnattr_init(void *attr)'),
    attrDestroy: f('int posix_spawnattr_destroy(void *attr)'),
    setFlags: f('int posix_spawnattr_setflags(void *attr, short flags)'),
    setSigMask: f('int posix_spawnattr_setsigmask(void *attr, const void *set)'),
    setSigDefault: f('int posix_spawnattr_setsigdefault(void *attr, const void *set)'),
    spawn: f('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)'),
    spawnp: f('int posix_spawnp(_Out_ int *pid, const char *file, void *actions, void *attr, const char **argv, const char **envp)'),
  };
  return bound;
}

/** posix_spawn's functions return an error number (0: done) rather than setting errno. */
function check(r: number, call: string, detail: string): void {
  if (r !== 0) throw new ErrnoError(r, call, detail);
}

export interface DetachedSpawnOptions {
  /** The child's descriptors 0..n-1 (n ≥ 3): a descriptor of this process dup2'd there, or
   * undefined for /dev/null. Each given descriptor must be n or above (none is overwritten before
   * it is copied). Default: stdio on /dev/null. Every descriptor from n on is closed in the child. */
  fds?: readonly (number | undefined)[];
  /** Its environment, as `KEY=value` strings. Default: LC_ALL=C alone. */
  env?: readonly string[];
  /** `file` looked up in PATH (the caller's) when it has no slash, as execvp does. */
  search?: boolean;
}

/**
 * Starts `file` (an absolute path, or a name with `search`) with `argv` (argv[0] included) and
 * returns its pid. Throws an ErrnoError when it cannot be started (glibc reports a failed exec).
 */
export function spawnDetached(file: string, argv: readonly string[], o: DetachedSpawnOptions = {}): number {
  const fds = o.fds ?? [undefined, undefined, undefined];
  if (fds.length < 3 || fds.some((fd) => fd !== undefined && fd < fds.length)) throw new RangeError(`spawnDetached: descriptors ${fds.join(',')}`);
  const c = posixSpawnCalls();
  const actions = Buffer.alloc(ACTIONS_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  check(c.actionsInit(actions), 'posix_spawn_file_actions_init', '');
  check(c.attrInit(attr), 'posix_spawnattr_init', '');
  try {
    for (const [target, source] of fds.entries()) {
      if (source === undefined) check(c.addOpen(actions, target, '/dev/null', O_RDWR, 0), 'posix_spawn_file_actions_addopen', `(fd ${target})`);
      // dup2 clears close-on-exec on the copy (the source stays close-on-exec in both processes).
      else check(c.addDup2(actions, source, target), 'posix_spawn_file_actions_adddup2', `(fd ${source} to ${target})`);
    }
    if (c.addCloseFrom) check(c.addCloseFrom(actions, fds.length), 'posix_spawn_file_actions_addclosefrom_np', '');
    // Node ignores SIGPIPE, and an ignored signal stays ignored across exec (a caller started
    // with nohup, or in the background of a script, ignores SIGHUP or SIGINT and SIGQUIT): the
    // child gets the default of every signal back, as libuv gives a child of Node's, and no
    // signal blocked. Every signal, glibc's own two included (32 and 33): posix_spawn's child sets
    // those to SIG_IGN unless they are in this set, and SIG_IGN survives exec (conmon, then runc
    // and the container, would start with them ignored), as shim/spawn-vfork.ts explains.
    check(c.setSigDefault(attr, Buffer.alloc(SIGSET_BYTES, 0xff)), 'posix_spawnattr_setsigdefault', '');
    check(c.setSigMask(attr, Buffer.alloc(SIGSET_BYTES)), 'posix_spawnattr_setsigmask', '');
    // A session of its own: a signal to the caller's process group (a terminal's ^C to the
    // runtime) does not reach it.
    check(c.setFlags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK), 'posix_spawnattr_setflags', '');
    const pid = [0];
    const spawn = o.search ? c.spawnp : c.spawn;
    check(spawn(pid, file, actions, attr, [...argv, null], [...(o.env ?? ['LC_ALL=C']), null]), o.search ? 'posix_spawnp' : 'posix_spawn', `"${file}"`);
    return pid[0]!;
  } finally {
    c.actionsDestroy(actions);
    c.attrDestroy(attr);
  }
}

/** Whether posix_spawn closes every descriptor above the child's own (glibc ≥ 2.34); without it
 * the caller closes what it inherited itself (runtime/inherited-fds.ts). */
export function spawnClosesTheRest(): boolean {
  return posixSpawnCalls().addCloseFrom !== undefined;
}

let pipe2: Fn | undefined;

/** A pipe, both ends close-on-exec and blocking: [read end, write end]. */
export function pipeCloexec(): [number, number] {
  pipe2 ??= libcFunction('int pipe2(void *fds, int flags)');
  const fds = Buffer.alloc(8);
  const r = pipe2(fds, O_CLOEXEC);
  if (r !== 0) throw new ErrnoError(loadKoffi().errno(), 'pipe2', '');
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

let waitpid: Fn | undefined;
const WNOHANG = 1;

/** Reaps `pid`, a child started by spawnDetached, if it has ended (waitpid with WNOHANG): true
 * once reaped, after which its pid may be reused and must not be signalled. */
export function reapIfEnded(pid: number): boolean {
  waitpid ??= libcFunction('int waitpid(int pid, void *status, int options)');
  return waitpid(pid, Buffer.alloc(4), WNOHANG) === pid;
}
