// The resolver's UDP socket without node:dgram: datagrams read and answered in batches, with
// recvmmsg(2) and sendmmsg(2) through libc (koffi), woken by a libuv poll handle on the socket.
//
// Why: a cached answer costs the resolver ~1 µs of its own work, but node:dgram spends ~5 µs of
// user time around it (measured with perf on dnsperf load: per datagram a 64 KiB receive
// allocation shrunk to the datagram, an ArrayBuffer and a Buffer, an rinfo object whose four
// properties are set one by one, a callback into JavaScript, and on send the address string
// parsed again), and libuv makes one recvmsg per datagram, one sendmsg per answer and a last
// recvmsg that finds nothing. Here one wake-up reads every datagram waiting (up to BATCH) in one
// call into memory that is reused, the answers are written into reused memory and sent in one
// call: no object per query, and the syscalls amortised over the batch under load. At a low
// rate it is epoll + recvmmsg + sendmmsg per query against libuv's epoll + recvmsg + sendmsg +
// recvmsg.
//
// The socket is level-triggered (uv_poll): a batch that filled up is followed by another read
// at once; a short one means the queue was empty, and the next datagram wakes the poll again.
// A datagram longer than SLOT is seen truncated (msg_flags MSG_TRUNC): DNS queries over UDP are
// far smaller (a client's EDNS0 buffer limits answers, not queries).
//
// struct layouts are LP64 Linux (x86-64, arm64: the architectures koffi.ts loads).
import ipaddr from 'ipaddr.js';
import { libcFunction, loadKoffi, type Koffi, type LibcFn as Fn } from '../koffi.js';
import { ErrnoError } from '../netns/errno.js';

/** Datagrams per recvmmsg / sendmmsg. */
export const BATCH = 32;
/** Bytes per datagram slot (receive and send). */
export const SLOT = 4096;

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o200_0000;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;

// struct mmsghdr { struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t
// iovlen; void *control; size_t controllen; int flags; }; unsigned int len; }: 64 bytes.
export const MMSGHDR = 64;
const H_NAME = 0;
const H_NAMELEN = 8;
const H_IOV = 16;
const H_IOVLEN = 24;
const H_FLAGS = 48;
const H_LEN = 56;
const IOVEC = 16;
/** struct sockaddr_in6 is 28 bytes; a slot of 32 holds either family. */
export const NAME = 32;

interface Libc {
  koffi: Koffi;
  socket: Fn;
  setsockopt: Fn;
  bind: Fn;
  getsockname: Fn;
  recvmmsg: Fn;
  sendmmsg: Fn;
  sendto: Fn;
  close: Fn;
}
let libc: Libc | undefined;
function load(): Libc {
  if (libc) return libc;
  const koffi = loadKoffi();
  const f = libcFunction;
  libc = {
    koffi,
    socket: f('int socket(int domain, int type, int protocol)'),
    setsockopt: f('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    bind: f('int bind(int fd, const void *addr, uint32_t len)'),
    getsockname: f('int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *len)'),
    // The vectors live in memory koffi allocated (their pointers are absolute): passed as its address.
    recvmmsg: f('int recvmmsg(int fd, uintptr_t vec, unsigned int n, int flags, void *timeout)'),
    sendmmsg: f('int sendmmsg(int fd, uintptr_t vec, unsigned int n, int flags)'),
    sendto: f('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
    close: f('int close(int fd)'),
  };
  return libc;
}

/** The sockaddr of `address`:`port` written at `o` of `b`; returns its length (16 or 28). */
export function writeSockaddr(b: Buffer, o: number, address: string, port: number): number {
  const ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv4') {
    b.fill(0, o, o + 16);
    b.writeUInt16LE(AF_INET, o);
    b.writeUInt16BE(port, o + 2);
    b.set(ip.toByteArray(), o + 4);
    return 16;
  }
  b.fill(0, o, o + 28);
  b.writeUInt16LE(AF_INET6, o);
  b.writeUInt16BE(port, o + 2);
  b.set(ip.toByteArray(), o + 8);
  return 28;
}

/** The textual address of the sockaddr at `o` (as node:dgram's rinfo.address has it). */
export function sockaddrAddress(b: Buffer, o: number): string {
  if (b.readUInt16LE(o) === AF_INET) return `${b[o + 4]}.${b[o + 5]}.${b[o + 6]}.${b[o + 7]}`;
  return ipaddr.fromByteArray([...b.subarray(o + 8, o + 24)]).toString();
}

export function sockaddrPort(b: Buffer, o: number): number {
  return b.readUInt16BE(o + 2);
}

/**
 * `count` mmsghdrs at offset 0 of a region whose address is `base`: header i's iovec at
 * `iovAt + i*16` points at slot i of `dataAt` (SLOT bytes), its name at slot i of `nameAt`.
 */
export function layoutHeaders(b: Buffer, base: bigint, count: number, iovAt: number, nameAt: number, dataAt: number): void {
  for (let i = 0; i < count; i++) {
    const h = i * MMSGHDR;
    b.fill(0, h, h + MMSGHDR);
    b.writeBigUInt64LE(base + BigInt(nameAt + i * NAME), h + H_NAME);
    b.writeUInt32LE(NAME, h + H_NAMELEN);
    b.writeBigUInt64LE(base + BigInt(iovAt + i * IOVEC), h + H_IOV);
    b.writeBigUInt64LE(1n, h + H_IOVLEN);
    const v = iovAt + i * IOVEC;
    b.writeBigUInt64LE(base + BigInt(dataAt + i * SLOT), v);
    b.writeBigUInt64LE(BigInt(SLOT), v + 8);
  }
}

/** One region: BATCH headers, their iovecs, names and data slots. */
const IOV_AT = BATCH * MMSGHDR;
const NAME_AT = IOV_AT + BATCH * IOVEC;
const DATA_AT = NAME_AT + BATCH * NAME;
const REGION = DATA_AT + BATCH * SLOT;

/** Called once per batch read; the datagrams are valid until it returns. */
export type BatchHandler = (sock: BatchUdpSocket, count: number) => void;

export class BatchUdpSocket {
  /** The receive region (headers, names, datagrams), as a Buffer over native memory. */
  readonly rx: Buffer;
  /** The send region, same layout; `pending` answers queued in it. */
  private readonly tx: Buffer;
  private readonly rxAddr: bigint;
  private readonly txAddr: bigint;
  private pending = 0;
  private poll?: { close(): void };
  private closed = false;
  /** Inside a batch's handler: close() then frees the memory only when the handler returns. */
  private reading = false;
  private readonly lib: Libc;
  private readonly scratch = Buffer.alloc(NAME);
  /** Source addresses as text, by their IPv4 address or IPv6 bytes (a handful of clients: the containers). */
  private readonly v4Names = new Map<number, string>();
  private readonly v6Names = new Map<string, string>();
  /** Headers whose name length the last read overwrote. */
  private used = BATCH;

  private constructor(private readonly fd: number, private readonly mem: [unknown, unknown], lib: Libc, rxAddr: bigint, txAddr: bigint) {
    this.lib = lib;
    this.rxAddr = rxAddr;
    this.txAddr = txAddr;
    this.rx = Buffer.from(lib.koffi.view(mem[0], REGION));
    this.tx = Buffer.from(lib.koffi.view(mem[1], REGION));
    layoutHeaders(this.rx, rxAddr, BATCH, IOV_AT, NAME_AT, DATA_AT);
    layoutHeaders(this.tx, txAddr, BATCH, IOV_AT, NAME_AT, DATA_AT);
  }

  /**
   * A socket bound to `address`:`port` with these buffer sizes. Throws an ErrnoError when the
   * bind fails (EADDRNOTAVAIL: the address is not there yet) and anything else when libc cannot
   * be reached (the caller then uses node:dgram).
   */
  static bind(address: string, port: number, bufferBytes: number): BatchUdpSocket {
    // The layouts above are LP64 little-endian: elsewhere the caller keeps node:dgram.
    if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) throw new Error(`batched UDP is not built for ${process.platform}/${process.arch}`);
    const lib = load();
    const v6 = address.includes(':');
    const fd = lib.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new ErrnoError(lib.koffi.errno(), 'socket');
    const mem: [unknown, unknown] = [undefined, undefined];
    try {
      const opt = Buffer.alloc(4);
      opt.writeInt32LE(bufferBytes);
      // As node:dgram's recvBufferSize/sendBufferSize: the kernel caps them at its rmem/wmem_max.
      lib.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, opt, 4);
      lib.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, opt, 4);
      if (v6) {
        opt.writeInt32LE(1);
        lib.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, opt, 4);
      }
      const sa = Buffer.alloc(NAME);
      const len = writeSockaddr(sa, 0, address, port);
      if (lib.bind(fd, sa, len) < 0) throw new ErrnoError(lib.koffi.errno(), 'bind', `${address}:${port}`);
      mem[0] = lib.koffi.alloc('uint8_t', REGION);
      mem[1] = lib.koffi.alloc('uint8_t', REGION);
      return new BatchUdpSocket(fd, mem, lib, lib.koffi.address(mem[0]), lib.koffi.address(mem[1]));
    } catch (err) {
      for (const m of mem) if (m !== undefined) lib.koffi.free(m);
      lib.close(fd);
      throw err;
    }
  }

  /** The bound port (for a socket bound to port 0). */
  port(): number {
    const len = new Uint32Array([NAME]);
    if (this.lib.getsockname(this.fd, this.scratch, len) < 0) throw new ErrnoError(this.lib.koffi.errno(), 'getsockname');
    return sockaddrPort(this.scratch, 0);
  }

  /** Starts reading: `onBatch` for every batch of datagrams, until close(). */
  start(onBatch: BatchHandler, onError: (err: Error) => void): void {
    const koffi = this.lib.koffi as unknown as { node: { poll(fd: number, opts: { readable: boolean }, cb: () => void): { close(): void } } };
    this.poll = koffi.node.poll(this.fd, { readable: true }, () => {
      try {
        this.readAll(onBatch);
      } catch (err) {
        onError(err as Error);
      }
    });
  }

  private readAll(onBatch: BatchHandler): void {
    for (;;) {
      if (this.closed) return;
      // recvmmsg writes each name's length: reset to the slot's size before every read.
      for (let i = 0; i < this.used; i++) this.rx.writeUInt32LE(NAME, i * MMSGHDR + H_NAMELEN);
      const n = this.lib.recvmmsg(this.fd, this.rxAddr, BATCH, MSG_DONTWAIT, null);
      this.used = n > 0 ? n : 0;
      if (n < 0) {
        const e = this.lib.koffi.errno();
        if (e === EAGAIN || e === EINTR) return;
        throw new ErrnoError(e, 'recvmmsg');
      }
      if (n === 0) return;
      this.reading = true;
      try {
        onBatch(this, n);
      } finally {
        this.reading = false;
        this.flush();
        if (this.closed) this.free();
      }
      if (n < BATCH) return;
    }
  }

  /** Datagram i of the batch: where it starts in `rx`, its length, whether it was cut short. */
  offset(i: number): number {
    return DATA_AT + i * SLOT;
  }

  length(i: number): number {
    return Math.min(this.rx.readUInt32LE(i * MMSGHDR + H_LEN), SLOT);
  }

  truncated(i: number): boolean {
    return (this.rx.readInt32LE(i * MMSGHDR + H_FLAGS) & MSG_TRUNC) !== 0;
  }

  /** Datagram i's source address as text, the same string for the same client. */
  sourceAddress(i: number): string {
    const o = NAME_AT + i * NAME;
    if (this.rx.readUInt16LE(o) !== AF_INET) {
      const k = this.rx.toString('latin1', o + 8, o + 24);
      let s = this.v6Names.get(k);
      if (s === undefined) {
        if (this.v6Names.size >= 4096) this.v6Names.clear();
        s = sockaddrAddress(this.rx, o);
        this.v6Names.set(k, s);
      }
      return s;
    }
    const key = this.rx.readUInt32LE(o + 4);
    let s = this.v4Names.get(key);
    if (s === undefined) {
      if (this.v4Names.size >= 4096) this.v4Names.clear();
      s = sockaddrAddress(this.rx, o);
      this.v4Names.set(key, s);
    }
    return s;
  }

  /** Where datagram i's source address bytes are in `rx` (4 for IPv4, 16 for IPv6). */
  addressOffset(i: number): number {
    const o = NAME_AT + i * NAME;
    return this.rx.readUInt16LE(o) === AF_INET ? o + 4 : o + 8;
  }

  addressLength(i: number): number {
    return this.rx.readUInt16LE(NAME_AT + i * NAME) === AF_INET ? 4 : 16;
  }

  sourcePort(i: number): number {
    return sockaddrPort(this.rx, NAME_AT + i * NAME);
  }

  /**
   * Queues `answer` to datagram i's source, with datagram i's ID (its first two bytes) written
   * over the answer's. Sent when the batch's handler returns (or at once if the queue is full
   * or the answer does not fit a slot).
   */
  reply(i: number, answer: Buffer): void {
    if (answer.length > SLOT) {
      const copy = Buffer.from(answer);
      copy[0] = this.rx[this.offset(i)]!;
      copy[1] = this.rx[this.offset(i) + 1]!;
      return this.send(copy, this.sourcePort(i), this.sourceAddress(i));
    }
    if (this.pending === BATCH) this.flush();
    const j = this.pending++;
    const d = DATA_AT + j * SLOT;
    answer.copy(this.tx, d);
    this.tx[d] = this.rx[this.offset(i)]!;
    this.tx[d + 1] = this.rx[this.offset(i) + 1]!;
    this.tx.writeBigUInt64LE(BigInt(answer.length), IOV_AT + j * IOVEC + 8);
    this.rx.copy(this.tx, NAME_AT + j * NAME, NAME_AT + i * NAME, NAME_AT + (i + 1) * NAME);
    this.tx.writeUInt32LE(this.rx.readUInt16LE(NAME_AT + i * NAME) === AF_INET ? 16 : 28, j * MMSGHDR + H_NAMELEN);
  }

  /** Sends the queued answers. One that fails (a route gone, the buffer full) is dropped, as
   * a datagram lost on the way would be: the client asks again. */
  flush(): void {
    let sent = 0;
    while (sent < this.pending && !this.closed) {
      const r = this.lib.sendmmsg(this.fd, this.txAddr + BigInt(sent * MMSGHDR), this.pending - sent, 0);
      if (r > 0) sent += r;
      else if (r < 0 && this.lib.koffi.errno() === EINTR) continue;
      else sent++; // this one failed: skip it
    }
    this.pending = 0;
  }

  /** One datagram to `address`:`port` (an answer off the batch path: forwarded, general), as
   * node:dgram's send. */
  send(msg: Buffer, port: number, address: string): void {
    if (this.closed) return;
    const len = writeSockaddr(this.scratch, 0, address, port);
    this.lib.sendto(this.fd, msg, msg.length, 0, this.scratch, len);
  }

  /** Closes the socket; `done` runs after (the port is free once close(2) returned). */
  close(done?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      this.poll?.close();
      this.lib.close(this.fd);
      if (!this.reading) this.free();
    }
    if (done) setImmediate(done);
  }

  private free(): void {
    for (const m of this.mem) this.lib.koffi.free(m);
  }
}
