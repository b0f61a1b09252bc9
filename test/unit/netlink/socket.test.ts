// NlSocket's request bookkeeping against a fake transport: replies matched by sequence number,
// dumps serialized and retried when interrupted, errors and the event-loop reference.
import { describe, expect, it } from '@jest/globals';
import {
  NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, decodeMessages, encodeMessage, type NlMessage,
} from '../../../runtime/netlink/codec.js';
import { DumpInterrupted, NetlinkRefusal, NlSocket, type RawTransport } from '../../../runtime/netlink/socket.js';

class FakeTransport implements RawTransport {
  sent: NlMessage[] = [];
  refs: string[] = [];
  closed = false;
  private onMessage: (b: Buffer) => void = () => undefined;
  private onError: (e: Error) => void = () => undefined;
  send(msg: Uint8Array, _o: { port: number }, cb: (e?: Error) => void): void {
    this.sent.push(...decodeMessages(Buffer.from(msg)));
    cb();
  }
  on(event: 'message' | 'error', listener: ((b: Buffer) => void) | ((e: Error) => void)): this {
    if (event === 'message') this.onMessage = listener as (b: Buffer) => void;
    else this.onError = listener as (e: Error) => void;
    return this;
  }
  ref(): void {
    this.refs.push('ref');
  }
  unref(): void {
    this.refs.push('unref');
  }
  close(): void {
    this.closed = true;
  }
  deliver(...msgs: { seq: number; type: number; flags?: number; data?: Buffer }[]): void {
    this.onMessage(Buffer.concat(msgs.map((m) => encodeMessage({ type: m.type, flags: m.flags ?? 0, seq: m.seq, port: 0, data: m.data ?? Buffer.alloc(4) }))));
  }
  fail(e: Error): void {
    this.onError(e);
  }
  get lastSeq(): number {
    return this.sent.at(-1)!.seq;
  }
}

const errno = (n: number): Buffer => {
  const b = Buffer.alloc(20);
  b.writeInt32LE(-n, 0);
  return b;
};
const ack = (seq: number) => ({ seq, type: NLMSG_ERROR, data: errno(0) });
const part = (seq: number, tag: number, flags = 0) => ({ seq, type: 16, flags: NLM_F_MULTI | flags, data: Buffer.from([tag, 0, 0, 0]) });
const done = (seq: number, flags = 0, err = 0) => ({ seq, type: NLMSG_DONE, flags: NLM_F_MULTI | flags, data: errno(err).subarray(0, 4) });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const tags = (ms: NlMessage[]): number[] => ms.map((m) => m.data[0]!);

describe('NlSocket', () => {
  it('resolves a request on its ACK with the replies before it, and references the loop only meanwhile', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    expect(t.refs).toEqual(['unref']);
    const p = s.request(18, 0, Buffer.alloc(16));
    expect(t.refs).toEqual(['unref', 'ref']);
    t.deliver({ seq: t.lastSeq, type: 16, data: Buffer.from([9, 0, 0, 0]) }, ack(t.lastSeq));
    expect(tags(await p)).toEqual([9]);
    expect(t.refs).toEqual(['unref', 'ref', 'unref']);
  });

  it('rejects with the errno the kernel sent', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const p = s.request(16, 0, Buffer.alloc(16));
    t.deliver({ seq: t.lastSeq, type: NLMSG_ERROR, data: errno(17) });
    await expect(p).rejects.toEqual(new NetlinkRefusal(17));
  });

  it('matches interleaved replies by sequence number', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const d = s.dump(18, 0, Buffer.alloc(16));
    await tick(); // dumps start from the dump queue
    const dumpSeq = t.lastSeq;
    expect(t.sent[0]!.flags & NLM_F_DUMP).toBe(NLM_F_DUMP);
    const r = s.request(16, 0, Buffer.alloc(16));
    const reqSeq = t.lastSeq;
    t.deliver(part(dumpSeq, 1), ack(reqSeq), part(dumpSeq, 2));
    t.deliver(part(dumpSeq, 3), done(dumpSeq));
    expect(await r).toEqual([]);
    expect(tags(await d)).toEqual([1, 2, 3]);
  });

  it('retries a dump the kernel marks interrupted (also when only DONE carries the flag)', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const d = s.dump(18, 0, Buffer.alloc(16));
    await tick();
    t.deliver(part(t.lastSeq, 1), done(t.lastSeq, NLM_F_DUMP_INTR));
    await tick();
    expect(t.sent).toHaveLength(2);
    t.deliver(part(t.lastSeq, 2), part(t.lastSeq, 3), done(t.lastSeq));
    expect(tags(await d)).toEqual([2, 3]);
  });

  it('gives up after ten interrupted dumps', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const d = s.dump(18, 0, Buffer.alloc(16));
    await tick();
    for (let i = 0; i < 10; i++) {
      t.deliver(part(t.lastSeq, i, NLM_F_DUMP_INTR), done(t.lastSeq));
      await tick();
    }
    await expect(d).rejects.toBeInstanceOf(DumpInterrupted);
  });

  it('runs one dump at a time (the kernel answers a second with EBUSY)', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const a = s.dump(18, 0, Buffer.alloc(16));
    const b = s.dump(22, 0, Buffer.alloc(8));
    await tick();
    expect(t.sent.map((m) => m.type)).toEqual([18]);
    t.deliver(done(t.lastSeq, 0, 0));
    await a;
    await tick();
    expect(t.sent.map((m) => m.type)).toEqual([18, 22]);
    t.deliver({ seq: t.lastSeq, type: NLMSG_ERROR, data: errno(22) });
    await expect(b).rejects.toEqual(new NetlinkRefusal(22));
    // A failed dump does not block the next one.
    const c = s.dump(26, 0, Buffer.alloc(12));
    await tick();
    t.deliver(done(t.lastSeq));
    expect(await c).toEqual([]);
  });

  it('rejects a dump whose DONE carries an error', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const d = s.dump(18, 0, Buffer.alloc(16));
    await tick();
    t.deliver(part(t.lastSeq, 1), done(t.lastSeq, 0, 105));
    await expect(d).rejects.toEqual(new NetlinkRefusal(105));
  });

  it('fails every waiting request on a socket error, and everything after close', async () => {
    const t = new FakeTransport();
    const s = new NlSocket(t);
    const a = s.request(16, 0, Buffer.alloc(16));
    const b = s.request(16, 0, Buffer.alloc(16));
    t.fail(Object.assign(new Error('recvmsg: ENOBUFS'), { code: 'ENOBUFS' }));
    await expect(a).rejects.toThrow('ENOBUFS');
    await expect(b).rejects.toThrow('ENOBUFS');
    const c = s.request(16, 0, Buffer.alloc(16));
    s.close();
    expect(t.closed).toBe(true);
    await expect(c).rejects.toThrow('closed');
    await expect(s.request(16, 0, Buffer.alloc(16))).rejects.toThrow('closed');
  });
});
