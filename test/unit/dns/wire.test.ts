import { describe, expect, it } from '@jest/globals';
import dnsPacket from 'dns-packet';
import { fastAnswer, parseSimpleQuery, questionEnd } from '../../../runtime/dns/wire.js';

const query = (name: string, type: 'A' | 'AAAA', edns = false) =>
  dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as dnsPacket.OptAnswer] : [],
  });

describe('the fast answer path', () => {
  it('writes what dns-packet reads back: answers pointing at the question, flags, OPT', () => {
    const q = query('db.web', 'A', true);
    const out = dnsPacket.decode(fastAnswer(q, questionEnd(q)!, 'A', ['10.1.0.2', '10.1.0.3'], 0, true, 4096, 0));
    expect(out).toMatchObject({ id: 4242, type: 'response', flag_aa: true, flag_rd: true, flag_ra: true, flag_tc: false, rcode: 'NOERROR' });
    expect(out.questions).toEqual([{ name: 'db.web', type: 'A', class: 'IN' }]);
    expect(out.answers!.map((a) => [a.name, a.type, (a as { data: string }).data])).toEqual([['db.web', 'A', '10.1.0.2'], ['db.web', 'A', '10.1.0.3']]);
    expect(out.additionals).toMatchObject([{ type: 'OPT', udpPayloadSize: 1232 }]);
  });

  it('AAAA, NXDOMAIN, and truncation past the limit', () => {
    const q6 = query('db', 'AAAA');
    expect(dnsPacket.decode(fastAnswer(q6, questionEnd(q6)!, 'AAAA', ['fd00:1::2'], 0, false, 512, 0)).answers).toMatchObject([{ type: 'AAAA', data: 'fd00:1::2' }]);
    const nx = dnsPacket.decode(fastAnswer(q6, questionEnd(q6)!, 'AAAA', [], 3, false, 512, 0));
    expect(nx).toMatchObject({ rcode: 'NXDOMAIN', answers: [] });
    const q = query('many', 'A');
    const big = dnsPacket.decode(fastAnswer(q, questionEnd(q)!, 'A', Array.from({ length: 40 }, (_, i) => `10.0.0.${i + 1}`), 0, false, 512, 0));
    expect(big).toMatchObject({ flag_tc: true, answers: [] });
  });

  it('a SERVFAIL for a forwarded name is not authoritative, and keeps the OPT record', () => {
    const q = query('example.org', 'A', true);
    const out = dnsPacket.decode(fastAnswer(q, questionEnd(q)!, 'A', [], 2, true, 4096, 0, false));
    expect(out).toMatchObject({ id: 4242, flag_aa: false, flag_rd: true, rcode: 'SERVFAIL', answers: [] });
    expect(out.additionals).toMatchObject([{ type: 'OPT' }]);
  });

  it('leaves compressed or broken questions to the general path', () => {
    const q = query('db', 'A');
    expect(questionEnd(q.subarray(0, 15))).toBeUndefined();
    const compressed = Buffer.from(q);
    compressed[12] = 0xc0;
    expect(questionEnd(compressed)).toBeUndefined();
  });

  it('reads the common query without the general decoder, and leaves the rest alone', () => {
    expect(parseSimpleQuery(query('Db.Web', 'A'))).toEqual({ name: 'Db.Web', type: 'A', qEnd: 12 + 8 + 4, edns: false, udpLimit: 512 });
    expect(parseSimpleQuery(query('db', 'AAAA', true))).toMatchObject({ name: 'db', type: 'AAAA', edns: true, udpLimit: 4096 });
    const mx = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'MX', name: 'db' }] });
    expect(parseSimpleQuery(mx)).toBeUndefined();
    const two = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'a' }, { type: 'A', name: 'b' }] });
    expect(parseSimpleQuery(two)).toBeUndefined();
    const response = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'db' }] });
    expect(parseSimpleQuery(response)).toBeUndefined();
    expect(parseSimpleQuery(query('db', 'A').subarray(0, 18))).toBeUndefined();
  });
});
