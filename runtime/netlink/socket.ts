// Request/reply over one netlink socket (NETLINK_ROUTE unless told otherwise), asynchronously.
//
// From the `netlink` package tsrun takes only RawNetlinkSocket: the native socket, its libuv poll
// and ref/unref. Its higher NetlinkSocket does not fit: it keeps a single multipart buffer per
// socket (a reply arriving in the middle of a dump makes the dump fail as "not terminated
// properly"), it drops the NLMSG_DONE message (with the dump's errno and NLM_F_DUMP_INTR), and its
// errors carry no `code`. Importing the raw module alone also spares ~55 ms of start-up
// (the package index loads nl80211 and WireGuard tables).
//
// The socket belongs to the namespace of the thread that created it, for life: create it inside
// the namespace (withNetnsSync), use it from anywhere afterwards.
import { RawNetlinkSocket } from 'netlink/dist/raw.js';
import {
  NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
  decodeMessages, encodeMessage, errorCode, type NlMessage,
} from './codec.js';
import { NETLINK_ROUTE } from '../netns/sys.js';
import { ErrnoError } from '../netns/errno.js';

import { DumpInterrupted, NetlinkRefusal } from './refusal.js';

export { DumpInterrupted, NetlinkRefusal };

/** The part of RawNetlinkSocket used here (a fake in unit tests). */
export interface RawTransport {
  send(msg: Uint8Array, options: { port: number }, callback: (error?: Error) => void): void;
  on(event: 'message', listener: (msg: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  ref(): void;
  unref(): void;
  close(): void;
}

interface Pending {
  dump: boolean;
  messages: NlMessage[];
  interrupted: boolean;
  resolve(r: { messages: NlMessage[]; interrupted: boolean }): void;
  reject(e: Error): void;
}

const DUMP_RETRIES = 10;
const RECV_BUFFER = 1 << 20;

export class NlSocket {
  private readonly raw: RawTransport;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private closed = false;
  // The kernel runs one dump per socket at a time (a second one gets EBUSY), so dumps queue here.
  private dumpQueue: Promise<unknown> = Promise.resolve();

  /** Opens the socket in the calling thread's current network namespace. */
  constructor(raw?: RawTransport, protocol: number = NETLINK_ROUTE) {
    // A large receive buffer: a burst of concurrent requests (100 attaches) must not overflow
    // into ENOBUFS, which loses replies.
    this.raw = raw ?? new RawNetlinkSocket(protocol, { recvBufferSize: RECV_BUFFER, sendBufferSize: 0 });
    // An idle socket must not keep the process alive; it is referenced while a request waits.
    this.raw.unref();
    this.raw.on('message', (buf: Buffer) => this.receive(buf));
    this.raw.on('error', (err: Error) => this.failAll(err));
  }

  /** One request that the kernel answers with an ACK (or an error), plus any reply before it. */
  async request(type: number, flags: number, body: Buffer): Promise<NlMessage[]> {
    return (await this.exchange(type, flags, body, false)).messages;
  }

  /** A dump, retried from the start when the kernel reports that it changed meanwhile. */
  dump(type: number, flags: number, body: Buffer): Promise<NlMessage[]> {
    const run = async (): Promise<NlMessage[]> => {
      for (let attempt = 0; attempt < DUMP_RETRIES; attempt++) {
        const r = await this.exchange(type, flags | NLM_F_DUMP, body, true);
        if (!r.interrupted) return r.messages;
      }
      throw new DumpInterrupted(`netlink dump (type ${type}) interrupted ${DUMP_RETRIES} times`);
    };
    const result = this.dumpQueue.then(run, run);
    this.dumpQueue = result.catch(() => undefined);
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.close();
    this.failAll(new Error('netlink socket closed'));
  }

  private exchange(type: number, flags: number, body: Buffer, dump: boolean): Promise<{ messages: NlMessage[]; interrupted: boolean }> {
    if (this.closed) return Promise.reject(new Error('netlink socket closed'));
    this.seq = (this.seq % 0xffff_fffe) + 1;
    const seq = this.seq;
    const msg = encodeMessage({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, seq, port: 0, data: body });
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.raw.ref();
      this.pending.set(seq, { dump, messages: [], interrupted: false, resolve, reject });
      this.raw.send(msg, { port: 0 }, (err) => {
        if (err) this.settle(seq, (p) => p.reject(err));
      });
    });
  }

  private receive(buf: Buffer): void {
    let messages: NlMessage[];
    try {
      messages = decodeMessages(buf);
    } catch (err) {
      this.failAll(err as Error);
      return;
    }
    for (const m of messages) {
      const p = this.pending.get(m.seq);
      if (!p) continue; // e.g. the ACK after a GET's reply, when the GET already settled
      if (m.flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (m.type === NLMSG_ERROR) {
        const errno = errorCode(m.data);
        this.settle(m.seq, (q) => (errno === 0 ? q.resolve(q) : q.reject(new NetlinkRefusal(errno))));
      } else if (m.type === NLMSG_DONE && p.dump) {
        // A dump that fails half-way says so in DONE's payload.
        const errno = errorCode(m.data);
        this.settle(m.seq, (q) => (errno === 0 ? q.resolve(q) : q.reject(new NetlinkRefusal(errno))));
      } else if (m.type === NLMSG_OVERRUN) {
        this.settle(m.seq, (q) => q.reject(new ErrnoError(105, 'recv', '(netlink overrun)')));
      } else {
        p.messages.push(m);
      }
    }
  }

  private settle(seq: number, fn: (p: Pending) => void): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    if (this.pending.size === 0 && !this.closed) this.raw.unref();
    fn(p);
  }

  /** A lost datagram (ENOBUFS) or a closed socket: no waiting request can be answered any more. */
  private failAll(err: Error): void {
    for (const seq of [...this.pending.keys()]) this.settle(seq, (p) => p.reject(err));
  }
}
