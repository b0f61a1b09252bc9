// Request/reply over one rtnetlink socket, synchronously, through libc (koffi): Rtnl's transport.
//
// The kernel handles a NETLINK_ROUTE request inside sendmsg itself, on the sender's thread: by the
// time send returns, the reply and the ACK are queued on the socket (a dump's first part too; each
// recv that empties the queue makes the kernel queue the next part before it returns). So reading
// right after the send never waits, and an exchange needs no event-loop turn: two syscalls and a
// decode. The asynchronous socket (socket.ts) costs a turn of the event loop per request (a poll
// wake-up, MSG_PEEK then recv of each datagram, a promise): ~40 µs against ~15 µs here for a
// GETLINK on a warm process, 60-100 µs when the process was idle; an attach makes ~10 requests.
// Nothing changes for the kernel: the requests and their order are the same. (The kernel's own
// work, a veth created or rtnl_lock waited for, always ran synchronously inside sendmsg: the
// event loop was blocked for it with either socket.)
//
// If a reply is ever not there (it cannot be, for rtnetlink), recv waits for it with poll(2) up to
// REPLY_TIMEOUT_MS, then fails: never a busy loop, never a hang.
//
// The socket belongs to the namespace of the thread that created it, for life: create it inside
// the namespace (withNetnsSync), use it from anywhere afterwards.
import { ErrnoError } from '../netns/errno.js';
import { AF_NETLINK, MSG_DONTWAIT, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW, libcSys, type Sys } from '../netns/sys.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, decodeMessages, encodeMessage, errorCode, type NlMessage } from './codec.js';
import { DumpInterrupted, NetlinkRefusal } from './refusal.js';

const MSG_TRUNC = 0x20;
const POLLIN = 0x1;
const EAGAIN = 11;
const REPLY_TIMEOUT_MS = 10_000;
const DUMP_RETRIES = 10;
/** A dump's parts are at most 32 KiB (the kernel's cap on its dump buffer): one datagram fits. */
const RECV_BUFFER = 64 * 1024;

/** The datagram buffer: one per process, as exchanges never overlap (each completes before returning). */
let shared: Buffer | undefined;

/** What Rtnl needs of a socket (both this one and socket.ts's NlSocket fit). */
export interface NlTransport {
  request(type: number, flags: number, body: Buffer): Promise<NlMessage[]>;
  /** A request whose refusal is an expected answer: the kernel's errno (0: done) instead of a
   * thrown NetlinkRefusal. Optional: Rtnl catches the refusal where a transport lacks it. */
  requestErrno?(type: number, flags: number, body: Buffer): number;
  dump(type: number, flags: number, body: Buffer): Promise<NlMessage[]>;
  close(): void;
}

export class SyncNlSocket implements NlTransport {
  private readonly fd: number;
  private seq = 0;
  private closed = false;

  /** Opens the socket in the calling thread's current network namespace. */
  constructor(private readonly sys: Sys = libcSys, protocol: number = NETLINK_ROUTE) {
    this.fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  }

  /** One request that the kernel answers with an ACK (or an error), plus any reply before it. */
  async request(type: number, flags: number, body: Buffer): Promise<NlMessage[]> {
    return this.requestSync(type, flags, body);
  }

  /** A dump, retried from the start when the kernel reports that it changed meanwhile. */
  async dump(type: number, flags: number, body: Buffer): Promise<NlMessage[]> {
    return this.dumpSync(type, flags, body);
  }

  requestSync(type: number, flags: number, body: Buffer): NlMessage[] {
    const r = this.exchange(type, flags, body, false);
    if (r.errno !== 0) throw new NetlinkRefusal(r.errno);
    return r.messages;
  }

  requestErrno(type: number, flags: number, body: Buffer): number {
    return this.exchange(type, flags, body, false).errno;
  }

  dumpSync(type: number, flags: number, body: Buffer): NlMessage[] {
    for (let attempt = 0; attempt < DUMP_RETRIES; attempt++) {
      const r = this.exchange(type, flags | NLM_F_DUMP, body, true);
      if (r.errno !== 0) throw new NetlinkRefusal(r.errno);
      if (!r.interrupted) return r.messages;
    }
    throw new DumpInterrupted(`netlink dump (type ${type}) interrupted ${DUMP_RETRIES} times`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sys.close(this.fd);
  }

  /** One exchange; a refusal comes back as its errno (building no Error: see requestErrno). */
  private exchange(type: number, flags: number, body: Buffer, dump: boolean): { messages: NlMessage[]; interrupted: boolean; errno: number } {
    if (this.closed) throw new Error('netlink socket closed');
    this.seq = (this.seq % 0xffff_fffe) + 1;
    const seq = this.seq;
    this.sys.send(this.fd, encodeMessage({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, seq, port: 0, data: body }), 0);
    const messages: NlMessage[] = [];
    let interrupted = false;
    for (;;) {
      for (const m of this.receive()) {
        if (m.seq !== seq) continue; // e.g. a late ACK of an earlier exchange
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_ERROR || (m.type === NLMSG_DONE && dump)) {
          // An ACK (errno 0) ends a request; DONE ends a dump, and says in its payload whether
          // the dump failed half-way.
          return { messages, interrupted, errno: errorCode(m.data) };
        }
        if (m.type === NLMSG_OVERRUN) throw new ErrnoError(105, 'recv', '(netlink overrun)');
        messages.push(m);
      }
    }
  }

  /** The messages of the next datagram (copied out of the shared buffer). */
  private receive(): NlMessage[] {
    const buf = (shared ??= Buffer.alloc(RECV_BUFFER));
    let n: number;
    try {
      n = this.sys.recv(this.fd, buf, MSG_DONTWAIT | MSG_TRUNC);
    } catch (err) {
      if (!(err instanceof ErrnoError) || err.errno !== EAGAIN) throw err;
      if (this.sys.poll(this.fd, POLLIN, REPLY_TIMEOUT_MS) === 0) throw new ErrnoError(EAGAIN, 'recv', `(no netlink reply within ${REPLY_TIMEOUT_MS} ms)`);
      n = this.sys.recv(this.fd, buf, MSG_DONTWAIT | MSG_TRUNC);
    }
    if (n > buf.length) throw new ErrnoError(90, 'recv', `(a ${n}-byte netlink datagram does not fit ${buf.length} bytes)`);
    return decodeMessages(Buffer.from(buf.subarray(0, n)));
  }
}
