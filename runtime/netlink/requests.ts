// One pure function per rtnetlink request tsrun sends: options in, {type, flags, body} out.
// Rtnl sends them; unit tests decode them. Text inputs are validated here (UserError), so a bad
// address never reaches the kernel.
import { UserError } from '../../config/errors.js';
import { broadcastOf, networkOf, parseCidr, parseIp, parseMac } from './addr.js';
import {
  AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, IFA, IFA_F_NODAD, IFF_UP, IFLA, IFLA_BRPORT_ISOLATED, IFLA_BRPORT_MODE, IFLA_INFO,
  IFLA_IPVLAN, IFLA_MACVLAN_MODE, IFLA_VXLAN, IPVLAN_FLAGS, IPVLAN_MODE, MACVLAN_MODE, NDA, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
  NLM_F_REPLACE, NTF_SELF, NUD, RTA, RTAX_MTU, RTM, RTN_UNICAST, RTPROT_BOOT, RT_SCOPE, RT_TABLE_MAIN,
  VETH_INFO_PEER, attr, body, encodeAttrs, ifaddrmsg, ifinfomsg, ndmsg, rtmsg, type Attr,
} from './codec.js';
import type {
  BridgeOptions, FdbSpec, IpFamily, IpvlanOptions, LinkRef, MacvlanOptions, NeighbourSpec, RouteSpec, VethOptions, VxlanOptions,
} from './types.js';

export interface Request {
  type: number;
  /** Besides NLM_F_REQUEST|NLM_F_ACK, which the sender adds. */
  flags: number;
  body: Buffer;
}

const IFNAMSIZ = 16;
const IFLA_VXLAN_LINK = 3;
const VXLAN_DEFAULT_PORT = 4789;

export function checkIfname(name: string): string {
  if (name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw new UserError(`invalid interface name "${name}" (1-15 bytes, no whitespace, '/' or ':')`);
  }
  return name;
}

/** The ifinfomsg index and attributes that select a link by index or by name. */
function select(ref: LinkRef): { index: number; attrs: Attr[] } {
  return typeof ref === 'number' ? { index: ref, attrs: [] } : { index: 0, attrs: [attr.str(IFLA.IFNAME, checkIfname(ref))] };
}

const upFlags = (up: boolean | undefined): { flags: number; change: number } => (up ? { flags: IFF_UP, change: IFF_UP } : { flags: 0, change: 0 });

/**
 * Attributes every new link may carry. Not IFLA_IFALIAS: the kernel ignores it on creation, so
 * Rtnl sets an alias with a second request.
 */
function commonLinkAttrs(o: { name: string; mtu?: number; mac?: string; master?: number }): Attr[] {
  const a: Attr[] = [attr.str(IFLA.IFNAME, checkIfname(o.name))];
  if (o.mtu !== undefined) a.push(attr.u32(IFLA.MTU, o.mtu));
  if (o.mac !== undefined) a.push(attr.bytes(IFLA.ADDRESS, parseMac(o.mac)));
  if (o.master !== undefined) a.push(attr.u32(IFLA.MASTER, o.master));
  return a;
}

const linkinfo = (kind: string, data?: Attr[]): Attr =>
  attr.nest(IFLA.LINKINFO, [attr.str(IFLA_INFO.KIND, kind), ...(data ? [attr.nest(IFLA_INFO.DATA, data)] : [])]);

const newLink = (header: Buffer, attrs: Attr[]): Request => ({ type: RTM.NEWLINK, flags: NLM_F_CREATE | NLM_F_EXCL, body: body(header, attrs) });

// ---------------------------------------------------------------- links

export function createVeth(o: VethOptions): Request {
  // VETH_INFO_PEER is not an attribute list but a whole ifinfomsg followed by attributes, so it
  // goes as raw bytes (and without NLA_F_NESTED, as iproute2 sends it). Its IFLA_NET_NS_FD creates
  // the peer directly inside the other namespace. The peer cannot be brought up here: the kernel
  // configures it before the pair is joined and refuses IFF_UP with ENOTCONN.
  const peerAttrs: Attr[] = commonLinkAttrs({ name: o.peerName, mtu: o.mtu, mac: o.peerMac });
  if (o.peerNsFd !== undefined) peerAttrs.push(attr.u32(IFLA.NET_NS_FD, o.peerNsFd));
  const peer = Buffer.concat([ifinfomsg(), encodeAttrs(peerAttrs)]);
  const attrs = commonLinkAttrs(o);
  attrs.push(linkinfo('veth', [attr.bytes(VETH_INFO_PEER, peer)]));
  return newLink(ifinfomsg(upFlags(o.up)), attrs);
}

export function createBridge(o: BridgeOptions): Request {
  const attrs = commonLinkAttrs(o);
  attrs.push(linkinfo('bridge'));
  return newLink(ifinfomsg(upFlags(o.up)), attrs);
}

export function createMacvlan(o: MacvlanOptions): Request {
  if (!(o.mode in MACVLAN_MODE)) throw new UserError(`invalid macvlan mode "${o.mode}"`);
  const attrs = commonLinkAttrs(o);
  // IFLA_LINK is resolved in the sender's namespace, IFLA_NET_NS_FD says where the link lives:
  // the parent stays on the host while the macvlan is born inside the container.
  attrs.push(attr.u32(IFLA.LINK, o.parentIndex));
  if (o.nsFd !== undefined) attrs.push(attr.u32(IFLA.NET_NS_FD, o.nsFd));
  attrs.push(linkinfo('macvlan', [attr.u32(IFLA_MACVLAN_MODE, MACVLAN_MODE[o.mode])]));
  return newLink(ifinfomsg(upFlags(o.up)), attrs);
}

export function createIpvlan(o: IpvlanOptions): Request {
  if (!Object.hasOwn(IPVLAN_MODE, o.mode)) throw new UserError(`invalid ipvlan mode "${o.mode}" (l2, l3 or l3s)`);
  const flags = o.flags ?? 'bridge';
  if (!Object.hasOwn(IPVLAN_FLAGS, flags)) throw new UserError(`invalid ipvlan flag "${flags}" (bridge, private or vepa)`);
  // No IFLA_ADDRESS: every ipvlan shares its parent's MAC (the kernel refuses another one).
  const attrs = commonLinkAttrs({ name: o.name, mtu: o.mtu });
  attrs.push(attr.u32(IFLA.LINK, o.parentIndex));
  if (o.nsFd !== undefined) attrs.push(attr.u32(IFLA.NET_NS_FD, o.nsFd));
  attrs.push(linkinfo('ipvlan', [attr.u16(IFLA_IPVLAN.MODE, IPVLAN_MODE[o.mode]), attr.u16(IFLA_IPVLAN.FLAGS, IPVLAN_FLAGS[flags])]));
  return newLink(ifinfomsg(upFlags(o.up)), attrs);
}

/**
 * Asks whether the kernel knows link kind `kind` without creating anything: a new link of that
 * kind with no parent (IFLA_LINK). The kernel looks the kind up first (loading its module if it
 * can) and answers EOPNOTSUPP when it has none; a known macvlan/ipvlan kind then fails with
 * EINVAL for the missing parent, before any device is registered.
 */
export function probeLinkKind(kind: 'macvlan' | 'ipvlan', name: string): Request {
  return newLink(ifinfomsg(), [attr.str(IFLA.IFNAME, checkIfname(name)), linkinfo(kind)]);
}

export function createVxlan(o: VxlanOptions): Request {
  if (!Number.isInteger(o.vni) || o.vni < 0 || o.vni > 0xffffff) throw new UserError(`invalid VXLAN id ${o.vni} (0-16777215)`);
  const port = o.port ?? VXLAN_DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new UserError(`invalid VXLAN port ${port}`);
  const data: Attr[] = [attr.u32(IFLA_VXLAN.ID, o.vni), attr.be16(IFLA_VXLAN.PORT, port), attr.u8(IFLA_VXLAN.LEARNING, o.learning ? 1 : 0)];
  if (o.local !== undefined) {
    const ip = parseIp(o.local);
    data.push(attr.bytes(ip.family === AF_INET ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, ip.bytes));
  }
  if (o.parentIndex !== undefined) data.push(attr.u32(IFLA_VXLAN_LINK, o.parentIndex));
  if (o.proxy) data.push(attr.u8(IFLA_VXLAN.PROXY, 1));
  const attrs = commonLinkAttrs(o);
  attrs.push(linkinfo('vxlan', data));
  return newLink(ifinfomsg(upFlags(o.up)), attrs);
}

/** Change an existing link (RTM_NEWLINK without NLM_F_CREATE, as `ip link set` does). */
export function changeLink(ref: LinkRef, change: { up?: boolean; attrs?: Attr[] }): Request {
  const s = select(ref);
  const header = change.up === undefined ? ifinfomsg({ index: s.index }) : ifinfomsg({ index: s.index, flags: change.up ? IFF_UP : 0, change: IFF_UP });
  return { type: RTM.NEWLINK, flags: 0, body: body(header, [...s.attrs, ...(change.attrs ?? [])]) };
}

export const setUp = (ref: LinkRef, up: boolean): Request => changeLink(ref, { up });
export const setMaster = (ref: LinkRef, masterIndex: number): Request => changeLink(ref, { attrs: [attr.u32(IFLA.MASTER, masterIndex)] });
/** Down and off its bridge in one request (the kernel applies the flags before the master). */
export const setDownUnslaved = (ref: LinkRef): Request => changeLink(ref, { up: false, attrs: [attr.u32(IFLA.MASTER, 0)] });
export const setAlias = (ref: LinkRef, alias: string): Request => changeLink(ref, { attrs: [attr.str(IFLA.IFALIAS, alias)] });
export function rename(index: number, newName: string): Request {
  return changeLink(index, { attrs: [attr.str(IFLA.IFNAME, checkIfname(newName))] });
}

/**
 * `bridge link set dev X [hairpin on|off] [isolated on|off]` in one request: a nested
 * IFLA_PROTINFO (the flag is required) in an AF_BRIDGE setlink. Isolated ports cannot talk to
 * each other, only to non-isolated ones (icc=false).
 */
export function setBridgePort(index: number, flags: { hairpin?: boolean; isolated?: boolean }): Request {
  const attrs = [];
  if (flags.hairpin !== undefined) attrs.push(attr.u8(IFLA_BRPORT_MODE, flags.hairpin ? 1 : 0));
  if (flags.isolated !== undefined) attrs.push(attr.u8(IFLA_BRPORT_ISOLATED, flags.isolated ? 1 : 0));
  const protinfo = attr.nest(IFLA.PROTINFO, attrs);
  return { type: RTM.SETLINK, flags: 0, body: body(ifinfomsg({ family: AF_BRIDGE, index }), [protinfo]) };
}

export function deleteLink(ref: LinkRef): Request {
  const s = select(ref);
  return { type: RTM.DELLINK, flags: 0, body: body(ifinfomsg({ index: s.index }), s.attrs) };
}

export function getLink(ref: LinkRef): Request {
  const s = select(ref);
  return { type: RTM.GETLINK, flags: 0, body: body(ifinfomsg({ index: s.index }), s.attrs) };
}

export const dumpLinks = (): Request => ({ type: RTM.GETLINK, flags: NLM_F_DUMP, body: ifinfomsg() });

// ---------------------------------------------------------------- addresses

function addressRequest(type: number, flags: number, ifindex: number, cidr: string): Request {
  const c = parseCidr(cidr);
  const attrs: Attr[] = [attr.bytes(IFA.LOCAL, c.bytes), attr.bytes(IFA.ADDRESS, c.bytes)];
  let ifaFlags = 0;
  if (c.family === AF_INET && c.prefixLen < 31) attrs.push(attr.bytes(IFA.BROADCAST, broadcastOf(c)));
  // Without duplicate address detection a v6 address is usable at once instead of staying
  // "tentative" for a second or more, which would fail the container's first connect().
  if (c.family === AF_INET6 && type === RTM.NEWADDR) {
    ifaFlags = IFA_F_NODAD;
    attrs.push(attr.u32(IFA.FLAGS, IFA_F_NODAD));
  }
  return { type, flags, body: body(ifaddrmsg({ family: c.family, prefixLen: c.prefixLen, flags: ifaFlags, index: ifindex }), attrs) };
}

export const addAddress = (ifindex: number, cidr: string): Request => addressRequest(RTM.NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, cidr);
export const deleteAddress = (ifindex: number, cidr: string): Request => addressRequest(RTM.DELADDR, 0, ifindex, cidr);
/** Every address of the namespace, or of one family (the kernel filters a dump by family). */
export const dumpAddresses = (family: 4 | 6 | undefined = undefined): Request => ({ type: RTM.GETADDR, flags: NLM_F_DUMP, body: ifaddrmsg({ family: family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC, prefixLen: 0, index: 0 }) });

// ---------------------------------------------------------------- routes

const afOf = (f: IpFamily): number => (f === 4 ? AF_INET : AF_INET6);

function routeRequest(type: number, flags: number, r: RouteSpec): Request {
  const dst = r.dst === 'default' ? undefined : networkOf(parseCidr(r.dst));
  const gw = r.gateway === undefined ? undefined : parseIp(r.gateway);
  const family = dst?.family ?? gw?.family ?? (r.family ? afOf(r.family) : undefined);
  if (family === undefined) throw new UserError(`route "${r.dst}": family needed (no destination or gateway to infer it from)`);
  const given = r.family === undefined ? family : afOf(r.family);
  if ((dst && dst.family !== family) || (gw && gw.family !== family) || given !== family) throw new UserError(`route "${r.dst}": mixed IPv4 and IPv6`);
  if (!gw && r.ifindex === undefined) throw new UserError(`route "${r.dst}": needs a gateway or an interface`);
  const attrs: Attr[] = [attr.u32(RTA.TABLE, RT_TABLE_MAIN)];
  if (dst) attrs.push(attr.bytes(RTA.DST, dst.bytes));
  if (gw) attrs.push(attr.bytes(RTA.GATEWAY, gw.bytes));
  if (r.ifindex !== undefined) attrs.push(attr.u32(RTA.OIF, r.ifindex));
  if (r.metric !== undefined) attrs.push(attr.u32(RTA.PRIORITY, r.metric));
  if (r.mtu !== undefined) attrs.push(attr.nest(RTA.METRICS, [attr.u32(RTAX_MTU, r.mtu)]));
  // A route through a gateway is global; a route straight out of an interface is link-scoped
  // (as `ip route add` chooses). Deleting matches any scope.
  const scope = type === RTM.DELROUTE ? RT_SCOPE.NOWHERE : gw ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK;
  const header = rtmsg({ family, dstLen: dst?.prefixLen ?? 0, table: RT_TABLE_MAIN, protocol: type === RTM.DELROUTE ? 0 : RTPROT_BOOT, scope, type: RTN_UNICAST });
  return { type, flags, body: body(header, attrs) };
}

export const addRoute = (r: RouteSpec): Request => routeRequest(RTM.NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r);
export const deleteRoute = (r: RouteSpec): Request => routeRequest(RTM.DELROUTE, 0, r);
export const dumpRoutes = (family: IpFamily): Request => ({ type: RTM.GETROUTE, flags: NLM_F_DUMP, body: rtmsg({ family: afOf(family) }) });

// ---------------------------------------------------------------- neighbours and FDB

/** `ip neigh replace`: creating an entry that exists updates it, so the overlay agent can re-apply. */
export function addNeighbour(n: NeighbourSpec): Request {
  const ip = parseIp(n.ip);
  const header = ndmsg({ family: ip.family, ifindex: n.ifindex, state: n.permanent ? NUD.PERMANENT : NUD.REACHABLE });
  return { type: RTM.NEWNEIGH, flags: NLM_F_CREATE | NLM_F_REPLACE, body: body(header, [attr.bytes(NDA.DST, ip.bytes), attr.bytes(NDA.LLADDR, parseMac(n.mac))]) };
}

export function deleteNeighbour(n: { ifindex: number; ip: string }): Request {
  const ip = parseIp(n.ip);
  return { type: RTM.DELNEIGH, flags: 0, body: body(ndmsg({ family: ip.family, ifindex: n.ifindex }), [attr.bytes(NDA.DST, ip.bytes)]) };
}

export const dumpNeighbours = (family: IpFamily | 0 = 0): Request => ({
  type: RTM.GETNEIGH, flags: NLM_F_DUMP, body: ndmsg({ family: family === 0 ? AF_UNSPEC : afOf(family), ifindex: 0 }),
});

function fdbAttrs(f: FdbSpec): Attr[] {
  const attrs = [attr.bytes(NDA.LLADDR, parseMac(f.mac))];
  if (f.dst !== undefined) attrs.push(attr.bytes(NDA.DST, parseIp(f.dst).bytes));
  return attrs;
}

/** `bridge fdb append MAC dev X dst IP`: append, so one MAC (00:00:00:00:00:00 for flooding) may list several VTEPs. */
export function addFdb(f: FdbSpec): Request {
  const header = ndmsg({ family: AF_BRIDGE, ifindex: f.ifindex, state: NUD.PERMANENT | NUD.NOARP, flags: NTF_SELF });
  return { type: RTM.NEWNEIGH, flags: NLM_F_CREATE | NLM_F_APPEND, body: body(header, fdbAttrs(f)) };
}

export function deleteFdb(f: FdbSpec): Request {
  return { type: RTM.DELNEIGH, flags: 0, body: body(ndmsg({ family: AF_BRIDGE, ifindex: f.ifindex, flags: NTF_SELF }), fdbAttrs(f)) };
}

export const dumpFdb = (): Request => ({ type: RTM.GETNEIGH, flags: NLM_F_DUMP, body: ndmsg({ family: AF_BRIDGE, ifindex: 0 }) });
