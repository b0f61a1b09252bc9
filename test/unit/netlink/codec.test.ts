import { describe, expect, it } from '@jest/globals';
import {
  NLA_F_NESTED, NLMSG_ERROR, attr, attrString, body, decodeMessages, encodeAttrs, encodeMessage, errorCode, ifaddrmsg, ifinfomsg, ndmsg, parseAttrs, rtmsg,
  type Attr,
} from '../../../runtime/netlink/codec.js';
import { broadcastOf, ipFromBytes, macFromBytes, networkOf, parseCidr, parseIp, parseMac } from '../../../runtime/netlink/addr.js';
import { UserError } from '../../../config/errors.js';

describe('attributes', () => {
  it('encodes length, type and 4-byte padding', () => {
    const b = encodeAttrs([attr.str(3, 'eth0'), attr.u8(7, 1)]);
    // "eth0\0" = 5 bytes → len 9, padded to 12; then u8 → len 5, padded to 8.
    expect(b.toString('hex')).toBe('0900' + '0300' + '6574683000' + '000000' + '0500' + '0700' + '01' + '000000');
  });

  it('encodes exactly what the per-attribute concatenation it replaced encoded (random trees, headers and bodies)', () => {
    // The former encoder, kept here as the reference: a head, the payload and its padding per
    // attribute, concatenated.
    const reference = (attrs: readonly Attr[]): Buffer =>
      Buffer.concat(
        attrs.flatMap((a) => {
          const payload = 'nested' in a ? reference(a.nested) : a.data;
          const head = Buffer.alloc(4);
          head.writeUInt16LE(4 + payload.length, 0);
          head.writeUInt16LE(a.type | ('nested' in a ? NLA_F_NESTED : 0), 2);
          return [head, payload, Buffer.alloc(((4 + payload.length + 3) & ~3) - 4 - payload.length)];
        }),
      );
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const tree = (depth: number): Attr[] =>
      Array.from({ length: rnd(5) }, () => {
        const t = rnd(0x3fff);
        switch (rnd(depth > 0 ? 7 : 6)) {
          case 0: return attr.u8(t, rnd(256));
          case 1: return attr.u16(t, rnd(0x10000));
          case 2: return attr.u32(t, rnd(0x7fffffff) * 2 + rnd(2));
          case 3: return attr.be16(t, rnd(0x10000));
          case 4: return attr.str(t, 'x'.repeat(rnd(20)));
          case 5: return attr.bytes(t, Buffer.from(Array.from({ length: rnd(9) }, () => rnd(256))));
          default: return attr.nest(t, tree(depth - 1));
        }
      });
    for (let i = 0; i < 500; i++) {
      const attrs = tree(3);
      expect(encodeAttrs(attrs).toString('hex')).toBe(reference(attrs).toString('hex'));
      const head = Buffer.from(Array.from({ length: 4 * rnd(5) }, () => rnd(256)));
      expect(body(head, attrs).toString('hex')).toBe(Buffer.concat([head, reference(attrs)]).toString('hex'));
    }
    expect((attr.u32(1, -1) as { data: Buffer }).data).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(ifinfomsg({ family: 7, type: 0x1234, index: -2, flags: 0x80000001, change: 1 }).toString('hex')).toBe('07003412' + 'feffffff' + '01000080' + '01000000');
    expect(ifaddrmsg({ family: 10, prefixLen: 64, flags: 2, scope: 253, index: 0x01020304 }).toString('hex')).toBe('0a4002fd04030201');
    expect(rtmsg({ family: 2, dstLen: 24, table: 254, protocol: 3, scope: 0, type: 1, flags: 0x100 }).toString('hex')).toBe('021800' + '00fe0300' + '01' + '00010000');
    expect(ndmsg({ family: 2, ifindex: 5, state: 0x80, flags: 4, type: 1 }).toString('hex')).toBe('02000000' + '05000000' + '8000' + '0401');
    const m = encodeMessage({ type: 0x1234, flags: 0x0305, seq: 0xfffffffe, port: 0x80000000, data: Buffer.from([1, 2, 3]) });
    expect(m.toString('hex')).toBe('13000000' + '3412' + '0503' + 'feffffff' + '00000080' + '010203');
  });

  it('sets NLA_F_NESTED on nests only, and parses it away', () => {
    const b = encodeAttrs([attr.nest(12, [attr.u8(33, 1)])]);
    expect(b.readUInt16LE(2)).toBe(12 | NLA_F_NESTED);
    expect(b.readUInt16LE(0)).toBe(4 + 8);
    const top = parseAttrs(b);
    expect([...top.keys()]).toEqual([12]);
    expect(parseAttrs(top.get(12)!).get(33)).toEqual(Buffer.from([1]));
  });

  it('writes integers host-endian and ports big-endian', () => {
    expect(parseAttrs(encodeAttrs([attr.u32(1, 0x01020304)])).get(1)).toEqual(Buffer.from([4, 3, 2, 1]));
    expect(parseAttrs(encodeAttrs([attr.be16(15, 4789)])).get(15)).toEqual(Buffer.from([0x12, 0xb5]));
  });

  it('reads NUL-terminated strings and stops at a truncated attribute', () => {
    expect(attrString(Buffer.from('lo\0\0'))).toBe('lo');
    const b = Buffer.concat([encodeAttrs([attr.str(3, 'a')]), Buffer.from([0xff, 0x00, 0x01, 0x00])]);
    expect([...parseAttrs(b).keys()]).toEqual([3]);
  });
});

describe('messages', () => {
  it('round-trips headers and splits a datagram into messages', () => {
    const one = encodeMessage({ type: 16, flags: 0x405, seq: 7, port: 99, data: Buffer.from([1, 2, 3]) });
    expect(one.readUInt32LE(0)).toBe(19);
    const two = encodeMessage({ type: 3, flags: 2, seq: 8, port: 0, data: Buffer.alloc(4) });
    const padded = Buffer.concat([one, Buffer.alloc(1), two]);
    const msgs = decodeMessages(padded);
    expect(msgs.map((m) => [m.type, m.flags, m.seq, m.port, m.data.length])).toEqual([[16, 0x405, 7, 99, 3], [3, 2, 8, 0, 4]]);
  });

  it('reads every header field whole, high bits included', () => {
    const m = encodeMessage({ type: 0xfffe, flags: 0x8301, seq: 0xfffffff0, port: 0x80000001, data: Buffer.alloc(0) });
    expect(decodeMessages(m).map((x) => [x.type, x.flags, x.seq, x.port])).toEqual([[0xfffe, 0x8301, 0xfffffff0, 0x80000001]]);
    const a = Buffer.concat([encodeAttrs([attr.u32(0x3fff, 1)])]);
    expect([...parseAttrs(a).keys()]).toEqual([0x3fff]);
  });

  it('reads the errno of an error message (0 is an ACK)', () => {
    const e = Buffer.alloc(20);
    e.writeInt32LE(-17, 0);
    expect(errorCode(e)).toBe(17);
    expect(errorCode(Buffer.alloc(20))).toBe(0);
    expect(NLMSG_ERROR).toBe(2);
  });

  it('rejects a message whose length runs past the datagram', () => {
    const m = encodeMessage({ type: 16, flags: 0, seq: 1, port: 0, data: Buffer.alloc(8) });
    expect(() => decodeMessages(m.subarray(0, 20))).toThrow(/malformed/);
  });
});

describe('addresses', () => {
  it('parses IPs and CIDRs to bytes and back', () => {
    expect(parseIp('10.0.0.2').bytes).toEqual(Buffer.from([10, 0, 0, 2]));
    expect(parseCidr('fd00::2/64')).toMatchObject({ family: 10, prefixLen: 64, text: 'fd00::2' });
    expect(parseCidr('10.1.2.3')).toMatchObject({ prefixLen: 32 });
    expect(ipFromBytes(Buffer.from('fd000000000000000000000000000001', 'hex'))).toBe('fd00::1');
    expect(networkOf(parseCidr('10.1.2.3/12')).text).toBe('10.0.0.0');
    expect(networkOf(parseCidr('fd00:1:2:3::9/60')).text).toBe('fd00:1:2::');
    expect([...broadcastOf(parseCidr('10.1.2.3/23'))]).toEqual([10, 1, 3, 255]);
  });

  it('refuses sloppy input with a UserError', () => {
    for (const bad of ['10.1', '10.0.0.1/33', 'fd00::/129', '1.2.3.4/x', 'fd00::1/']) expect(() => parseCidr(bad)).toThrow(UserError);
    expect(() => parseMac('02:00:00:00:00')).toThrow(UserError);
  });

  it('formats MACs', () => {
    expect(macFromBytes(parseMac('02:AB:00:00:00:0f'))).toBe('02:ab:00:00:00:0f');
  });
});
