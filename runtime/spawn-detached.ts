// Starts a program that outlives the caller and that no one waits for: libc's posix_spawn
// through koffi, its stdio on /dev/null, every other descriptor closed, in a session of its own.
//
// Why not node:child_process: loading it costs a cold process ~5 ms (it pulls in node:net and
// node:stream), where posix_spawn (a vfork-style clone, whatever the caller's size) costs ~0.5 ms
// including binding the calls. And why stdio on /dev/null: a runtime (runc, podman) waits for a
// hook until its stdout and stderr pipes close, so a child holding them would hold the runtime.
//
// The child is never reaped by the caller: use this only in a process that exits right after
// (the hook's and the CNI plugin's doors), whose orphans init (or the nearest subreaper) reaps.
import { libcFunction, type LibcFn as Fn } from './koffi.js';
import { ErrnoError } from './netns/errno.js';

const O_RDWR = 2;
// glibc's posix_spawnattr flags (spawn.h).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const SIGPIPE = 13;
/** sizeof(sigset_t) in glibc (1024 bits); the attribute and file-action objects are opaque and
 * smaller than these buffers (336 and 80 bytes on x86-64 and arm64). */
const SIGSET_BYTES = 128;
const ATTR_BYTES = 1024;
const ACTIONS_BYTES = 512;

interface Spawn {
  actionsInit: Fn;
  actionsDestroy: Fn;
  addOpen: Fn;
  /** glibc ≥ 2.34; undefined where missing (Node opens its own descriptors close-on-exec). */
  addCloseFrom: Fn | undefined;
  attrInit: Fn;
  attrDestroy: Fn;
  setFlags: Fn;
  setSigMask: Fn;
  setSigDefault: Fn;
  spawn: Fn;
}

let bound: Spawn | undefined;

function libc(): Spawn {
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
    addCloseFrom,
    attrInit: f('int posix_spawnattr_init(void *attr)'),
    attrDestroy: f('int posix_spawnattr_destroy(void *attr)'),
    setFlags: f('int posix_spawnattr_setflags(void *attr, short flags)'),
    setSigMask: f('int posix_spawnattr_setsigmask(void *attr, const void *set)'),
    setSigDefault: f('int posix_spawnattr_setsigdefault(void *attr, const void *set)'),
    spawn: f('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)'),
  };
  return bound;
}

/** posix_spawn's functions return an error number (0: done) rather than setting errno. */
function check(r: number, call: string, detail: string): void {
  if (r !== 0) throw new ErrnoError(r, call, detail);
}

/**
 * Starts `file` (an absolute path) with `argv` (argv[0] included) and a minimal environment, and
 * returns its pid. Throws an ErrnoError when it cannot be started (glibc reports a failed exec).
 */
export function spawnDetached(file: string, argv: readonly string[]): number {
  const c = libc();
  const actions = Buffer.alloc(ACTIONS_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  check(c.actionsInit(actions), 'posix_spawn_file_actions_init', '');
  check(c.attrInit(attr), 'posix_spawnattr_init', '');
  try {
    for (const fd of [0, 1, 2]) check(c.addOpen(actions, fd, '/dev/null', O_RDWR, 0), 'posix_spawn_file_actions_addopen', `(fd ${fd})`);
    if (c.addCloseFrom) check(c.addCloseFrom(actions, 3), 'posix_spawn_file_actions_addclosefrom_np', '');
    // Node ignores SIGPIPE, and an ignored signal stays ignored across exec: the child gets the
    // default back, and no signal blocked.
    const defaults = Buffer.alloc(SIGSET_BYTES);
    defaults[(SIGPIPE - 1) >> 3]! |= 1 << ((SIGPIPE - 1) & 7);
    check(c.setSigDefault(attr, defaults), 'posix_spawnattr_setsigdefault', '');
    check(c.setSigMask(attr, Buffer.alloc(SIGSET_BYTES)), 'posix_spawnattr_setsigmask', '');
    // A session of its own: a signal to the caller's process group (a terminal's ^C to the
    // runtime) does not reach it.
    check(c.setFlags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK), 'posix_spawnattr_setflags', '');
    const pid = [0];
    check(c.spawn(pid, file, actions, attr, [...argv, null], ['LC_ALL=C', null]), 'posix_spawn', `"${file}"`);
    return pid[0]!;
  } finally {
    c.actionsDestroy(actions);
    c.attrDestroy(attr);
  }
}
