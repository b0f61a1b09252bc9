// Kernel replies → tsrun's types (pure). Only the attributes tsrun reads are decoded.
import { ipFromBytes, macFromBytes } from './addr.js';
import {
  AF_INET, AF_INET6, IFA, IFADDRMSG_LEN, IFF_UP, IFINFOMSG_LEN, IFLA, IFLA_INFO, NDA, NDMSG_LEN, NTF_SELF,
  NUD, RTA, RTAX_MTU, RTMSG_LEN, RT_TABLE_MAIN, attrString, attrU32, parseAttrs, parseIfaddrmsg, parseIfinfomsg,
  parseNdmsg, parseRtmsg, type NlMessage,
} from './codec.js';
import type { Address, FdbEntry, Link, Neighbour, Route } from './types.js';

export function parseLink(m: NlMessage): Link {
  const h = parseIfinfomsg(m.data);
  const a = parseAttrs(m.data.subarray(IFINFOMSG_LEN));
  const info = a.get(IFLA.LINKINFO);
  const link: Link = {
    index: h.index,
    name: attrString(a.get(IFLA.IFNAME)) ?? '',
    mtu: attrU32(a.get(IFLA.MTU)) ?? 0,
    mac: a.get(IFLA.ADDRESS) ? macFromBytes(a.get(IFLA.ADDRESS)!) : '',
    up: (h.flags & IFF_UP) !== 0,
  };
  const kind = info && attrString(parseAttrs(info).get(IFLA_INFO.KIND));
  if (kind) link.kind = kind;
  const master = attrU32(a.get(IFLA.MASTER));
  if (master) link.master = master;
  const alias = attrString(a.get(IFLA.IFALIAS));
  if (alias) link.alias = alias;
  const nsid = a.get(IFLA.LINK_NETNSID);
  if (nsid && nsid.length >= 4) link.linkNetnsId = nsid.readInt32LE(0);
  // IFLA_LINK equal to the link's own index means "no parent", unless it names a link elsewhere.
  const parent = attrU32(a.get(IFLA.LINK));
  if (parent !== undefined && (parent !== h.index || link.linkNetnsId !== undefined)) link.parentIndex = parent;
  return link;
}

const familyOf = (af: number): 4 | 6 | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined);

export function parseAddress(m: NlMessage): Address | undefined {
  const h = parseIfaddrmsg(m.data);
  const family = familyOf(h.family);
  const a = parseAttrs(m.data.subarray(IFADDRMSG_LEN));
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const bytes = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
  if (!family || !bytes) return undefined;
  const address = ipFromBytes(bytes);
  return { ifindex: h.index, family, address, prefixLen: h.prefixLen, cidr: `${address}/${h.prefixLen}`, scope: h.scope };
}

/** Routes of the main table only (the local and cache tables are the kernel's business). */
export function parseRoute(m: NlMessage): Route | undefined {
  const h = parseRtmsg(m.data);
  const family = familyOf(h.family);
  const a = parseAttrs(m.data.subarray(RTMSG_LEN));
  const table = attrU32(a.get(RTA.TABLE)) ?? h.table;
  if (!family || table !== RT_TABLE_MAIN) return undefined;
  const dst = a.get(RTA.DST);
  const route: Route = { family, dst: dst && h.dstLen > 0 ? `${ipFromBytes(dst)}/${h.dstLen}` : 'default', scope: h.scope, protocol: h.protocol };
  const gw = a.get(RTA.GATEWAY);
  if (gw) route.gateway = ipFromBytes(gw);
  const oif = attrU32(a.get(RTA.OIF));
  if (oif !== undefined) route.ifindex = oif;
  const metric = attrU32(a.get(RTA.PRIORITY));
  if (metric !== undefined) route.metric = metric;
  const metrics = a.get(RTA.METRICS);
  const mtu = metrics && attrU32(parseAttrs(metrics).get(RTAX_MTU));
  if (mtu) route.mtu = mtu;
  return route;
}

export function parseNeighbour(m: NlMessage): Neighbour | undefined {
  const h = parseNdmsg(m.data);
  const a = parseAttrs(m.data.subarray(NDMSG_LEN));
  const dst = a.get(NDA.DST);
  if (!familyOf(h.family) || !dst) return undefined;
  const n: Neighbour = { ifindex: h.ifindex, ip: ipFromBytes(dst), state: h.state, permanent: (h.state & NUD.PERMANENT) !== 0 };
  const ll = a.get(NDA.LLADDR);
  if (ll && ll.length === 6) n.mac = macFromBytes(ll);
  return n;
}

export function parseFdb(m: NlMessage): FdbEntry | undefined {
  const h = parseNdmsg(m.data);
  const a = parseAttrs(m.data.subarray(NDMSG_LEN));
  const ll = a.get(NDA.LLADDR);
  if (!ll || ll.length !== 6) return undefined;
  const e: FdbEntry = { ifindex: h.ifindex, mac: macFromBytes(ll), self: (h.flags & NTF_SELF) !== 0, permanent: (h.state & NUD.PERMANENT) !== 0 };
  const dst = a.get(NDA.DST);
  if (dst && (dst.length === 4 || dst.length === 16)) e.dst = ipFromBytes(dst);
  const master = attrU32(a.get(NDA.MASTER));
  if (master) e.master = master;
  return e;
}
