// The resolver's control socket, asked synchronously through libc (koffi) instead of node:net.
//
// A hook or CNI process tells the resolver about each attach and detach ("reload <id>") and has
// nothing else to do while it waits. Requiring node:net (and the node:stream it is built on)
// costs such a cold process ~2.5 ms, more than the request itself; koffi is loaded by then
// anyway (libnftables, the namespace switch). So those front doors ask here first, with a
// blocking socket and a receive timeout. Only a request that got an answer (or connected and
// then failed) is final: when the connection itself fails (no resolver, or a name this client
// does not form the way the server bound it), the caller asks again through node:net, which
// decides as before.
import { libcFunction, loadKoffi, type LibcFn as Fn } from '../koffi.js';
import { controlAddress } from './paths.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o200_0000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_SNDTIMEO = 21;
const MSG_NOSIGNAL = 0x4000;
const EINTR = 4;
const EAGAIN = 11; // also EWOULDBLOCK: what a receive timeout returns
/** sizeof(struct sockaddr_un): libuv binds and connects an abstract name padded to this length
 * (strace: connect(..., 110) from node:net), and an abstract name is all of its bytes. */
const SOCKADDR_UN_LEN = 110;

interface Libc {
  socket: Fn;
  connect: Fn;
  setsockopt: Fn;
  send: Fn;
  recv: Fn;
  close: Fn;
  errno: () => number;
  longSize: number;
}

let libc: Libc | null | undefined;

function bindings(): Libc | undefined {
  if (libc === undefined) {
    try {
      const koffi = loadKoffi();
      const f = libcFunction;
      libc = {
        socket: f('int socket(int domain, int type, int protocol)'),
        connect: f('int connect(int fd, const void *addr, uint32_t len)'),
        setsockopt: f('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
        send: f('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
        recv: f('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
        close: f('int close(int fd)'),
        errno: () => koffi.errno(),
        longSize: koffi.sizeof('long'),
      };
    } catch {
      libc = null;
    }
  }
  return libc ?? undefined;
}

/** The sockaddr_un of a socket file's path (NUL-terminated) or of an abstract name. */
export function unixAddress(name: string): Buffer | undefined {
  if (!name.startsWith('/')) return abstractAddress(name);
  const file = Buffer.from(name, 'utf8');
  if (2 + file.length + 1 > SOCKADDR_UN_LEN) return undefined;
  const addr = Buffer.alloc(2 + file.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  file.copy(addr, 2);
  return addr;
}

/** The sockaddr_un of an abstract name ("\0..."), padded as libuv pads it. */
export function abstractAddress(name: string): Buffer | undefined {
  const path = Buffer.from(name, 'utf8');
  if (path.length === 0 || path[0] !== 0 || 2 + path.length > SOCKADDR_UN_LEN) return undefined;
  const addr = Buffer.alloc(SOCKADDR_UN_LEN);
  addr.writeUInt16LE(AF_UNIX, 0); // sa_family_t, host order (every Linux tsrun runs on is little-endian)
  path.copy(addr, 2);
  return addr;
}

function timeval(ms: number, longSize: number): Buffer {
  const b = Buffer.alloc(2 * longSize);
  const sec = Math.floor(ms / 1000);
  const usec = Math.max(1, Math.round((ms % 1000) * 1000)); // {0, 0} would mean "no timeout"
  if (longSize === 8) {
    b.writeBigInt64LE(BigInt(sec), 0);
    b.writeBigInt64LE(BigInt(usec), 8);
  } else {
    b.writeInt32LE(sec, 0);
    b.writeInt32LE(usec, 4);
  }
  return b;
}

/**
 * Sends `command` and returns the reply line: `{ reply }` once connected (reply undefined when
 * the resolver closed without a line, or is stopping), 'unavailable' when no connection could be
 * made this way. Throws when the resolver connected but did not answer within `timeoutMs`.
 */
export function resolverRequestSync(runDir: string, command: string, timeoutMs: number): { reply: string | undefined } | 'unavailable' {
  const c = bindings();
  const addr = unixAddress(controlAddress(runDir));
  if (!c || !addr) return 'unavailable';
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 'unavailable';
  try {
    // Before connecting: a listener whose backlog is full makes connect(2) wait, up to this.
    c.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, timeval(timeoutMs, c.longSize), 2 * c.longSize);
    if (c.connect(fd, addr, addr.length) !== 0) return 'unavailable';
    const deadline = performance.now() + timeoutMs;
    const timedOut = () => new Error(`the resolver did not answer ${command} within ${timeoutMs} ms`);
    const out = Buffer.from(`${command}\n`, 'utf8');
    for (let sent = 0; sent < out.length; ) {
      const n = c.send(fd, out.subarray(sent), out.length - sent, MSG_NOSIGNAL);
      if (n < 0 && c.errno() === EINTR) continue;
      if (n <= 0) return { reply: undefined }; // closed on us: as node:net's 'error' or 'close'
      sent += n;
    }
    const buf = Buffer.alloc(4096);
    let text = '';
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw timedOut();
      c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(left, c.longSize), 2 * c.longSize);
      const n = c.recv(fd, buf, buf.length, 0);
      if (n < 0) {
        const errno = c.errno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) throw timedOut();
        return { reply: undefined };
      }
      if (n === 0) return { reply: undefined };
      text += buf.toString('utf8', 0, n);
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        const line = text.slice(0, nl);
        // "error stopping": it is on its way out; the caller treats it as not running.
        return { reply: line.startsWith('error stopping') ? undefined : line };
      }
    }
  } finally {
    c.close(fd);
  }
}
