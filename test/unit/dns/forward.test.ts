// The forwarder's hedging, refusals and deadline, on fake sockets and a fake clock: what each
// upstream was sent and when, and which answer reaches the client.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type dgram from 'node:dgram';
import { Forwarder, HEDGE_MS, UDP_DEADLINE_MS, type Upstream } from '../../../runtime/dns/forward.js';

/** A connected UDP socket to one upstream: records what it is sent, delivers what the test says. */
class FakeSocket {
  server = '';
  sent: Buffer[] = [];
  private onMessage?: (msg: Buffer) => void;
  connect(port: number, address: string, cb: () => void): void {
    this.server = `${address}#${port}`;
    queueMicrotask(cb);
  }
  send(msg: Buffer): void {
    this.sent.push(Buffer.from(msg));
  }
  on(event: string, fn: (msg: Buffer) => void): this {
    if (event === 'message') this.onMessage = fn;
    return this;
  }
  close(): void {}
  /** The server answers the last query it got, with this rcode. */
  answer(rcode = 0, id = this.sent.at(-1)!.readUInt16BE(0)): void {
    const msg = Buffer.from(this.sent.at(-1)!);
    msg.writeUInt16BE(id, 0);
    msg.writeUInt16BE(0x8180 | rcode, 2);
    this.onMessage!(msg);
  }
}

const A: Upstream = { address: '192.0.2.1', port: 53 };
const B: Upstream = { address: '192.0.2.2', port: 53 };
const query = () => {
  const q = Buffer.alloc(29);
  q.writeUInt16BE(0x1234, 0); // the client's ID
  q.writeUInt16BE(0x0100, 2);
  q.writeUInt16BE(1, 4);
  return q;
};

describe('the forwarder', () => {
  let now = 0;
  let sockets: FakeSocket[];
  let fwd: Forwarder;
  const sock = (u: Upstream) => sockets.find((s) => s.server === `${u.address}#${u.port}`)!;
  const advance = async (ms: number) => {
    now += ms;
    jest.advanceTimersByTime(ms);
    await Promise.resolve();
  };
  const ask = async (ups: Upstream[]) => {
    const done = jest.fn<(answer: Buffer | undefined) => void>();
    fwd.forward(query(), ups, done);
    await Promise.resolve(); // connect() completes, queued datagrams go out
    return done;
  };

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick'] });
    now = 0;
    sockets = [];
    fwd = new Forwarder({
      socket: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s as unknown as dgram.Socket;
      },
      now: () => now,
    });
  });
  afterEach(() => {
    fwd.close();
    jest.useRealTimers();
  });

  it('relays the query with a new ID and hands back the answer with the client\'s', async () => {
    const done = await ask([A, B]);
    expect(sock(A).sent).toHaveLength(1);
    sock(A).answer();
    expect(done).toHaveBeenCalledTimes(1);
    const answer = done.mock.calls[0]![0]!;
    expect(answer.readUInt16BE(0)).toBe(0x1234);
    await advance(HEDGE_MS * 2);
    expect(sockets.map((s) => s.server)).toEqual(['192.0.2.1#53']); // B never asked
  });

  it('asks the next server after the hedge delay when the first is silent, and puts the silent one last next time', async () => {
    const done = await ask([A, B]);
    await advance(HEDGE_MS - 30);
    expect(sockets).toHaveLength(1);
    await advance(60);
    expect(sock(B).sent).toHaveLength(1);
    sock(B).answer();
    expect(done.mock.calls[0]![0]!.readUInt16BE(2) & 0xf).toBe(0);
    expect(fwd.order([A, B])).toEqual([B, A]);
  });

  it('a refusal moves on at once; when every server refuses, the client gets the refusal', async () => {
    const done = await ask([A, B]);
    sock(A).answer(5);
    await Promise.resolve(); // B's socket connects
    expect(sock(B).sent).toHaveLength(1); // no hedge delay
    expect(done).not.toHaveBeenCalled();
    sock(B).answer(2);
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
    sock(A).answer(0, sock(B).sent[0]!.readUInt16BE(0)); // A answers with B's query's ID
    expect(second).not.toHaveBeenCalled();
    sock(A).answer(0, (sock(A).sent[0]!.readUInt16BE(0) + 1) & 0xffff);
    expect(first).not.toHaveBeenCalled();
    sock(A).answer();
    sock(B).answer();
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(1);
  });
});
