// The few libc calls Node does not offer: entering and creating namespaces, bind mounts, and raw
// netlink sockets for synchronous exchanges (netlink/sync-socket.ts, netlink/sync.ts). They sit behind the small `Sys` interface so
// namespace logic can be unit-tested with a fake that records the calls (youki's Syscall trait).
//
// libc is loaded through koffi on first use, not at import: the hook's start-up budget is tight
// and most stages never switch namespaces.
import { libcFunction, loadKoffi, type Koffi, type LibcFn as Fn } from '../koffi.js';
import { ErrnoError } from './errno.js';

export const CLONE_NEWNET = 0x4000_0000;
export const MS_BIND = 0x1000;
export const MNT_DETACH = 0x2;
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o200_0000;
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;
export const MSG_DONTWAIT = 0x40;

/** Every method throws an ErrnoError (with `code`, e.g. 'EINVAL') when the call fails. */
export interface Sys {
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** socket(2); returns the new descriptor. */
  socket(domain: number, type: number, protocol: number): number;
  /** send(2); returns the bytes sent. */
  send(fd: number, buf: Buffer, flags: number): number;
  /** recv(2) into `buf`; returns the length of the datagram (may exceed buf with MSG_TRUNC). */
  recv(fd: number, buf: Buffer, flags: number): number;
  /** poll(2) on one descriptor; returns its revents (0: timed out). */
  poll(fd: number, events: number, timeoutMs: number): number;
  close(fd: number): void;
}

interface Bindings {
  koffi: Koffi;
  setns: Fn;
  unshare: Fn;
  mount: Fn;
  umount2: Fn;
  socket: Fn;
  send: Fn;
  recv: Fn;
  poll: Fn;
  close: Fn;
  fcntl: Fn;
}

let bindings: Bindings | undefined;

function libc(): Bindings {
  if (bindings) return bindings;
  // Synchronous (an `await import()` could not run inside a namespace switch) and lazy.
  const koffi = loadKoffi();
  const f = libcFunction;
  bindings = {
    koffi,
    setns: f('int setns(int fd, int nstype)'),
    unshare: f('int unshare(int flags)'),
    mount: f('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: f('int umount2(const char *target, int flags)'),
    socket: f('int socket(int domain, int type, int protocol)'),
    send: f('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
    recv: f('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
    poll: f('int poll(void *fds, unsigned long nfds, int timeout)'),
    close: f('int close(int fd)'),
    // Variadic in C: the third argument is given with its type at each call (fcntlRecordLock).
    fcntl: f('int fcntl(int fd, int cmd, ...)'),
  };
  return bindings;
}

/** Runs one libc call; a -1 result becomes an ErrnoError read from koffi's saved errno. */
function call(name: keyof Omit<Bindings, 'koffi'>, detail: string, ...args: unknown[]): number {
  const b = libc();
  const r = b[name](...args);
  if (r < 0) throw new ErrnoError(b.koffi.errno(), name, detail);
  return r;
}

/** The real thing. */
export const libcSys: Sys = {
  setns: (fd, nstype) => void call('setns', `(fd ${fd})`, fd, nstype),
  unshare: (flags) => void call('unshare', `(0x${flags.toString(16)})`, flags),
  mount: (source, target, fstype, flags, data) => void call('mount', `"${target}"`, source, target, fstype, flags, data),
  umount2: (target, flags) => void call('umount2', `"${target}"`, target, flags),
  socket: (domain, type, protocol) => call('socket', '', domain, type, protocol),
  send: (fd, buf, flags) => call('send', '', fd, buf, buf.length, flags),
  recv: (fd, buf, flags) => call('recv', '', fd, buf, buf.length, flags),
  poll: (fd, events, timeoutMs) => {
    // struct pollfd { int fd; short events; short revents; }
    const pfd = Buffer.alloc(8);
    pfd.writeInt32LE(fd, 0);
    pfd.writeInt16LE(events, 4);
    return call('poll', '', pfd, 1, timeoutMs) === 0 ? 0 : pfd.readInt16LE(6);
  },
  close: (fd) => void call('close', '', fd),
};

export const F_GETLK = 5;
export const F_SETLK = 6;

/**
 * fcntl(fd, cmd, struct flock *) for the record-lock commands (F_GETLK, F_SETLK): `flock` is the
 * 32-byte struct flock of 64-bit Linux, read and, for F_GETLK, written back by the kernel.
 * Throws an ErrnoError (EAGAIN/EACCES: a conflicting lock) when the call fails.
 */
export function fcntlRecordLock(fd: number, cmd: number, flock: Buffer): void {
  call('fcntl', `(fd ${fd}, cmd ${cmd})`, fd, cmd, 'void *', flock);
}
