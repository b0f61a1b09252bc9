import { describe, expect, it } from '@jest/globals';
import {
  NLA_F_NESTED, NLMSG_ERROR, attr, attrString, decodeMessages, encodeAttrs, encodeMessage, errorCode, parseAttrs,
} from '../../../runtime/netlink/codec.js';
import { broadcastOf, ipFromBytes, macFromBytes, networkOf, parseCidr, parseIp, parseMac } from '../../../runtime/netlink/addr.js';
import { UserError } from '../../../config/errors.js';

describe('attributes', () => {
  it('encodes length, type and 4-byte padding', () => {
    const b = encodeAttrs([attr.str(3, 'eth0'), attr.u8(7, 1)]);
    // "eth0\0" = 5 bytes → len 9, padded to 12; then u8 → len 5, padded to 8.
    expect(b.toString('hex')).toBe('0900' + '0300' + '6574683000' + '000000' + '0500' + '0700' + '01' + '000000');
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
