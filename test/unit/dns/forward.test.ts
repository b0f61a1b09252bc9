// The forwarder's hedging, refusals and deadline, on fake sockets and a fake clock: what each
// upstream was sent and when, and which answer reaches the client.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type dgram from 'node:dgram';
import { Forwarder, HEDGE_MS, UDP_DEADLINE_MS, capUnderLimit, type Upstream } from '../../../runtime/dns/forward.js';

/** The forwarder's UDP sockets (one per query): records what each sends where, delivers what
 * the test says to the socket that sent the query being answered. */
class FakeSocket {
  onMessage?: (msg: Buffer, rinfo: dgram.RemoteInfo) => void;
  closed = false;
  constructor(private readonly net: FakeNet) {}
  bind(): this {
    return this;
  }
  send(msg: Buffer, port: number, address: string): void {
    this.net.sent.push({ msg: Buffer.from(msg), to: `${address}#${port}`, from: this });
  }
  on(event: string, fn: (msg: Buffer, rinfo: dgram.RemoteInfo) => void): this {
    if (event === 'message') this.onMessage = fn;
    return this;
  }
  close(): void {
    this.closed = true;
  }
}

class FakeNet {
  sent: { msg: Buffer; to: string; from: FakeSocket }[] = [];
  sockets: FakeSocket[] = [];
  socket(): FakeSocket {
    const s = new FakeSocket(this);
    this.sockets.push(s);
    return s;
  }
  /** Server `u` answers the last query it got, with this rcode (and ID, and question name byte),
   * to the socket that query came from. */
  answer(u: Upstream, rcode = 0, id?: number, from: Upstream = u, mangle?: (m: Buffer) => void): void {
    const last = this.sent.filter((x) => x.to === `${u.address}#${u.port}`).at(-1)!;
    const msg = Buffer.from(last.msg);
    msg.writeUInt16BE(id ?? last.msg.readUInt16BE(0), 0);
    msg.writeUInt16BE(0x8180 | rcode, 2);
    mangle?.(msg);
    if (!last.from.closed) last.from.onMessage!(msg, { address: from.address, port: from.port, family: 'IPv4', size: msg.length });
  }
  /** What server `u` was sent. */
  to(u: Upstream): Buffer[] {
    return this.sent.filter((x) => x.to === `${u.address}#${u.port}`).map((x) => x.msg);
  }
}

const A: Upstream = { address: '192.0.2.1', port: 53 };
const B: Upstream = { address: '192.0.2.2', port: 53 };
const query = () => {
  const q = Buffer.alloc(29);
  q.writeUInt16BE(0x1234, 0); // the client's ID
  q.writeUInt16BE(0x0100, 2);
  q.writeUInt16BE(1, 4);
  Buffer.from([3, 0x77, 0x77, 0x77, 0, 0, 1, 0, 1]).copy(q, 12); // www A IN
  return q;
};

describe('the forwarder', () => {
  let now = 0;
  let socket: FakeNet;
  let fwd: Forwarder;
  const advance = async (ms: number) => {
    now += ms;
    jest.advanceTimersByTime(ms);
    await Promise.resolve();
  };
  const ask = async (ups: Upstream[]) => {
    const done = jest.fn<(answer: Buffer | undefined) => void>();
    fwd.forward(query(), ups, done);
    return done;
  };

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick'] });
    now = 0;
    socket = new FakeNet();
    fwd = new Forwarder({
      socket: () => socket.socket() as unknown as dgram.Socket,
      now: () => now,
    });
  });
  afterEach(() => {
    fwd.close();
    jest.useRealTimers();
  });

  it('holds at most its cap of queries in flight per client: beyond, no socket, no answer at once (SERVFAIL)', async () => {
    const capped = new Forwarder({ socket: () => socket.socket() as unknown as dgram.Socket, now: () => now }, { total: 4, perClient: 2 });
    try {
      const done = Array.from({ length: 3 }, () => jest.fn<(answer: Buffer | undefined) => void>());
      for (const d of done) capped.forward(query(), [A], d, 'flood');
      expect(socket.sockets).toHaveLength(2);
      expect(done[2]).toHaveBeenCalledWith(undefined);
      expect(capped.inFlight).toBe(2);
      // another client still gets its place; when every place is taken, the flood's oldest query
      // ends (no answer: SERVFAIL) and its socket is closed
      const quiet = Array.from({ length: 3 }, () => jest.fn<(answer: Buffer | undefined) => void>());
      capped.forward(query(), [B], quiet[0]!, 'quiet');
      capped.forward(query(), [B], quiet[1]!, 'quiet');
      expect(capped.inFlight).toBe(4);
      capped.forward(query(), [B], quiet[2]!, 'other');
      expect(done[0]).toHaveBeenCalledWith(undefined);
      expect(socket.sockets[0]!.closed).toBe(true);
      expect(quiet[2]).not.toHaveBeenCalled();
      socket.answer(B);
      expect(quiet[2]!.mock.calls[0]![0]!.readUInt16BE(0)).toBe(0x1234);
      // places come back with answers and deadlines
      await advance(UDP_DEADLINE_MS + 100);
      expect(capped.inFlight).toBe(0);
      capped.forward(query(), [A], done[2]!, 'flood');
      expect(capped.inFlight).toBe(1);
    } finally {
      capped.close();
    }
  });

  it('keeps its overall cap under a quarter of a low open-file limit', () => {
    expect(capUnderLimit(1024, 1 / 4, 1_048_576)).toBe(1024);
    expect(capUnderLimit(1024, 1 / 4, 1024)).toBe(256);
    expect(capUnderLimit(1024, 1 / 4, 20)).toBe(16);
  });

  it('relays the query with a new ID and hands back the answer with the client\'s', async () => {
    const done = await ask([A, B]);
    expect(socket.to(A)).toHaveLength(1);
    socket.answer(A);
    expect(done).toHaveBeenCalledTimes(1);
    const answer = done.mock.calls[0]![0]!;
    expect(answer.readUInt16BE(0)).toBe(0x1234);
    await advance(HEDGE_MS * 2);
    expect(socket.sent.map((x) => x.to)).toEqual(['192.0.2.1#53']); // B never asked
  });

  it('asks the next server after the hedge delay when the first is silent, and puts the silent one last next time', async () => {
    const done = await ask([A, B]);
    await advance(HEDGE_MS - 30);
    expect(socket.to(B)).toHaveLength(0);
    await advance(60);
    expect(socket.to(B)).toHaveLength(1);
    socket.answer(B);
    expect(done.mock.calls[0]![0]!.readUInt16BE(2) & 0xf).toBe(0);
    expect(fwd.order([A, B])).toEqual([B, A]);
  });

  it('a refusal moves on at once; when every server refuses, the client gets the refusal', async () => {
    const done = await ask([A, B]);
    socket.answer(A, 5);
    expect(socket.to(B)).toHaveLength(1); // no hedge delay
    expect(done).not.toHaveBeenCalled();
    socket.answer(B, 2);
    expect(done).toHaveBeenCalledTimes(1);
    expect(done.mock.calls[0]![0]!.readUInt16BE(2) & 0xf).toBe(5); // the first fallback kept
  });

  it('gives up at the deadline with no answer', async () => {
    const done = await ask([A]);
    await advance(UDP_DEADLINE_MS - 100);
    expect(done).not.toHaveBeenCalled();
    await advance(200);
    expect(done).toHaveBeenCalledWith(undefined);
  });

  it('ignores an answer whose ID matches no query, and one from a server the query did not go to', async () => {
    const first = await ask([A]);
    const second = await ask([B]);
    socket.answer(A, 0, socket.to(B)[0]!.readUInt16BE(0)); // A answers with B's query's ID
    expect(second).not.toHaveBeenCalled();
    socket.answer(A, 0, (socket.to(A)[0]!.readUInt16BE(0) + 1) & 0xffff);
    expect(first).not.toHaveBeenCalled();
    socket.answer(A);
    socket.answer(B);
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(1);
  });

  it('sends each query from its own socket, closed once answered, with IDs that are not Math.random\'s', async () => {
    const random = jest.spyOn(Math, 'random');
    const first = await ask([A]);
    const second = await ask([A]);
    const [s1, s2] = socket.sent.map((x) => x.from);
    expect(s1).not.toBe(s2);
    socket.answer(A); // answers the second
    expect(second).toHaveBeenCalledTimes(1);
    expect(first).not.toHaveBeenCalled();
    expect(s2!.closed).toBe(true);
    expect(s1!.closed).toBe(false);
    expect(random).not.toHaveBeenCalled();
    random.mockRestore();
  });

  it('ignores an answer from the right server but another port, or with another question', async () => {
    const done = await ask([A]);
    socket.answer(A, 0, undefined, { address: A.address, port: 5353 });
    expect(done).not.toHaveBeenCalled();
    socket.answer(A, 0, undefined, A, (m) => (m[13] = 0x78)); // xww
    expect(done).not.toHaveBeenCalled();
    socket.answer(A, 0, undefined, A, (m) => m.writeUInt16BE(28, 17)); // AAAA
    expect(done).not.toHaveBeenCalled();
    socket.answer(A, 0, undefined, A, (m) => (m[13] = 0x57)); // Www: case does not matter
    expect(done).toHaveBeenCalledTimes(1);
  });
});
