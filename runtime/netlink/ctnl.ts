// The ctnetlink wire format (NETLINK_NETFILTER, subsystem CTNETLINK): the dump request that lists
// conntrack entries, the parse of each entry's tuples, and the delete request for one entry. Pure
// functions over Buffers, pinned by unit tests; the socket work is in runtime/conntrack.ts.
//
// Numbers from include/uapi/linux/netfilter/nfnetlink.h and nfnetlink_conntrack.h. Addresses and
// ports inside a tuple are in network byte order, as are CTA_ZONE and CTA_ID.
import { AF_UNSPEC, NLA_F_NESTED, attr, body, parseAttrs, type Attr } from './codec.js';

export const NFNL_SUBSYS_CTNETLINK = 1;
export const IPCTNL_MSG = { NEW: 0, GET: 1, DELETE: 2, GET_STATS: 5 } as const;
/** The netlink message type of a ctnetlink message: subsystem in the high byte. */
export const ctMsgType = (msg: number): number => (NFNL_SUBSYS_CTNETLINK << 8) | msg;

export const CTA = { TUPLE_ORIG: 1, TUPLE_REPLY: 2, ID: 12, ZONE: 18 } as const;
export const CTA_TUPLE = { IP: 1, PROTO: 2 } as const;
export const CTA_IP = { V4_SRC: 1, V4_DST: 2, V6_SRC: 3, V6_DST: 4 } as const;
export const CTA_PROTO = { NUM: 1, SRC_PORT: 2, DST_PORT: 3 } as const;
export const IPPROTO_UDP = 17;

const NFNETLINK_V0 = 0;
export const NFGENMSG_LEN = 4;

/** struct nfgenmsg: family, version, res_id (big-endian; 0 here). */
export function nfgenmsg(family: number): Buffer {
  const b = Buffer.alloc(NFGENMSG_LEN);
  b.writeUInt8(family, 0);
  b.writeUInt8(NFNETLINK_V0, 1);
  return b;
}

/**
 * The body of IPCTNL_MSG_CT_GET with NLM_F_DUMP: every entry of `family`, AF_UNSPEC for all. A
 * dump walks the whole conntrack hash (shared by all namespaces, sized by nf_conntrack_buckets)
 * whatever the family, so one dump of both families costs half of two.
 */
export const ctDumpBody = (family: number = AF_UNSPEC): Buffer => nfgenmsg(family);

/** enum ctattr_stats_global: the attributes of IPCTNL_MSG_CT_GET_STATS's reply. */
export const CTA_STATS_GLOBAL = { ENTRIES: 1, MAX_ENTRIES: 2 } as const;

/** The body of IPCTNL_MSG_CT_GET_STATS: the table's global counters for the socket's namespace. */
export const ctStatsBody = (): Buffer => nfgenmsg(AF_UNSPEC);

/**
 * The number of conntrack entries in the namespace, from a IPCTNL_MSG_CT_GET_STATS reply
 * (CTA_STATS_GLOBAL_ENTRIES: the namespace's own count, not the shared hash's); undefined when
 * the reply does not carry it.
 */
export function parseCtEntryCount(data: Buffer): number | undefined {
  if (data.length < NFGENMSG_LEN) return undefined;
  const entries = parseAttrs(data.subarray(NFGENMSG_LEN)).get(CTA_STATS_GLOBAL.ENTRIES);
  return entries && entries.length >= 4 ? entries.readUInt32BE(0) : undefined;
}

export interface CtTuple {
  src?: Buffer;
  dst?: Buffer;
  proto?: number;
  srcPort?: number;
  dstPort?: number;
}

export interface CtEntry {
  family: number;
  orig: CtTuple;
  reply: CtTuple;
  /** CTA_TUPLE_ORIG's payload as received: sent back verbatim to name the entry on delete. */
  origRaw: Buffer;
  /** CTA_ZONE and CTA_ID payloads as received (network order), if present. */
  zone?: Buffer;
  id?: Buffer;
}

function parseTuple(raw: Buffer | undefined): CtTuple {
  if (!raw) return {};
  const t = parseAttrs(raw);
  const out: CtTuple = {};
  const ip = t.get(CTA_TUPLE.IP);
  if (ip) {
    const a = parseAttrs(ip);
    out.src = a.get(CTA_IP.V4_SRC) ?? a.get(CTA_IP.V6_SRC);
    out.dst = a.get(CTA_IP.V4_DST) ?? a.get(CTA_IP.V6_DST);
  }
  const proto = t.get(CTA_TUPLE.PROTO);
  if (proto) {
    const p = parseAttrs(proto);
    const num = p.get(CTA_PROTO.NUM);
    const sp = p.get(CTA_PROTO.SRC_PORT);
    const dp = p.get(CTA_PROTO.DST_PORT);
    if (num && num.length >= 1) out.proto = num.readUInt8(0);
    if (sp && sp.length >= 2) out.srcPort = sp.readUInt16BE(0);
    if (dp && dp.length >= 2) out.dstPort = dp.readUInt16BE(0);
  }
  return out;
}

/** One message of a ctnetlink dump (payload after the netlink header); undefined if not an entry. */
export function parseCtEntry(data: Buffer): CtEntry | undefined {
  if (data.length < NFGENMSG_LEN) return undefined;
  const attrs = parseAttrs(data.subarray(NFGENMSG_LEN));
  const origRaw = attrs.get(CTA.TUPLE_ORIG);
  if (!origRaw) return undefined;
  return {
    family: data.readUInt8(0),
    orig: parseTuple(origRaw),
    reply: parseTuple(attrs.get(CTA.TUPLE_REPLY)),
    origRaw,
    zone: attrs.get(CTA.ZONE),
    id: attrs.get(CTA.ID),
  };
}

/**
 * IPCTNL_MSG_CT_DELETE naming one entry by its original tuple (the kernel looks it up by hash),
 * in its zone. CTA_ID makes the delete exact: if the entry went and a new one took the same
 * tuple meanwhile, the kernel answers ENOENT instead of deleting the newcomer.
 */
export function ctDeleteBody(e: CtEntry): Buffer {
  const attrs: Attr[] = [attr.bytes(CTA.TUPLE_ORIG | NLA_F_NESTED, e.origRaw)];
  if (e.zone) attrs.push(attr.bytes(CTA.ZONE, e.zone));
  if (e.id) attrs.push(attr.bytes(CTA.ID, e.id));
  return body(nfgenmsg(e.family), attrs);
}

/** Entries whose original or reply side has one of `addresses` (bytes) as source or destination. */
export function namesAddress(e: CtEntry, addresses: readonly Buffer[]): boolean {
  const sides = [e.orig.src, e.orig.dst, e.reply.src, e.reply.dst];
  return sides.some((s) => s !== undefined && addresses.some((a) => a.equals(s)));
}

/** UDP entries originally sent to `port` (and, if given, to the address `dst`). */
export function isUdpTo(e: CtEntry, port: number, dst?: Buffer): boolean {
  if (e.orig.proto !== IPPROTO_UDP || e.orig.dstPort !== port) return false;
  return dst === undefined || (e.orig.dst !== undefined && dst.equals(e.orig.dst));
}
