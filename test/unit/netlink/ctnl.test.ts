// The ctnetlink messages byte for byte: the dump request, the parse of an entry as the kernel
// sends it (nested tuples, network-order addresses and ports), the delete request, and matching.
import { describe, expect, it } from '@jest/globals';
import { AF_INET, AF_INET6, NLA_F_NESTED, attr, encodeAttrs, parseAttrs } from '../../../runtime/netlink/codec.js';
import {
  CTA, CTA_IP, CTA_PROTO, CTA_STATS_GLOBAL, CTA_TUPLE, IPCTNL_MSG, ctDeleteBody, ctDumpBody, ctMsgType, ctStatsBody, isUdpTo, namesAddress, nfgenmsg, parseCtEntry,
  parseCtEntryCount,
} from '../../../runtime/netlink/ctnl.js';
import { parseIp } from '../../../runtime/netlink/addr.js';

const ip = (s: string): Buffer => parseIp(s).bytes;

function tuple(src: string, dst: string, proto: number, sport: number, dport: number) {
  const v6 = src.includes(':');
  return [
    attr.nest(CTA_TUPLE.IP, [attr.bytes(v6 ? CTA_IP.V6_SRC : CTA_IP.V4_SRC, ip(src)), attr.bytes(v6 ? CTA_IP.V6_DST : CTA_IP.V4_DST, ip(dst))]),
    attr.nest(CTA_TUPLE.PROTO, [attr.u8(CTA_PROTO.NUM, proto), attr.be16(CTA_PROTO.SRC_PORT, sport), attr.be16(CTA_PROTO.DST_PORT, dport)]),
  ];
}

/** A dump message's payload as the kernel builds it (nfgenmsg, then the entry's attributes). */
function entry(family: number, orig: ReturnType<typeof tuple>, reply: ReturnType<typeof tuple>, extra: ReturnType<typeof attr.bytes>[] = []): Buffer {
  return Buffer.concat([nfgenmsg(family), encodeAttrs([attr.nest(CTA.TUPLE_ORIG, orig), attr.nest(CTA.TUPLE_REPLY, reply), ...extra])]);
}

describe('ctnetlink messages', () => {
  it('message types carry the subsystem in the high byte', () => {
    expect(ctMsgType(IPCTNL_MSG.GET)).toBe(0x0101);
    expect(ctMsgType(IPCTNL_MSG.DELETE)).toBe(0x0102);
  });

  it('the stats request and its reply: the namespace entry count, big-endian', () => {
    expect(ctMsgType(IPCTNL_MSG.GET_STATS)).toBe(0x0105);
    expect([...ctStatsBody()]).toEqual([0, 0, 0, 0]);
    const be32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    const reply = (attrs: ReturnType<typeof attr.bytes>[]) => Buffer.concat([nfgenmsg(0), encodeAttrs(attrs)]);
    expect(parseCtEntryCount(reply([attr.bytes(CTA_STATS_GLOBAL.ENTRIES, be32(0)), attr.bytes(CTA_STATS_GLOBAL.MAX_ENTRIES, be32(262144))]))).toBe(0);
    expect(parseCtEntryCount(reply([attr.bytes(CTA_STATS_GLOBAL.MAX_ENTRIES, be32(262144)), attr.bytes(CTA_STATS_GLOBAL.ENTRIES, be32(70000))]))).toBe(70000);
    expect(parseCtEntryCount(reply([attr.bytes(CTA_STATS_GLOBAL.MAX_ENTRIES, be32(1))]))).toBeUndefined();
    expect(parseCtEntryCount(Buffer.from([0, 0]))).toBeUndefined();
  });

  it('a dump request is an nfgenmsg of the family (AF_UNSPEC by default: all), version 0, res_id 0', () => {
    expect([...ctDumpBody()]).toEqual([0, 0, 0, 0]);
    expect([...ctDumpBody(AF_INET)]).toEqual([2, 0, 0, 0]);
    expect([...ctDumpBody(AF_INET6)]).toEqual([10, 0, 0, 0]);
  });

  it('parses an IPv4 UDP entry with a DNATed reply side, its zone and id', () => {
    const zone = Buffer.from([0, 7]);
    const id = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const e = parseCtEntry(entry(AF_INET, tuple('10.0.0.4', '10.0.0.1', 17, 41000, 7000), tuple('10.0.0.2', '10.0.0.4', 17, 53, 41000), [attr.bytes(CTA.ZONE, zone), attr.bytes(CTA.ID, id)]))!;
    expect(e.family).toBe(AF_INET);
    expect(e.orig).toEqual({ src: ip('10.0.0.4'), dst: ip('10.0.0.1'), proto: 17, srcPort: 41000, dstPort: 7000 });
    expect(e.reply).toEqual({ src: ip('10.0.0.2'), dst: ip('10.0.0.4'), proto: 17, srcPort: 53, dstPort: 41000 });
    expect(e.zone).toEqual(zone);
    expect(e.id).toEqual(id);
  });

  it('ports are read in network byte order', () => {
    const raw = entry(AF_INET, tuple('1.2.3.4', '5.6.7.8', 17, 0x1234, 0xabcd), tuple('5.6.7.8', '1.2.3.4', 17, 0xabcd, 0x1234));
    // the source port's bytes as they sit on the wire
    expect(raw.includes(Buffer.from([0x12, 0x34]))).toBe(true);
    expect(parseCtEntry(raw)!.orig.dstPort).toBe(0xabcd);
  });

  it('parses IPv6 addresses and skips a message without an original tuple', () => {
    const e = parseCtEntry(entry(AF_INET6, tuple('fd00::2', 'fd00::1', 17, 1, 2), tuple('fd00::1', 'fd00::2', 17, 2, 1)))!;
    expect(e.orig.src).toEqual(ip('fd00::2'));
    expect(e.reply.src).toEqual(ip('fd00::1'));
    expect(parseCtEntry(nfgenmsg(AF_INET))).toBeUndefined();
    expect(parseCtEntry(Buffer.alloc(2))).toBeUndefined();
  });

  it('a delete names the entry by its original tuple (nested, verbatim), zone and id, in its family', () => {
    const orig = tuple('10.0.0.4', '10.0.0.1', 17, 41000, 7000);
    const zone = Buffer.from([0, 7]);
    const id = Buffer.from([1, 2, 3, 4]);
    const e = parseCtEntry(entry(AF_INET, orig, tuple('10.0.0.2', '10.0.0.4', 17, 53, 41000), [attr.bytes(CTA.ZONE, zone), attr.bytes(CTA.ID, id)]))!;
    const b = ctDeleteBody(e);
    expect([...b.subarray(0, 4)]).toEqual([2, 0, 0, 0]);
    expect(b.subarray(4)).toEqual(encodeAttrs([attr.nest(CTA.TUPLE_ORIG, orig), attr.bytes(CTA.ZONE, zone), attr.bytes(CTA.ID, id)]));
    // the tuple attribute carries NLA_F_NESTED and no reply tuple is sent
    expect(b.readUInt16LE(4 + 2)).toBe(CTA.TUPLE_ORIG | NLA_F_NESTED);
    expect(parseAttrs(b.subarray(4)).has(CTA.TUPLE_REPLY)).toBe(false);
  });

  it('a delete without zone or id sends the tuple alone', () => {
    const orig = tuple('fd00::2', 'fd00::1', 6, 1, 2);
    const e = parseCtEntry(entry(AF_INET6, orig, tuple('fd00::1', 'fd00::2', 6, 2, 1)))!;
    expect(ctDeleteBody(e)).toEqual(Buffer.concat([Buffer.from([10, 0, 0, 0]), encodeAttrs([attr.nest(CTA.TUPLE_ORIG, orig)])]));
  });
});

describe('matching', () => {
  const dnat = parseCtEntry(entry(AF_INET, tuple('10.0.0.4', '10.0.0.1', 17, 41000, 7000), tuple('10.0.0.2', '10.0.0.4', 17, 53, 41000)))!;
  const masq = parseCtEntry(entry(AF_INET, tuple('10.0.0.2', '8.8.8.8', 6, 5555, 443), tuple('8.8.8.8', '192.168.1.1', 6, 443, 5555)))!;

  it('an address matches on any of the four sides', () => {
    expect(namesAddress(dnat, [ip('10.0.0.2')])).toBe(true); // reply src only
    expect(namesAddress(dnat, [ip('10.0.0.4')])).toBe(true);
    expect(namesAddress(masq, [ip('192.168.1.1')])).toBe(true); // reply dst only
    expect(namesAddress(masq, [ip('10.0.0.9'), ip('fd00::2')])).toBe(false);
  });

  it('a UDP port matches on the original destination port, and the address if given', () => {
    expect(isUdpTo(dnat, 7000)).toBe(true);
    expect(isUdpTo(dnat, 7000, ip('10.0.0.1'))).toBe(true);
    expect(isUdpTo(dnat, 7000, ip('10.0.0.3'))).toBe(false);
    expect(isUdpTo(dnat, 53)).toBe(false); // the reply side's port does not count
    expect(isUdpTo(masq, 443)).toBe(false); // TCP
  });
});
