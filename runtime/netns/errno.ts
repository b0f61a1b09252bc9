// Kernel errors as JavaScript errors. Both the libc calls (koffi) and the netlink replies report a
// bare errno number; this turns it into an Error whose `code` ('EEXIST') callers can test and whose
// message reads like the C library's strerror, so messages match what `ip` would print.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

const NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

// glibc's wording for the errors rtnetlink and namespace code actually meet; libuv's map (the
// fallback) words them differently ("file already exists").
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  // 11 is named EWOULDBLOCK (its alias comes last in os.constants): without it every EAGAIN built
  // libuv's whole error map to word its message (~24 us a time, on every non-blocking read that finds nothing).
  EWOULDBLOCK: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  EMSGSIZE: 'Message too long',
  EPROTONOSUPPORT: 'Protocol not supported',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ENETUNREACH: 'Network is unreachable',
  ENOBUFS: 'No buffer space available',
  ENOTCONN: 'Transport endpoint is not connected',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENOTSUP: 'Operation not supported',
  ENOTUNIQ: 'Name not unique on network',
};

/** 'EEXIST' for 17; 'E<n>' when Node does not know the number. */
export function errnoName(errno: number): string {
  return NAMES.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** The C library's message for an errno ("File exists"). */
export function strerror(errno: number): string {
  const name = errnoName(errno);
  return STRERROR[name] ?? getSystemErrorMap().get(-Math.abs(errno))?.[1] ?? `errno ${Math.abs(errno)}`;
}

/** An Error carrying the errno as `code` (like Node's own system errors) and the call that failed. */
export class ErrnoError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string, detail?: string) {
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${strerror(errno)}`);
    this.errno = Math.abs(errno);
    this.code = errnoName(errno);
    this.syscall = syscall;
    Object.defineProperty(this, 'name', { value: 'ErrnoError', enumerable: false });
  }
}

/** True when `e` is an error whose `code` is one of `codes` (works for ErrnoError and Node's fs errors). */
export function hasCode(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes(String((e as { code?: unknown }).code));
}
