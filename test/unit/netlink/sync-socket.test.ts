// SyncNlSocket against a fake kernel: each send queues the datagrams the kernel would answer with,
// recv hands them out one by one. Replies matched by sequence number, dumps retried when
// interrupted, refusals, and a reply that is not there (poll, then a timeout, never a spin).
import { describe, expect, it } from '@jest/globals';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST, decodeMessages, encodeMessage, type NlMessage } from '../../../runtime/netlink/codec.js';
import { DumpInterrupted, NetlinkRefusal } from '../../../runtime/netlink/socket.js';
import { SyncNlSocket } from '../../../runtime/netlink/sync-socket.js';
import { ErrnoError } from '../../../runtime/netns/errno.js';
import type { Sys } from '../../../runtime/netns/sys.js';

type Msg = { seq?: number; type: number; flags?: number; data?: Buffer };

class FakeKernel implements Sys {
  sent: NlMessage[] = [];
  calls: string[] = [];
  queue: Buffer[] = [];
  /** What the kernel answers each send with: datagrams of messages (seq filled in when absent). */
  answer: (req: NlMessage, n: number) => Msg[][] = (req) => [[ack(req.seq)]];
  /** poll's answer; a queued datagram appears when it is > 0 and `late` holds one. */
  pollResult = 0;
  late: Buffer[] = [];
  setns(): void {}
  unshare(): void {}
  mount(): void {}
  umount2(): void {}
  socket(): number {
    this.calls.push('socket');
    return 7;
  }
  send(_fd: number, buf: Buffer): number {
    const [req] = decodeMessages(Buffer.from(buf));
    this.sent.push(req!);
    this.calls.push('send');
    for (const dgram of this.answer(req!, this.sent.length)) {
      this.queue.push(Buffer.concat(dgram.map((m) => encodeMessage({ type: m.type, flags: m.flags ?? 0, seq: m.seq ?? req!.seq, port: 0, data: m.data ?? Buffer.alloc(4) }))));
    }
    return buf.length;
  }
  recv(_fd: number, buf: Buffer): number {
    this.calls.push('recv');
    const d = this.queue.shift();
    if (!d) throw new ErrnoError(11, 'recv');
    d.copy(buf);
    return d.length;
  }
  poll(): number {
    this.calls.push('poll');
    if (this.pollResult > 0) this.queue.push(...this.late.splice(0));
    return this.pollResult;
  }
  close(): void {
    this.calls.push('close');
  }
}

const errno = (n: number): Buffer => {
  const b = Buffer.alloc(20);
  b.writeInt32LE(-n, 0);
  return b;
};
const ack = (seq?: number): Msg => ({ ...(seq !== undefined ? { seq } : {}), type: NLMSG_ERROR, data: errno(0) });
const part = (tag: number, flags = 0): Msg => ({ type: 16, flags: NLM_F_MULTI | flags, data: Buffer.from([tag, 0, 0, 0]) });
const done = (flags = 0, err = 0): Msg => ({ type: NLMSG_DONE, flags: NLM_F_MULTI | flags, data: errno(err).subarray(0, 4) });
const tags = (ms: NlMessage[]): number[] => ms.map((m) => m.data[0]!);

describe('SyncNlSocket', () => {
  it('sends with REQUEST|ACK and returns the replies before the ACK, in one exchange', async () => {
    const k = new FakeKernel();
    k.answer = () => [[part(1)], [ack()]];
    const s = new SyncNlSocket(k);
    expect(tags(await s.request(18, 0, Buffer.alloc(16)))).toEqual([1]);
    expect(k.sent[0]!.flags).toBe(NLM_F_REQUEST | NLM_F_ACK);
    expect(k.calls).toEqual(['socket', 'send', 'recv', 'recv']);
  });

  it('skips messages of another sequence number (a late ACK of an earlier exchange)', async () => {
    const k = new FakeKernel();
    k.answer = (req) => [[ack(req.seq + 100), part(2)], [ack()]];
    const s = new SyncNlSocket(k);
    expect(tags(await s.request(18, 0, Buffer.alloc(16)))).toEqual([2]);
  });

  it('turns an error ACK into a NetlinkRefusal with its errno', async () => {
    const k = new FakeKernel();
    k.answer = () => [[{ type: NLMSG_ERROR, data: errno(17) }]];
    const s = new SyncNlSocket(k);
    await expect(s.request(16, 0, Buffer.alloc(16))).rejects.toEqual(new NetlinkRefusal(17));
    // The socket stays usable.
    k.answer = (req) => [[ack(req.seq)]];
    await expect(s.request(16, 0, Buffer.alloc(16))).resolves.toEqual([]);
  });

  it('reads a dump over several datagrams until DONE, and reports a dump that failed half-way', async () => {
    const k = new FakeKernel();
    k.answer = () => [[part(1), part(2)], [part(3)], [done()]];
    const s = new SyncNlSocket(k);
    expect(tags(await s.dump(18, 0, Buffer.alloc(16)))).toEqual([1, 2, 3]);
    expect(k.sent[0]!.flags & NLM_F_DUMP).toBe(NLM_F_DUMP);
    k.answer = () => [[part(1)], [done(0, 16)]];
    await expect(s.dump(18, 0, Buffer.alloc(16))).rejects.toEqual(new NetlinkRefusal(16));
  });

  it('retries an interrupted dump from the start, and gives up after ten', async () => {
    const k = new FakeKernel();
    k.answer = (_req, n) => (n === 1 ? [[part(1, NLM_F_DUMP_INTR)], [done(NLM_F_DUMP_INTR)]] : [[part(9)], [done()]]);
    const s = new SyncNlSocket(k);
    expect(tags(await s.dump(18, 0, Buffer.alloc(16)))).toEqual([9]);
    expect(k.sent).toHaveLength(2);
    k.answer = () => [[part(1, NLM_F_DUMP_INTR)], [done(NLM_F_DUMP_INTR)]];
    await expect(s.dump(18, 0, Buffer.alloc(16))).rejects.toBeInstanceOf(DumpInterrupted);
  });

  it('waits for a reply that is not queued yet with poll, and fails when poll times out', async () => {
    const k = new FakeKernel();
    k.answer = (req) => {
      k.late = [encodeMessage({ type: NLMSG_ERROR, flags: 0, seq: req.seq, port: 0, data: errno(0) })];
      return [];
    };
    k.pollResult = 1;
    const s = new SyncNlSocket(k);
    await expect(s.request(16, 0, Buffer.alloc(16))).resolves.toEqual([]);
    expect(k.calls).toEqual(['socket', 'send', 'recv', 'poll', 'recv']);
    k.pollResult = 0;
    await expect(s.request(16, 0, Buffer.alloc(16))).rejects.toThrow(/no netlink reply within/);
  });

  it('refuses a datagram larger than its buffer rather than reading it cut short', async () => {
    const k = new FakeKernel();
    k.recv = () => 1 << 20; // what recv(MSG_TRUNC) reports for a datagram that did not fit
    const s = new SyncNlSocket(k);
    await expect(s.request(18, 0, Buffer.alloc(16))).rejects.toThrow(/does not fit/);
  });

  it('hands a refusal back as its errno through requestErrno, and as a NetlinkRefusal through request', async () => {
    const k = new FakeKernel();
    k.answer = (_req, n) => [[{ type: NLMSG_ERROR, data: n % 2 === 1 ? errno(17) : errno(0) }]];
    const s = new SyncNlSocket(k);
    expect(s.requestErrno(20, 0, Buffer.alloc(8))).toBe(17);
    expect(s.requestErrno(20, 0, Buffer.alloc(8))).toBe(0);
    await expect(s.request(20, 0, Buffer.alloc(8))).rejects.toEqual(new NetlinkRefusal(17));
  });

  it('closes its descriptor once, and refuses requests afterwards', async () => {
    const k = new FakeKernel();
    const s = new SyncNlSocket(k);
    s.close();
    s.close();
    expect(k.calls.filter((c) => c === 'close')).toHaveLength(1);
    await expect(s.request(18, 0, Buffer.alloc(16))).rejects.toThrow(/closed/);
  });
});
