// The requests tsrun sends, decoded: the layout the kernel insists on (nesting flags, the veth
// peer's embedded ifinfomsg, AF_BRIDGE for FDB and port flags) and input validation. A request
// body has the same layout as the kernel's reply, so the parsers read the requests back too.
import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import {
  AF_BRIDGE, AF_INET, AF_INET6, IFA, IFADDRMSG_LEN, IFA_F_NODAD, IFF_UP, IFINFOMSG_LEN, IFLA, IFLA_INFO, NDMSG_LEN,
  NLA_F_NESTED, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NTF_SELF, NUD, RTA, RTM, RTMSG_LEN,
  RT_SCOPE, VETH_INFO_PEER, attrU32, parseAttrs, parseIfaddrmsg, parseIfinfomsg, parseNdmsg, parseRtmsg, type NlMessage,
} from '../../../runtime/netlink/codec.js';
import { parseAddress, parseFdb, parseLink, parseNeighbour, parseRoute } from '../../../runtime/netlink/parse.js';
import * as rq from '../../../runtime/netlink/requests.js';

const asMsg = (r: rq.Request): NlMessage => ({ type: r.type, flags: r.flags, seq: 1, port: 0, data: r.body });
const linkAttrs = (r: rq.Request): Map<number, Buffer> => parseAttrs(r.body.subarray(IFINFOMSG_LEN));
/** The raw type field of the first attribute of `type` (to see NLA_F_NESTED). */
function rawType(buf: Buffer, type: number): number | undefined {
  for (let off = 0; off + 4 <= buf.length; off += (buf.readUInt16LE(off) + 3) & ~3) {
    if ((buf.readUInt16LE(off + 2) & 0x3fff) === type) return buf.readUInt16LE(off + 2);
  }
  return undefined;
}

describe('links', () => {
  it('creates a veth whose peer carries its own ifinfomsg, name and netns fd', () => {
    const r = rq.createVeth({ name: 'tsv1', peerName: 'eth0', peerNsFd: 42, mtu: 1400, mac: '02:00:00:00:00:01', peerMac: '02:00:00:00:00:02', master: 5, up: true });
    expect(r.type).toBe(RTM.NEWLINK);
    expect(r.flags).toBe(NLM_F_CREATE | NLM_F_EXCL);
    expect(parseIfinfomsg(r.body)).toMatchObject({ flags: IFF_UP, change: IFF_UP, index: 0 });
    expect(parseLink(asMsg(r))).toMatchObject({ name: 'tsv1', kind: 'veth', mtu: 1400, mac: '02:00:00:00:00:01', master: 5, up: true });

    const info = parseAttrs(linkAttrs(r).get(IFLA.LINKINFO)!);
    const data = parseAttrs(info.get(IFLA_INFO.DATA)!);
    const peer = data.get(VETH_INFO_PEER)!;
    expect(rawType(info.get(IFLA_INFO.DATA)!, VETH_INFO_PEER)).toBe(VETH_INFO_PEER); // no NLA_F_NESTED
    expect(parseIfinfomsg(peer)).toMatchObject({ index: 0, flags: 0 });
    const peerAttrs = parseAttrs(peer.subarray(IFINFOMSG_LEN));
    expect(peerAttrs.get(IFLA.IFNAME)?.toString()).toBe('eth0\0');
    expect(attrU32(peerAttrs.get(IFLA.NET_NS_FD))).toBe(42);
    expect(attrU32(peerAttrs.get(IFLA.MTU))).toBe(1400);
    expect(peerAttrs.get(IFLA.ADDRESS)).toEqual(Buffer.from([2, 0, 0, 0, 0, 2]));
    expect(peerAttrs.has(IFLA.MASTER)).toBe(false);
  });

  it('creates macvlan and vxlan with their kind data', () => {
    const m = rq.createMacvlan({ name: 'eth0', parentIndex: 3, mode: 'bridge', nsFd: 9 });
    const ma = linkAttrs(m);
    expect(attrU32(ma.get(IFLA.LINK))).toBe(3);
    expect(attrU32(ma.get(IFLA.NET_NS_FD))).toBe(9);
    expect(attrU32(parseAttrs(parseAttrs(ma.get(IFLA.LINKINFO)!).get(IFLA_INFO.DATA)!).get(1))).toBe(4);
    expect(() => rq.createMacvlan({ name: 'x', parentIndex: 3, mode: 'nope' as 'bridge' })).toThrow(UserError);

    const v = rq.createVxlan({ name: 'vx0', vni: 42, local: '192.168.1.1' });
    const vd = parseAttrs(parseAttrs(linkAttrs(v).get(IFLA.LINKINFO)!).get(IFLA_INFO.DATA)!);
    expect(attrU32(vd.get(1))).toBe(42);
    expect(vd.get(15)).toEqual(Buffer.from([0x12, 0xb5])); // 4789, network order
    expect(vd.get(7)).toEqual(Buffer.from([0])); // learning off
    expect(vd.get(4)).toEqual(Buffer.from([192, 168, 1, 1]));
    expect(parseAttrs(parseAttrs(linkAttrs(rq.createVxlan({ name: 'vx6', vni: 1, local: 'fd00::1' })).get(IFLA.LINKINFO)!).get(IFLA_INFO.DATA)!).get(17)?.length).toBe(16);
    expect(() => rq.createVxlan({ name: 'vx0', vni: 1 << 24 })).toThrow(UserError);
  });

  it('selects links by index or by name, and validates names', () => {
    expect(parseIfinfomsg(rq.setUp(7, true).body)).toMatchObject({ index: 7, flags: IFF_UP, change: IFF_UP });
    expect(parseIfinfomsg(rq.setUp('eth0', false).body)).toMatchObject({ index: 0, flags: 0, change: IFF_UP });
    expect(linkAttrs(rq.setUp('eth0', false)).get(IFLA.IFNAME)?.toString()).toBe('eth0\0');
    expect(rq.setMaster(3, 5).flags).toBe(0); // a change, never a create
    expect(parseIfinfomsg(rq.setMaster(3, 5).body).change).toBe(0); // leaves flags alone
    expect(linkAttrs(rq.rename(4, 'eth1')).get(IFLA.IFNAME)?.toString()).toBe('eth1\0');
    expect(rq.deleteLink('tsv1').type).toBe(RTM.DELLINK);
    for (const bad of ['', 'sixteen-bytes-xx', 'a b', 'a/b', 'a:b', '..']) expect(() => rq.getLink(bad)).toThrow(UserError);
  });

  it('isolates a bridge port through a nested IFLA_PROTINFO in an AF_BRIDGE setlink', () => {
    const r = rq.setBridgePort(6, { isolated: true });
    expect(r.type).toBe(RTM.SETLINK);
    expect(parseIfinfomsg(r.body)).toMatchObject({ family: AF_BRIDGE, index: 6 });
    expect(rawType(r.body.subarray(IFINFOMSG_LEN), IFLA.PROTINFO)).toBe(IFLA.PROTINFO | NLA_F_NESTED);
    expect(parseAttrs(linkAttrs(r).get(IFLA.PROTINFO)!).get(33)).toEqual(Buffer.from([1]));
  });
});

describe('addresses', () => {
  it('adds v4 with a broadcast and v6 without DAD', () => {
    const v4 = rq.addAddress(3, '10.0.0.2/24');
    expect(parseIfaddrmsg(v4.body)).toMatchObject({ family: AF_INET, prefixLen: 24, index: 3, flags: 0 });
    expect(parseAttrs(v4.body.subarray(IFADDRMSG_LEN)).get(IFA.BROADCAST)).toEqual(Buffer.from([10, 0, 0, 255]));
    expect(parseAddress(asMsg(v4))).toEqual({ ifindex: 3, family: 4, address: '10.0.0.2', prefixLen: 24, cidr: '10.0.0.2/24', scope: 0 });

    const v6 = rq.addAddress(3, 'fd00::2/64');
    expect(parseIfaddrmsg(v6.body).flags).toBe(IFA_F_NODAD);
    expect(attrU32(parseAttrs(v6.body.subarray(IFADDRMSG_LEN)).get(IFA.FLAGS))).toBe(IFA_F_NODAD);
    expect(parseAddress(asMsg(v6))?.cidr).toBe('fd00::2/64');
    expect(parseAttrs(rq.addAddress(3, '10.0.0.2/31').body.subarray(IFADDRMSG_LEN)).has(IFA.BROADCAST)).toBe(false);
    expect(rq.deleteAddress(3, '10.0.0.2/24').type).toBe(RTM.DELADDR);
  });
});

describe('routes', () => {
  it('builds a default route via a gateway (global scope) and a device route (link scope)', () => {
    const d = rq.addRoute({ dst: 'default', gateway: '10.0.0.1' });
    expect(parseRtmsg(d.body)).toMatchObject({ family: AF_INET, dstLen: 0, table: 254, scope: RT_SCOPE.UNIVERSE, type: 1, protocol: 3 });
    expect(parseRoute(asMsg(d))).toMatchObject({ family: 4, dst: 'default', gateway: '10.0.0.1' });

    const dev = rq.addRoute({ dst: '10.1.2.3/16', ifindex: 4, mtu: 1400, metric: 10 });
    expect(parseRtmsg(dev.body)).toMatchObject({ dstLen: 16, scope: RT_SCOPE.LINK });
    expect(parseRoute(asMsg(dev))).toMatchObject({ dst: '10.1.0.0/16', ifindex: 4, mtu: 1400, metric: 10 });

    const v6 = rq.addRoute({ dst: 'default', family: 6, ifindex: 2 });
    expect(parseRtmsg(v6.body).family).toBe(AF_INET6);
    expect(parseRtmsg(rq.deleteRoute({ dst: 'default', gateway: 'fd00::1' }).body)).toMatchObject({ family: AF_INET6, scope: RT_SCOPE.NOWHERE });
    expect(parseAttrs(d.body.subarray(RTMSG_LEN)).has(RTA.DST)).toBe(false);
  });

  it('refuses routes it cannot make sense of', () => {
    expect(() => rq.addRoute({ dst: 'default', ifindex: 2 })).toThrow(/family needed/);
    expect(() => rq.addRoute({ dst: '10.0.0.0/8', gateway: 'fd00::1' })).toThrow(/mixed/);
    expect(() => rq.addRoute({ dst: 'default', gateway: '10.0.0.1', family: 6 })).toThrow(/mixed/);
    expect(() => rq.addRoute({ dst: '10.0.0.0/8' })).toThrow(/gateway or an interface/);
  });

  it('dumps one family', () => {
    const r = rq.dumpRoutes(6);
    expect(r.flags & NLM_F_DUMP).toBe(NLM_F_DUMP);
    expect(parseRtmsg(r.body).family).toBe(AF_INET6);
  });
});

describe('neighbours and FDB', () => {
  it('replaces neighbours (re-applying is fine)', () => {
    const r = rq.addNeighbour({ ifindex: 5, ip: '10.0.0.9', mac: '02:00:00:00:00:09', permanent: true });
    expect(r.flags).toBe(NLM_F_CREATE | NLM_F_REPLACE);
    expect(parseNdmsg(r.body)).toMatchObject({ family: AF_INET, ifindex: 5, state: NUD.PERMANENT });
    expect(parseNeighbour(asMsg(r))).toEqual({ ifindex: 5, ip: '10.0.0.9', mac: '02:00:00:00:00:09', state: NUD.PERMANENT, permanent: true });
  });

  it('appends FDB entries like `bridge fdb append`: AF_BRIDGE, NTF_SELF, permanent', () => {
    const r = rq.addFdb({ ifindex: 8, mac: '00:00:00:00:00:00', dst: '192.168.1.2' });
    expect(r.flags).toBe(NLM_F_CREATE | NLM_F_APPEND);
    expect(parseNdmsg(r.body)).toMatchObject({ family: AF_BRIDGE, ifindex: 8, flags: NTF_SELF, state: NUD.PERMANENT | NUD.NOARP });
    expect(parseFdb(asMsg(r))).toEqual({ ifindex: 8, mac: '00:00:00:00:00:00', dst: '192.168.1.2', self: true, permanent: true });
    const del = rq.deleteFdb({ ifindex: 8, mac: '00:00:00:00:00:00', dst: '192.168.1.2' });
    expect(del.type).toBe(RTM.DELNEIGH);
    expect(parseAttrs(del.body.subarray(NDMSG_LEN)).size).toBe(2);
  });
});
