import { describe, expect, it } from '@jest/globals';
import dgram from 'node:dgram';
import { BATCH, BatchUdpSocket, MMSGHDR, NAME, SLOT, layoutHeaders, sockaddrAddress, sockaddrPort, writeSockaddr } from '../../../runtime/dns/udp-batch.js';

describe('sockaddr', () => {
  it('writes and reads back IPv4 and IPv6 addresses and ports', () => {
    const b = Buffer.alloc(NAME);
    expect(writeSockaddr(b, 0, '10.240.0.1', 53)).toBe(16);
    expect([b.readUInt16LE(0), b.readUInt16BE(2), ...b.subarray(4, 8)]).toEqual([2, 53, 10, 240, 0, 1]);
    expect(sockaddrAddress(b, 0)).toBe('10.240.0.1');
    expect(sockaddrPort(b, 0)).toBe(53);
    expect(writeSockaddr(b, 0, 'fd00::1', 5353)).toBe(28);
    expect(b.readUInt16LE(0)).toBe(10);
    expect(sockaddrAddress(b, 0)).toBe('fd00::1');
    expect(sockaddrPort(b, 0)).toBe(5353);
  });
});

describe('layoutHeaders', () => {
  it('points each mmsghdr at its own name slot and data slot', () => {
    const b = Buffer.alloc(4096);
    layoutHeaders(b, 0x1000n, 2, 200, 300, 400);
    for (const i of [0, 1]) {
      const h = i * MMSGHDR;
      expect(b.readBigUInt64LE(h)).toBe(0x1000n + BigInt(300 + i * NAME)); // msg_name
      expect(b.readUInt32LE(h + 8)).toBe(NAME); // msg_namelen
      expect(b.readBigUInt64LE(h + 16)).toBe(0x1000n + BigInt(200 + i * 16)); // msg_iov
      expect(b.readBigUInt64LE(h + 24)).toBe(1n); // msg_iovlen
      expect(b.readBigUInt64LE(200 + i * 16)).toBe(0x1000n + BigInt(400 + i * SLOT)); // iov_base
      expect(b.readBigUInt64LE(200 + i * 16 + 8)).toBe(BigInt(SLOT)); // iov_len
    }
  });
});

describe('BatchUdpSocket (loopback)', () => {
  it('reads more datagrams than one batch holds, answers each with its own ID, and tells a cut datagram', async () => {
    const server = BatchUdpSocket.bind('127.0.0.1', 0, 1 << 20);
    const port = server.port();
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const seen: { id: number; len: number; cut: boolean }[] = [];
    server.start(
      (s, n) => {
        for (let i = 0; i < n; i++) {
          const o = s.offset(i);
          seen.push({ id: s.rx.readUInt16BE(o), len: s.length(i), cut: s.truncated(i) });
          expect(s.sourceAddress(i)).toBe('127.0.0.1');
          expect(s.sourcePort(i)).toBe(client.address().port);
          if (s.truncated(i)) s.send(Buffer.from('cut'), s.sourcePort(i), s.sourceAddress(i));
          // the answer's own first two bytes are replaced by the datagram's ID
          else s.reply(i, Buffer.from([0xff, 0xff, ...Buffer.from(`answer to ${s.rx.toString('latin1', o + 2, o + s.length(i))}`)]));
        }
      },
      (err) => {
        throw err;
      },
    );
    const total = BATCH * 2 + 5;
    const answers: Buffer[] = [];
    const got = new Promise<void>((resolve) =>
      client.on('message', (m) => {
        answers.push(m);
        if (answers.length === total + 1) resolve();
      }),
    );
    // sent before the server reads: they queue up, and the first read finds a full batch
    for (let i = 0; i < total; i++) {
      const q = Buffer.alloc(6);
      q.writeUInt16BE(i, 0);
      q.write(`q${String(i).padStart(3, '0')}`, 2, 'latin1');
      client.send(q, port, '127.0.0.1');
    }
    client.send(Buffer.alloc(SLOT + 100, 1), port, '127.0.0.1');
    await got;
    client.close();
    server.close();
    expect(seen.filter((s) => !s.cut).map((s) => s.id)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(seen.filter((s) => s.cut)).toEqual([{ id: 0x0101, len: SLOT, cut: true }]);
    const byId = new Map(answers.filter((a) => a.toString() !== 'cut').map((a) => [a.readUInt16BE(0), a.toString('latin1', 2)]));
    for (let i = 0; i < total; i++) expect(byId.get(i)).toBe(`answer to q${String(i).padStart(3, '0')}`);
    expect(answers.some((a) => a.toString() === 'cut')).toBe(true);
  });

  it('refuses an address this host does not have with the bind errno', () => {
    expect(() => BatchUdpSocket.bind('192.0.2.77', 0, 1 << 20)).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', syscall: 'bind' }));
  });

  it('can be closed from inside its own batch', async () => {
    const server = BatchUdpSocket.bind('127.0.0.1', 0, 1 << 20);
    const port = server.port();
    const closed = new Promise<number>((resolve) =>
      server.start(
        (s, n) => {
          s.close();
          resolve(n);
        },
        () => {},
      ),
    );
    const client = dgram.createSocket('udp4');
    client.send(Buffer.from('x'.repeat(12)), port, '127.0.0.1');
    expect(await closed).toBeGreaterThanOrEqual(1);
    client.close();
    // the port is free again
    const again = BatchUdpSocket.bind('127.0.0.1', port, 1 << 20);
    again.close();
  });
});
