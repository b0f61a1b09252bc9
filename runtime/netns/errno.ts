// Kernel errors as JavaScript errors. Both the libc calls (koffi) and the netlink replies report a
// bare errno number; this turns it into an Error whose `code` ('EEXIST') callers can test and whose
// message reads like the C library's strerror, so messages match what `ip` would print.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/**
 * Node's os.constants.errno on Linux x64 and arm64 (both number errors as the kernel's asm-generic
 * headers do), as number:name with the name os.constants gives last for a number (EWOULDBLOCK for
 * 11). Loading node:os and mapping its table cost every process that loads this module ~0.35 ms
 * (a CNI DEL meets no errno at all); a unit test checks the table against os.constants.
 */
export const LINUX_GENERIC_ERRNO_NAMES = '1:EPERM 2:ENOENT 3:ESRCH 4:EINTR 5:EIO 6:ENXIO 7:E2BIG 8:ENOEXEC 9:EBADF 10:ECHILD 11:EWOULDBLOCK 12:ENOMEM 13:EACCES 14:EFAULT 16:EBUSY 17:EEXIST 18:EXDEV 19:ENODEV 20:ENOTDIR 21:EISDIR 22:EINVAL 23:ENFILE 24:EMFILE 25:ENOTTY 26:ETXTBSY 27:EFBIG 28:ENOSPC 29:ESPIPE 30:EROFS 31:EMLINK 32:EPIPE 33:EDOM 34:ERANGE 35:EDEADLK 36:ENAMETOOLONG 37:ENOLCK 38:ENOSYS 39:ENOTEMPTY 40:ELOOP 42:ENOMSG 43:EIDRM 60:ENOSTR 61:ENODATA 62:ETIME 63:ENOSR 67:ENOLINK 71:EPROTO 72:EMULTIHOP 74:EBADMSG 75:EOVERFLOW 84:EILSEQ 88:ENOTSOCK 89:EDESTADDRREQ 90:EMSGSIZE 91:EPROTOTYPE 92:ENOPROTOOPT 93:EPROTONOSUPPORT 95:EOPNOTSUPP 97:EAFNOSUPPORT 98:EADDRINUSE 99:EADDRNOTAVAIL 100:ENETDOWN 101:ENETUNREACH 102:ENETRESET 103:ECONNABORTED 104:ECONNRESET 105:ENOBUFS 106:EISCONN 107:ENOTCONN 110:ETIMEDOUT 111:ECONNREFUSED 113:EHOSTUNREACH 114:EALREADY 115:EINPROGRESS 116:ESTALE 122:EDQUOT 125:ECANCELED';

let names: Map<number, string> | undefined;

/** errno number -> name, as os.constants.errno has them (built on first use). */
export function errnoNames(platform: string = process.platform, arch: string = process.arch): Map<number, string> {
  if (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) {
    return new Map(LINUX_GENERIC_ERRNO_NAMES.split(' ').map((pair) => {
      const [n, name] = pair.split(':');
      return [Number(n), name!];
    }));
  }
  return new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));
}

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
  return (names ??= errnoNames()).get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
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
