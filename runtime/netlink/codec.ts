// The rtnetlink wire format: message headers, the fixed structs that open each request, and
// attributes (TLVs, nested or not). Pure functions over Buffers, so every request tsrun sends can
// be pinned by a unit test.
//
// tsrun encodes its own attributes instead of using the `netlink` package's typed formatters:
// those mask the attribute type to 14 bits (NLA_F_NESTED can never be set, and the bridge refuses
// an IFLA_PROTINFO without it), and they carry IFLA_LINKINFO as an opaque Buffer anyway.
// All integers are host-endian except where the kernel says network order (ports).

export const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
/** Sends the requester the notification of what it changed (rtnetlink NEWLINK: since Linux 6.3). */
export const NLM_F_ECHO = 0x8;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;

export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;

export const IFLA = {
  ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, PROTINFO: 12, OPERSTATE: 16,
  LINKINFO: 18, IFALIAS: 20, NET_NS_FD: 28, LINK_NETNSID: 37,
} as const;
export const IFLA_INFO = { KIND: 1, DATA: 2, SLAVE_KIND: 4 } as const;
export const VETH_INFO_PEER = 1;
export const IFLA_MACVLAN_MODE = 1;
export const MACVLAN_MODE = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 } as const;
export type MacvlanMode = keyof typeof MACVLAN_MODE;
/** IFLA_IPVLAN_MODE and IFLA_IPVLAN_FLAGS (both u16) inside IFLA_INFO_DATA of kind "ipvlan". */
export const IFLA_IPVLAN = { MODE: 1, FLAGS: 2 } as const;
export const IPVLAN_MODE = { l2: 0, l3: 1, l3s: 2 } as const;
export type IpvlanMode = keyof typeof IPVLAN_MODE;
/** IPVLAN_F_PRIVATE / IPVLAN_F_VEPA; none set is "bridge" (slaves on one parent switch to each other). */
export const IPVLAN_FLAGS = { bridge: 0, private: 1, vepa: 2 } as const;
export type IpvlanFlag = keyof typeof IPVLAN_FLAGS;
export const IFLA_VXLAN = { ID: 1, LOCAL: 4, LEARNING: 7, PROXY: 11, PORT: 15, LOCAL6: 17 } as const;
export const IFLA_BRPORT_ISOLATED = 33;
/** Hairpin mode: the bridge may send a frame back out the port it came in on. */
export const IFLA_BRPORT_MODE = 4;

export const IFA = { ADDRESS: 1, LOCAL: 2, BROADCAST: 4, FLAGS: 8 } as const;
export const IFA_F_NODAD = 0x02;

export const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, METRICS: 8, TABLE: 15 } as const;
export const RTAX_MTU = 2;
export const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE = { UNIVERSE: 0, LINK: 253, HOST: 254, NOWHERE: 255 } as const;
export const RTN_UNICAST = 1;

export const NDA = { DST: 1, LLADDR: 2, MASTER: 9, IFINDEX: 8 } as const;
export const NUD = { REACHABLE: 0x02, NOARP: 0x40, PERMANENT: 0x80 } as const;
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;

export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

// ---------------------------------------------------------------- attributes

/** A netlink attribute: raw payload, or children (sent with NLA_F_NESTED). */
export type Attr = { type: number; data: Buffer } | { type: number; nested: Attr[] };

export const attr = {
  bytes: (type: number, data: Buffer): Attr => ({ type, data }),
  u8: (type: number, v: number): Attr => ({ type, data: Buffer.from([v & 0xff]) }),
  u16: (type: number, v: number): Attr => {
    const b = Buffer.alloc(2);
    putU16(b, 0, v);
    return { type, data: b };
  },
  /** 16 bits in network byte order (UDP ports). */
  be16: (type: number, v: number): Attr => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return { type, data: b };
  },
  u32: (type: number, v: number): Attr => {
    const b = Buffer.alloc(4);
    putU32(b, 0, v);
    return { type, data: b };
  },
  /** NUL-terminated string, as the kernel's NLA_STRING/NLA_NUL_STRING policies expect. */
  str: (type: number, s: string): Attr => ({ type, data: Buffer.from(`${s}\0`, 'utf8') }),
  nest: (type: number, nested: Attr[]): Attr => ({ type, nested }),
};

const align4 = (n: number): number => (n + 3) & ~3;

export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const out = Buffer.alloc(attrsLength(attrs));
  writeAttrs(out, 0, attrs);
  return out;
}

// Encoding sizes everything first and writes it into one zeroed buffer with byte stores: the
// former per-attribute head and padding buffers, Buffer.concat and Buffer's checked writers ran in
// the interpreter of a cold process (a hook stage, the bench's ten attaches) for every attribute
// of every request (~0.1 ms of an attach's netlink requests, measured cold). Same bytes.

/** Bytes the attributes take, padding included. */
function attrsLength(attrs: readonly Attr[]): number {
  let n = 0;
  for (const a of attrs) n += align4(4 + ('nested' in a ? attrsLength(a.nested) : a.data.length));
  return n;
}

/** Writes the attributes at `off` of a zeroed `out` (padding stays zero); returns the end. */
function writeAttrs(out: Buffer, off: number, attrs: readonly Attr[]): number {
  for (const a of attrs) {
    const at = off;
    let end: number;
    if ('nested' in a) end = writeAttrs(out, at + 4, a.nested);
    else {
      out.set(a.data, at + 4);
      end = at + 4 + a.data.length;
    }
    const len = end - at;
    if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} too long (${len} bytes)`);
    const type = a.type | ('nested' in a ? NLA_F_NESTED : 0);
    out[at] = len & 0xff;
    out[at + 1] = len >>> 8;
    out[at + 2] = type & 0xff;
    out[at + 3] = (type >>> 8) & 0xff;
    off = at + align4(len);
  }
  return off;
}

// Header and attribute fields are read byte by byte: Buffer's readUInt16LE and readUInt32LE are
// JavaScript functions of Node's, with argument checks, that a cold process (a hook stage, a CNI
// call) runs in the interpreter for every message and attribute (3000 calls: ~0.8 ms against
// ~0.2 ms for indexed reads, measured cold); the firewall self-check reads its dumps with the same
// u16le. The callers keep the offsets inside the buffer.
export const u16le = (buf: Buffer, off: number): number => buf[off]! | (buf[off + 1]! << 8);
export const u32le = (buf: Buffer, off: number): number => (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;

/** Top-level attributes by type (NLA_F_NESTED masked off); a repeated type keeps its last value. */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = u16le(buf, off);
    if (len < 4 || off + len > buf.length) break;
    out.set(u16le(buf, off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** A NUL-terminated string attribute. */
export function attrString(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

export const attrU32 = (b: Buffer | undefined): number | undefined => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined);

// ---------------------------------------------------------------- fixed headers

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  port: number;
  /** Payload after the 16-byte header. */
  data: Buffer;
}

export function encodeMessage(m: NlMessage): Buffer {
  const out = Buffer.allocUnsafe(NLMSG_HDRLEN + m.data.length);
  putU32(out, 0, NLMSG_HDRLEN + m.data.length);
  putU16(out, 4, m.type);
  putU16(out, 6, m.flags);
  putU32(out, 8, m.seq);
  putU32(out, 12, m.port);
  out.set(m.data, NLMSG_HDRLEN);
  return out;
}

// Little-endian stores without Buffer's argument checks (see encodeAttrs).
const putU16 = (b: Buffer, off: number, v: number): void => {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
};
const putU32 = (b: Buffer, off: number, v: number): void => {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
};

/** Splits one datagram into its messages. */
export function decodeMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = u32le(buf, off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new Error(`malformed netlink message (length ${len} at ${off})`);
    out.push({
      type: u16le(buf, off + 4),
      flags: u16le(buf, off + 6),
      seq: u32le(buf, off + 8),
      port: u32le(buf, off + 12),
      data: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The errno of an NLMSG_ERROR payload: 0 for an ACK, a positive errno for a failure. */
export function errorCode(data: Buffer): number {
  const raw = data.length >= 4 ? data.readInt32LE(0) : 0;
  return raw === 0 ? 0 : -raw;
}

export interface IfInfo { family?: number; type?: number; index?: number; flags?: number; change?: number }
export const IFINFOMSG_LEN = 16;
export function ifinfomsg(h: IfInfo = {}): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b[0] = h.family ?? AF_UNSPEC;
  putU16(b, 2, h.type ?? 0);
  putU32(b, 4, h.index ?? 0);
  putU32(b, 8, h.flags ?? 0);
  putU32(b, 12, h.change ?? 0);
  return b;
}
export function parseIfinfomsg(b: Buffer): Required<IfInfo> {
  return { family: b.readUInt8(0), type: b.readUInt16LE(2), index: b.readInt32LE(4), flags: b.readUInt32LE(8), change: b.readUInt32LE(12) };
}

export interface IfAddr { family: number; prefixLen: number; flags?: number; scope?: number; index: number }
export const IFADDRMSG_LEN = 8;
export function ifaddrmsg(h: IfAddr): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b[0] = h.family;
  b[1] = h.prefixLen;
  b[2] = h.flags ?? 0;
  b[3] = h.scope ?? 0;
  putU32(b, 4, h.index);
  return b;
}
export function parseIfaddrmsg(b: Buffer): Required<IfAddr> {
  return { family: b.readUInt8(0), prefixLen: b.readUInt8(1), flags: b.readUInt8(2), scope: b.readUInt8(3), index: b.readUInt32LE(4) };
}

export interface RtMsg { family: number; dstLen?: number; srcLen?: number; tos?: number; table?: number; protocol?: number; scope?: number; type?: number; flags?: number }
export const RTMSG_LEN = 12;
export function rtmsg(h: RtMsg): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b[0] = h.family;
  b[1] = h.dstLen ?? 0;
  b[2] = h.srcLen ?? 0;
  b[3] = h.tos ?? 0;
  b[4] = h.table ?? 0;
  b[5] = h.protocol ?? 0;
  b[6] = h.scope ?? 0;
  b[7] = h.type ?? 0;
  putU32(b, 8, h.flags ?? 0);
  return b;
}
export function parseRtmsg(b: Buffer): Required<RtMsg> {
  return {
    family: b.readUInt8(0), dstLen: b.readUInt8(1), srcLen: b.readUInt8(2), tos: b.readUInt8(3), table: b.readUInt8(4),
    protocol: b.readUInt8(5), scope: b.readUInt8(6), type: b.readUInt8(7), flags: b.readUInt32LE(8),
  };
}

export interface NdMsg { family: number; ifindex: number; state?: number; flags?: number; type?: number }
export const NDMSG_LEN = 12;
export function ndmsg(h: NdMsg): Buffer {
  const b = Buffer.alloc(NDMSG_LEN);
  b[0] = h.family;
  putU32(b, 4, h.ifindex);
  putU16(b, 8, h.state ?? 0);
  b[10] = h.flags ?? 0;
  b[11] = h.type ?? 0;
  return b;
}
export function parseNdmsg(b: Buffer): Required<NdMsg> {
  return { family: b.readUInt8(0), ifindex: b.readInt32LE(4), state: b.readUInt16LE(8), flags: b.readUInt8(10), type: b.readUInt8(11) };
}

/** A request body: its fixed header followed by its attributes (one buffer, see encodeAttrs). */
export function body(header: Buffer, attrs: readonly Attr[] = []): Buffer {
  const out = Buffer.alloc(header.length + attrsLength(attrs));
  out.set(header, 0);
  writeAttrs(out, header.length, attrs);
  return out;
}
