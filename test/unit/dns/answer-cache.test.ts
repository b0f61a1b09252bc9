import { describe, expect, it } from '@jest/globals';
import dnsPacket from 'dns-packet';
import { AnswerCache } from '../../../runtime/dns/answer-cache.js';
import { fastAnswer, parseSimpleQuery } from '../../../runtime/dns/wire.js';

const query = (id: number, name: string, edns = false) =>
  dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as dnsPacket.OptAnswer] : [],
  });
const client = (...bytes: number[]) => Buffer.from(bytes);
const get = (c: AnswerCache<string>, cl: Buffer, q: Buffer) => c.get(cl, 0, cl.length, q, 0, q.length);
const set = (c: AnswerCache<string>, cl: Buffer, q: Buffer, v: string) => c.set(cl, 0, cl.length, q, 0, q.length, v);

describe('AnswerCache', () => {
  it('finds a query by its client and its bytes but the ID, wherever the bytes lie', () => {
    const c = new AnswerCache<string>(16);
    const a = client(10, 0, 0, 2);
    set(c, a, query(1, 'db'), 'db answer');
    expect(get(c, a, query(999, 'db'))).toBe('db answer');
    // the same bytes inside a larger buffer (the batched socket's receive memory)
    const q = query(7, 'db');
    const mem = Buffer.concat([Buffer.alloc(5), client(10, 0, 0, 2), Buffer.alloc(3), q, Buffer.alloc(9)]);
    expect(c.get(mem, 5, 4, mem, 12, q.length)).toBe('db answer');
    // another client, another case, another EDNS0, a prefix: other keys
    expect(get(c, client(10, 0, 0, 3), query(1, 'db'))).toBeUndefined();
    expect(get(c, a, query(1, 'DB'))).toBeUndefined();
    expect(get(c, a, query(1, 'db', true))).toBeUndefined();
    expect(c.get(a, 0, 4, q, 0, q.length - 1)).toBeUndefined();
    // the client/query boundary is part of the key
    expect(c.get(Buffer.concat([a, q.subarray(2, 3)]), 0, 5, Buffer.concat([q.subarray(0, 2), q.subarray(3)]), 0, q.length - 1)).toBeUndefined();
  });

  it('keeps every entry apart however they collide, replaces a value set again, and forgets on clear', () => {
    const c = new AnswerCache<string>(4096);
    for (let i = 0; i < 3000; i++) set(c, client(10, 0, i >> 8, i & 255), query(i, `n${i % 50}`), `v${i}`);
    expect(c.size).toBe(3000);
    for (let i = 0; i < 3000; i++) expect(get(c, client(10, 0, i >> 8, i & 255), query(0, `n${i % 50}`))).toBe(`v${i}`);
    set(c, client(10, 0, 0, 0), query(0, 'n0'), 'again');
    expect(get(c, client(10, 0, 0, 0), query(5, 'n0'))).toBe('again');
    expect(c.size).toBe(3000);
    c.clear();
    expect(c.size).toBe(0);
    expect(get(c, client(10, 0, 0, 0), query(0, 'n0'))).toBeUndefined();
  });

  it('is emptied when full, then fills again', () => {
    const c = new AnswerCache<string>(8);
    for (let i = 0; i < 8; i++) set(c, client(1, 1, 1, i), query(1, 'x'), `v${i}`);
    expect(c.size).toBe(8);
    set(c, client(1, 1, 1, 200), query(1, 'x'), 'ninth');
    expect(c.size).toBe(1);
    expect(get(c, client(1, 1, 1, 200), query(1, 'x'))).toBe('ninth');
    expect(get(c, client(1, 1, 1, 0), query(1, 'x'))).toBeUndefined();
  });

  it('a cached answer with the new query\'s ID is byte for byte the answer encoded afresh for it', () => {
    const c = new AnswerCache<Buffer>(16);
    const a = client(10, 0, 0, 2);
    const encode = (q: Buffer) => {
      const s = parseSimpleQuery(q)!;
      return fastAnswer(q, s.qEnd, s.type, ['10.240.0.7', '10.240.0.8'], 0, s.edns, s.udpLimit, 0);
    };
    for (const edns of [false, true]) {
      const first = query(1, 'Svc7', edns);
      c.set(a, 0, 4, first, 0, first.length, encode(first));
      const next = query(0xbeef, 'Svc7', edns);
      const cached = Buffer.from(c.get(a, 0, 4, next, 0, next.length)!);
      cached[0] = next[0]!;
      cached[1] = next[1]!;
      expect(cached.equals(encode(next))).toBe(true);
    }
  });
});
