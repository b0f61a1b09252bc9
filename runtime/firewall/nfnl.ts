// Element batches straight to nf_tables over netlink: no libnftables, no `nft` process.
//
// Why. libnftables fills its cache from the kernel before every batch it evaluates (the generation,
// then every table, chain, set and object of the namespace, and the elements of every interval
// set: `add element` asks for all of that), unless nothing changed since its own last commit.
// Another process's commit (the hook's other stage, another tsrun, anyone's firewall) makes it
// stale, so on the attach path it is nearly always stale: one attach batch cost 1-2.6 ms, growing
// with every other table of the namespace, for a commit the kernel does in tens of microseconds.
// tsrun's attach and detach batches only add and delete elements of its own sets, whose types it
// defined itself (nft-rules.ts): it can encode them without asking the kernel.
//
// What. The same JSON batch the other backends take ({"nftables": [{"add": {"element": …}}]}),
// translated into one NFNL_MSG_BATCH_BEGIN … END datagram, exactly the messages nft itself sends
// for it (`nft --debug=netlink` prints them): one NFT_MSG_NEWSETELEM / DELSETELEM per set, keys
// and data in the sets' own byte layout, an interval as its start element (carrying the comment)
// and its INTERVAL_END element, the owner comment as the element's userdata TLV. A batch holding
// anything else (a table, a chain, a flush) or a value this file does not know is not translated
// (encodeElementBatch returns undefined) and goes to libnftables as before. The kernel checks
// each key's and value's length against the set; that a set of a given name has the type this
// version gives it holds across versions because a name is never given another type (pinned by
// test/unit/firewall/nfnl.test.ts), and the self-check rebuilds a table of another version.
//
// How it runs. Synchronously: nfnetlink processes a batch inside sendmsg itself, so every answer
// is already queued when send returns; each message asks for an ACK, so success is confirmed
// message by message, and a refusal names the command it refused. The kernel applies a batch all
// or nothing, as with nft; errors read as nft's own ("Could not process rule: File exists"), so
// callers tell a held port (EEXIST) and a missing table (ENOENT) apart as before.
//
// Namespaces: a netlink socket acts for life in the namespace it was made in. The one for the
// process's own namespace is kept (like libnftables' context); one for another namespace is made
// inside withNetnsSync and closed after its batch.
import { addressBytes, parseAddress } from '../../config/address.js';
import { NLA_F_NESTED, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, decodeMessages, errorCode, parseAttrs } from '../netlink/codec.js';
import { strerror, hasCode } from '../netns/errno.js';
import { withNetnsSync } from '../netns/netns.js';
import { SyncNlSocket } from '../netlink/sync-socket.js';
import { AF_NETLINK, MSG_DONTWAIT, NETLINK_NETFILTER, SOCK_CLOEXEC, SOCK_RAW, libcSys, type Sys } from '../netns/sys.js';
import { setTypeOf, type NftBatch, type NftJson } from './nft-rules.js';

// include/uapi/linux/netfilter/nfnetlink.h and nf_tables.h
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 16;
const NFNL_MSG_BATCH_END = 17;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFTA_SET_ELEM_LIST = { TABLE: 1, SET: 2, ELEMENTS: 3 } as const;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM = { KEY: 1, DATA: 2, FLAGS: 3, USERDATA: 6 } as const;
const NFTA_DATA_VALUE = 1;
const NFT_SET_ELEM_INTERVAL_END = 1;
/** libnftnl's element userdata: a TLV of (type u8, length u8, value); the comment is type 0. */
const NFTNL_UDATA_SET_ELEM_COMMENT = 0;
const NFPROTO: Record<string, number> = { inet: 1, bridge: 7 };
const IFNAMSIZ = 16;
const PROTO: Record<string, number> = { tcp: 6, udp: 17 };

export const nftType = (msg: number): number => (NFNL_SUBSYS_NFTABLES << 8) | msg;

/** One netlink message of the batch and the command it came from (for error messages). */
interface BatchMessage {
  type: number;
  flags: number;
  /** The payload (nfgenmsg and attributes): a view into the batch's datagram. */
  body: Buffer;
  what: string;
}

/** A batch ready to send: one datagram (BATCH_BEGIN, the element messages, BATCH_END). */
export interface ElementBatch {
  messages: BatchMessage[];
  /** The whole datagram; sequence numbers are written in when it is sent. */
  datagram: Buffer;
}

const MAX_DATAGRAM = 128 * 1024;

/**
 * Commands already encoded, by object: a network's commands are the same objects at every attach
 * (nft-rules.ts networkBatchOf). Their bytes hold no sequence number (written when sent).
 */
const encoded = new WeakMap<object, { bytes: Buffer; type: number; flags: number; what: string }>();

/** Thrown for a value this encoder does not handle: the batch goes to libnftables instead. */
class Untranslatable extends Error {}

/**
 * Netlink bytes written straight into one growing buffer. The batch used to be built as a tree
 * of small Buffers joined at every level; in a cold process (the hook: one attach per process)
 * that cost more than the kernel's commit.
 */
class Writer {
  buf = Buffer.allocUnsafe(2048);
  pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }
  bytes(b: ArrayLike<number>): void {
    this.ensure(b.length);
    for (let i = 0; i < b.length; i++) this.buf[this.pos++] = b[i]!;
  }
  copy(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  zeros(n: number): void {
    this.ensure(n);
    for (let i = 0; i < n; i++) this.buf[this.pos++] = 0;
  }
  /** Little-endian 16 bits at `at` (byte stores: Buffer's checked writers cost more, cold). */
  le16(at: number, v: number): void {
    this.buf[at] = v & 0xff;
    this.buf[at + 1] = (v >>> 8) & 0xff;
  }
  /** A NUL-terminated string (ASCII byte by byte, anything else through Buffer.write). */
  str(s: string): void {
    this.ensure(s.length * 3 + 1);
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
    else this.pos += this.buf.write(s, this.pos, 'utf8');
    this.buf[this.pos++] = 0;
  }
  /** Opens an attribute (or a netlink message header when `msg`): returns where it starts. */
  open(type: number, nested = false): number {
    this.ensure(4);
    const at = this.pos;
    this.le16(at + 2, type | (nested ? NLA_F_NESTED : 0));
    this.pos += 4;
    return at;
  }
  /** Closes an attribute: its length, then padding to 4 bytes. */
  close(at: number): void {
    const len = this.pos - at;
    if (len > 0xffff) throw new Untranslatable(); // an attribute holds at most 64 KiB
    this.le16(at, len);
    this.zeros((4 - (len % 4)) % 4);
  }
  /** A netlink header (length, type, flags; seq and port zero until sent) and nfgenmsg. */
  openMessage(type: number, flags: number, family: number, resId = 0): number {
    this.ensure(20);
    const at = this.pos;
    this.le16(at + 4, type);
    this.le16(at + 6, flags);
    for (let i = 8; i < 16; i++) this.buf[at + i] = 0; // seq and port: written when sent
    this.buf[at + 16] = family;
    this.buf[at + 17] = 0; // NFNETLINK_V0
    this.buf[at + 18] = (resId >>> 8) & 0xff; // res_id, big-endian
    this.buf[at + 19] = resId & 0xff;
    this.pos += 20;
    return at;
  }
  closeMessage(at: number): void {
    const len = this.pos - at;
    this.le16(at, len & 0xffff);
    this.le16(at + 2, len >>> 16);
  }
  /** An attribute holding raw bytes. */
  attr(type: number, write: () => void): void {
    const at = this.open(type);
    write();
    this.close(at);
  }
}

/**
 * The batch as nf_tables messages, or undefined when it holds anything but `add element` /
 * `delete element` on tsrun's own sets, or a value outside the forms tsrun's batches use.
 */
export function encodeElementBatch(batch: NftBatch): ElementBatch | undefined {
  const w = new Writer();
  const spans: { at: number; type: number; flags: number; what: string }[] = [];
  try {
    w.closeMessage(w.openMessage(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES));
    for (const cmd of batch.nftables) {
      const at = w.pos;
      const done = encoded.get(cmd);
      if (done) {
        w.copy(done.bytes);
        spans.push({ at, type: done.type, flags: done.flags, what: done.what });
        continue;
      }
      const meta = encodeCommand(w, cmd);
      spans.push({ at, ...meta });
      encoded.set(cmd, { ...meta, bytes: Buffer.from(w.buf.subarray(at, w.pos)) });
    }
    w.closeMessage(w.openMessage(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES));
  } catch (err) {
    if (err instanceof Untranslatable) return undefined;
    throw err;
  }
  // A batch larger than this goes to libnftables, which grows its socket's send buffer to fit
  // (the default, net.core.wmem_default, is usually 208 KiB; a joined burst of 50 attaches is ~70).
  if (w.pos > MAX_DATAGRAM) return undefined;
  const datagram = w.buf.subarray(0, w.pos);
  const messages = spans.map(({ at, type, flags, what }) => ({ type, flags, what, body: datagram.subarray(at + NLMSG_HDRLEN, at + datagram.readUInt32LE(at)) }));
  return { messages, datagram };
}

function encodeCommand(w: Writer, cmd: Record<string, Record<string, NftJson>>): { type: number; flags: number; what: string } {
  const verbs = Object.keys(cmd);
  const verb = verbs[0];
  if (verbs.length !== 1 || (verb !== 'add' && verb !== 'delete')) throw new Untranslatable();
  const objs = cmd[verb]!;
  const el = objs.element;
  if (Object.keys(objs).length !== 1 || !isObject(el)) throw new Untranslatable();
  const { family, table, name, elem } = el;
  if (typeof family !== 'string' || typeof table !== 'string' || typeof name !== 'string' || !Array.isArray(elem)) throw new Untranslatable();
  const def = setTypeOf(family, table, name);
  const fam = NFPROTO[family];
  if (!def || fam === undefined) throw new Untranslatable();
  const add = verb === 'add';
  const type = nftType(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
  // `add` without NLM_F_EXCL: re-adding an identical element is no error, one with other data is
  // EEXIST, as with nft's `add element`.
  const flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0);
  const msg = w.openMessage(type, flags, fam);
  w.attr(NFTA_SET_ELEM_LIST.TABLE, () => w.str(table));
  w.attr(NFTA_SET_ELEM_LIST.SET, () => w.str(name));
  const list = w.open(NFTA_SET_ELEM_LIST.ELEMENTS, true);
  for (const raw of elem) {
    const { key, value, comment } = splitElement(raw, def.map !== undefined);
    const data = def.map !== undefined && add ? () => writeField(w, def.map!, value, false) : undefined;
    const userdata = add && comment !== undefined ? () => writeComment(w, comment) : undefined;
    if (def.interval) {
      const [start, end] = intervalOf(typeName(def.type), key);
      writeElement(w, () => w.bytes(start), 0, data, userdata);
      writeElement(w, () => w.bytes(end), NFT_SET_ELEM_INTERVAL_END);
    } else {
      writeElement(w, () => writeKey(w, def.type, key), 0, data, userdata);
    }
  }
  w.close(list);
  w.closeMessage(msg);
  return { type, flags, what: `${verb} element ${family} ${table} ${name}` };
}

function writeElement(w: Writer, key: () => void, flags: number, data?: () => void, userdata?: () => void): void {
  const el = w.open(NFTA_LIST_ELEM, true);
  const k = w.open(NFTA_SET_ELEM.KEY, true);
  w.attr(NFTA_DATA_VALUE, key);
  w.close(k);
  if (flags !== 0) w.attr(NFTA_SET_ELEM.FLAGS, () => w.bytes([(flags >>> 24) & 0xff, (flags >>> 16) & 0xff, (flags >>> 8) & 0xff, flags & 0xff]));
  if (data) {
    const d = w.open(NFTA_SET_ELEM.DATA, true);
    w.attr(NFTA_DATA_VALUE, data);
    w.close(d);
  }
  if (userdata) w.attr(NFTA_SET_ELEM.USERDATA, userdata);
  w.close(el);
}

/** {elem: {val, comment}} or a bare key; for maps, [key, value]. */
function splitElement(raw: NftJson, isMap: boolean): { key: NftJson; value?: NftJson; comment?: string } {
  let keyPart = raw;
  let value: NftJson | undefined;
  // A map's add gives [key, value]; a delete names keys only.
  if (isMap && Array.isArray(raw)) {
    if (raw.length !== 2) throw new Untranslatable();
    [keyPart, value] = raw as [NftJson, NftJson];
  }
  if (isObject(keyPart) && isObject(keyPart.elem)) {
    const e = keyPart.elem;
    for (const k in e) if (k !== 'val' && k !== 'comment') throw new Untranslatable();
    if (e.comment !== undefined && typeof e.comment !== 'string') throw new Untranslatable();
    return { key: e.val ?? null, value, comment: e.comment };
  }
  return { key: keyPart, value };
}

/** The comment as libnftnl stores it: type, length (with the NUL), text, NUL. */
function writeComment(w: Writer, comment: string): void {
  const len = Buffer.byteLength(comment) + 1;
  if (len > 255) throw new Untranslatable();
  w.u8(NFTNL_UDATA_SET_ELEM_COMMENT);
  w.u8(len);
  w.str(comment);
}

function typeName(t: string | readonly string[]): string {
  if (typeof t === 'string') return t;
  throw new Untranslatable(); // no interval set of tsrun's has a concatenated key
}

/** A key: one field as it is, a concatenation with each field padded to 32-bit registers. */
function writeKey(w: Writer, type: string | readonly string[], key: NftJson): void {
  if (typeof type === 'string') return writeField(w, type, key, false);
  if (!isObject(key) || !Array.isArray(key.concat) || key.concat.length !== type.length) throw new Untranslatable();
  const parts = key.concat as NftJson[];
  for (let i = 0; i < type.length; i++) writeField(w, type[i]!, parts[i], true);
}

function writeField(w: Writer, type: string, v: NftJson | undefined, pad: boolean): void {
  const start = w.pos;
  switch (type) {
    case 'ifname': {
      if (typeof v !== 'string' || v.includes('\0')) throw new Untranslatable();
      const len = Buffer.byteLength(v);
      if (len >= IFNAMSIZ) throw new Untranslatable();
      w.str(v);
      w.zeros(IFNAMSIZ - len - 1);
      break;
    }
    case 'ipv4_addr':
    case 'ipv6_addr':
      w.bytes(addressField(type, v));
      break;
    case 'inet_proto': {
      const n = typeof v === 'string' ? PROTO[v] : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255) throw new Untranslatable();
      w.u8(n);
      break;
    }
    case 'inet_service': {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new Untranslatable();
      w.bytes([v >> 8, v & 0xff]);
      break;
    }
    case 'ether_addr': {
      const mac = typeof v === 'string' ? macBytes(v) : undefined;
      if (!mac) throw new Untranslatable();
      w.bytes(mac);
      break;
    }
    // A raw payload of 128 or 48 bits (table bridge tsrun_nd's typeof keys), as "0x" and hex
    // digits: big-endian, as nft stores a payload's integer.
    case 'raw128':
    case 'raw48':
      w.bytes(rawBytes(v, type === 'raw128' ? 16 : 6));
      break;
    default:
      throw new Untranslatable();
  }
  const len = w.pos - start;
  if (pad && len % 4 !== 0) w.zeros(4 - (len % 4));
}

// Parsed by hand, not by regular expressions: compiling one costs more than the whole parse in a
// cold process (the hook's: one attach per process).

/** "0x" and up to 2*n hex digits as n bytes, big-endian. */
function rawBytes(v: NftJson | undefined, n: number): number[] {
  if (typeof v !== 'string' || v.length < 3 || v.length > 2 + 2 * n || v[0] !== '0' || (v[1] !== 'x' && v[1] !== 'X')) throw new Untranslatable();
  const out = new Array<number>(n).fill(0);
  for (let i = v.length - 1, b = n * 2 - 1; i >= 2; i--, b--) {
    const d = hexDigit(v.charCodeAt(i));
    if (d < 0) throw new Untranslatable();
    out[b >> 1] = out[b >> 1]! | (b & 1 ? d : d << 4);
  }
  return out;
}

/** The value of a hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** 6 bytes from "aa:bb:cc:dd:ee:ff" (either case), or undefined. */
function macBytes(s: string): number[] | undefined {
  if (s.length !== 17) return undefined;
  const out: number[] = [];
  for (let i = 0; i < 17; i += 3) {
    const hi = hexDigit(s.charCodeAt(i));
    const lo = hexDigit(s.charCodeAt(i + 1));
    if (hi < 0 || lo < 0 || (i < 15 && s.charCodeAt(i + 2) !== 58)) return undefined;
    out.push(hi * 16 + lo);
  }
  return out;
}

/** An address of the field's family in network byte order. */
function addressField(type: string, v: NftJson | undefined): number[] {
  if (typeof v !== 'string') throw new Untranslatable();
  const bytes = type === 'ipv4_addr' ? ipv4Bytes(v) : ipv6Bytes(v);
  if (bytes) return bytes;
  // Anything the quick parsers do not take (an IPv4-mapped form, say): the strict parser decides.
  let a;
  try {
    a = parseAddress(v);
  } catch {
    throw new Untranslatable();
  }
  if (a.family !== (type === 'ipv4_addr' ? 4 : 6)) throw new Untranslatable();
  return addressBytes(a);
}

/** Dotted quad: four decimal parts 0-255 without leading zeros, or undefined. */
function ipv4Bytes(s: string): number[] | undefined {
  const out: number[] = [];
  let n = -1;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || out.length === 4) return undefined;
      out.push(n);
      n = -1;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && n === 0) return undefined; // a leading zero
      n = (digits === 0 ? 0 : n) * 10 + (c - 48);
      if (++digits > 3 || n > 255) return undefined;
    } else {
      return undefined;
    }
  }
  return out.length === 4 ? out : undefined;
}

/** Colon-hex with at most one "::" (no embedded IPv4, no zone), or undefined. */
function ipv6Bytes(s: string): number[] | undefined {
  const gap = s.indexOf('::');
  if (gap >= 0 && s.indexOf('::', gap + 1) >= 0) return undefined;
  const groups = (t: string): number[] | undefined => {
    const out: number[] = [];
    if (t === '') return out;
    let n = 0;
    let digits = 0;
    for (let i = 0; i <= t.length; i++) {
      const c = i < t.length ? t.charCodeAt(i) : 58;
      if (c === 58) {
        if (digits === 0) return undefined;
        out.push(n);
        n = 0;
        digits = 0;
        continue;
      }
      const d = hexDigit(c);
      if (d < 0 || ++digits > 4) return undefined;
      n = n * 16 + d;
    }
    return out;
  };
  const head = groups(gap < 0 ? s : s.slice(0, gap));
  const tail = gap < 0 ? [] : groups(s.slice(gap + 2));
  if (!head || !tail) return undefined;
  if (gap < 0 ? head.length !== 8 : head.length + tail.length > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const out: number[] = [];
  for (const g of all) out.push(g >> 8, g & 0xff);
  return out;
}

/**
 * An interval set's element (an address or a prefix) as nft sends it: the first address, and the
 * first one after the range flagged INTERVAL_END. A range that starts at the zero address or ends
 * at the last one has boundary cases nft handles itself: those go to libnftables.
 */
function intervalOf(type: string, key: NftJson): [number[], number[]] {
  let addr: NftJson | undefined = key;
  let len: number | undefined;
  if (isObject(key) && isObject(key.prefix)) {
    addr = key.prefix.addr;
    len = typeof key.prefix.len === 'number' ? key.prefix.len : NaN;
  }
  const start = addressField(type, addr);
  const bits = start.length * 8;
  len ??= bits;
  if (!Number.isInteger(len) || len < 1 || len > bits) throw new Untranslatable();
  // Host bits set: not a prefix nft would take as it is.
  for (let bit = len; bit < bits; bit++) if (start[bit >> 3]! & (0x80 >> (bit & 7))) throw new Untranslatable();
  if (start.every((b) => b === 0)) throw new Untranslatable();
  // The end: the start plus one at the prefix's last bit, carried up.
  const end = [...start];
  let i = (len - 1) >> 3;
  let carry = 0x80 >> ((len - 1) & 7);
  while (carry && i >= 0) {
    const sum = end[i]! + carry;
    end[i] = sum & 0xff;
    carry = sum >> 8;
    i--;
  }
  if (carry) throw new Untranslatable(); // the range ends at the last address
  return [start, end];
}

function isObject(v: unknown): v is Record<string, NftJson> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- sending ----

/** The batch did not fit the socket's send buffer (nothing was sent). */
export class BatchTooLarge extends Error {
  constructor(readonly bytes: number) {
    super(`an nf_tables batch of ${bytes} bytes does not fit the netlink socket's send buffer`);
  }
}

/** The kernel refused a message of the batch: errno, the command, and nft's wording. */
export interface NfnlRefusal {
  errno: number;
  what: string;
  /** What nft prints for it: "Error: Could not process rule: File exists\n<command>". */
  message: string;
}

// An error's answer carries the refused message back, and one message holds at most 64 KiB of
// elements (the attribute length is 16 bits): twice that holds any answer whole.
const RECV_BUFFER = 128 * 1024;
let recvBuf: Buffer | undefined;
let ownFd: number | undefined;
let seq = 0;

/**
 * Sends one batch and reads every answer. Returns undefined when the kernel applied it, or the
 * first refusal (the kernel then applied nothing). Throws on a socket failure or when an answer
 * is missing.
 */
export function sendElementBatch(batch: ElementBatch, opts: { netns?: string | undefined; sys?: Sys } = {}): NfnlRefusal | undefined {
  const sys = opts.sys ?? libcSys;
  if (opts.netns === undefined) {
    ownFd ??= openSocket(sys);
    return exchange(sys, ownFd, batch);
  }
  const fd = withNetnsSync(opts.netns, () => openSocket(sys), sys);
  try {
    return exchange(sys, fd, batch);
  } finally {
    sys.close(fd);
  }
}

let available: boolean | undefined;

/** True when this process can open a netfilter netlink socket (koffi loads; no CAP_NET_ADMIN is
 * needed for that, the kernel checks it per batch). */
export function nfnlAvailable(): boolean {
  if (available === undefined) {
    try {
      ownFd ??= openSocket(libcSys);
      available = true;
    } catch {
      available = false;
    }
  }
  return available;
}

function openSocket(sys: Sys): number {
  return sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
}

/** The datagram with consecutive sequence numbers from `first` (BATCH_BEGIN's) written in. */
export function batchDatagram(batch: ElementBatch, first: number): Buffer {
  const d = batch.datagram;
  for (let off = 0, seq = first; off + NLMSG_HDRLEN <= d.length; seq++) {
    d.writeUInt32LE(seq >>> 0, off + 8);
    off += (d.readUInt32LE(off) + 3) & ~3;
  }
  return d;
}

/** Sockets whose last exchange ended early (a throw): answers may still be queued on them. */
const dirty = new Set<number>();

function exchange(sys: Sys, fd: number, batch: ElementBatch): NfnlRefusal | undefined {
  const n = batch.messages.length;
  if (seq > 0x7fff_0000) seq = 0;
  const first = seq + 1;
  seq += n + 2;
  if (dirty.has(fd)) drain(sys, fd);
  try {
    sys.send(fd, batchDatagram(batch, first), 0);
  } catch (err) {
    // Larger than the socket's send buffer: nothing was sent, libnftables can still take it.
    if (hasCode(err, 'EMSGSIZE')) throw new BatchTooLarge(batch.datagram.length);
    throw err;
  }
  dirty.add(fd);
  // Every command is answered once, ACK or error; the begin message only when the whole batch is
  // refused (no permission, malformed). All of it is queued already: reading never waits, and
  // stops as soon as every command has its answer (an EAGAIN read costs more than the rest).
  const answered = new Set<number>();
  let refusal: NfnlRefusal | undefined;
  const buf = (recvBuf ??= Buffer.allocUnsafe(RECV_BUFFER));
  while (answered.size < n) {
    let len: number;
    try {
      len = sys.recv(fd, buf, MSG_DONTWAIT);
    } catch (err) {
      if (hasCode(err, 'EAGAIN', 'EWOULDBLOCK')) break;
      throw err;
    }
    for (const m of decodeMessages(buf.subarray(0, Math.min(len, buf.length)))) {
      if (m.type !== NLMSG_ERROR || m.seq < first || m.seq > first + n + 1) continue;
      const errno = errorCode(m.data);
      const i = m.seq - first - 1;
      if (i >= 0 && i < n) answered.add(m.seq);
      if (errno === 0) continue;
      const what = i >= 0 && i < n ? batch.messages[i]!.what : 'nf_tables batch';
      refusal ??= { errno, what, message: `Error: Could not process rule: ${strerror(errno)}\n${what}` };
    }
  }
  if (answered.size === n) dirty.delete(fd);
  if (refusal) return refusal;
  // Every command acknowledged, or the kernel did not apply the batch as we know it.
  if (answered.size !== n) throw new Error(`nf_tables answered ${answered.size} of the ${n} commands of the batch`);
  return undefined;
}

function drain(sys: Sys, fd: number): void {
  const buf = (recvBuf ??= Buffer.allocUnsafe(RECV_BUFFER));
  for (;;) {
    try {
      sys.recv(fd, buf, MSG_DONTWAIT);
    } catch (err) {
      if (hasCode(err, 'EAGAIN', 'EWOULDBLOCK')) return;
      throw err;
    }
  }
}

// ---- reading: dumps ----

/** One nf_tables object of a dump: the family from its nfgenmsg, its attributes as received. */
export interface DumpedObject {
  family: number;
  attrs: Buffer;
}

/** nfgenmsg of a dump of every family: NFPROTO_UNSPEC, version 0, resource id 0. */
const EVERY_FAMILY = Buffer.alloc(4);
let ownDumpSocket: SyncNlSocket | undefined;

/**
 * Dumps of nf_tables object kinds (NFT_MSG_GETCHAIN, GETSET, GETRULE…) of every family, one
 * after the other, synchronously, over the same request/reply socket rtnetlink uses (it retries a
 * dump the ruleset changed under). A socket of its own, not the batches': a batch that ended
 * early may leave answers queued on that one.
 */
export function dumpSync(msgs: readonly number[], opts: { netns?: string | undefined; sys?: Sys } = {}): DumpedObject[][] {
  const sys = opts.sys ?? libcSys;
  const open = () => new SyncNlSocket(sys, NETLINK_NETFILTER);
  const sock = opts.netns === undefined ? (ownDumpSocket ??= open()) : withNetnsSync(opts.netns, open, sys);
  try {
    return msgs.map((msg) => sock.dumpSync(nftType(msg), 0, EVERY_FAMILY).map((m) => ({ family: m.data[0]!, attrs: m.data.subarray(4) })));
  } finally {
    if (sock !== ownDumpSocket) sock.close();
  }
}

const NFT_MSG_NEWGEN = 15;
const NFT_MSG_GETGEN = 16;
const NFTA_GEN_ID = 1;
const NFTA_GEN_PROC_PID = 2;

/**
 * The nf_tables ruleset generation of this process's own namespace (NFT_MSG_GETGEN): the kernel
 * moves it on with every commit that changes anything there, in any table of any family, and
 * names the process that made the last one. The same value twice means nothing was committed in
 * between. Undefined when the kernel does not answer with one.
 */
export function ownGenerationSync(sys: Sys = libcSys): string | undefined {
  const sock = (ownDumpSocket ??= new SyncNlSocket(sys, NETLINK_NETFILTER));
  for (const m of sock.requestSync(nftType(NFT_MSG_GETGEN), 0, EVERY_FAMILY)) {
    if (m.type !== nftType(NFT_MSG_NEWGEN) || m.data.length < 4) continue;
    const attrs = parseAttrs(m.data.subarray(4));
    const id = attrs.get(NFTA_GEN_ID);
    if (id === undefined || id.length < 4) return undefined;
    const pid = attrs.get(NFTA_GEN_PROC_PID);
    return `${id.readUInt32BE(0)}:${pid !== undefined && pid.length >= 4 ? pid.readUInt32BE(0) : ''}`;
  }
  return undefined;
}
