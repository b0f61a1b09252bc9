// The one address module: every layer (config, IPAM, netlink, firewall, published ports) parses,
// canonicalizes and compares IP addresses and subnets here, with the same rules.
//
// - One strict parser. IPv4 must be four decimal parts: ipaddr.js alone also takes inet_aton's
//   shorthand ("10.1", "0x0a.0.0.1"), which no user means and which would give one address
//   several spellings, and so several lease keys. IPv6 must have no zone ("fe80::1%eth0").
// - One canonical form: dotted quad, or RFC 5952 for IPv6 (what the kernel and nft print). An
//   IPv4-mapped IPv6 address (::ffff:10.0.0.1) IS its IPv4 address, as the kernel treats it on a
//   dual-stack socket, so it canonicalizes to the IPv4 form everywhere.
// - One wildcard rule for published ports (hostIpsOverlap): no host address means every local
//   address of both families; 0.0.0.0 every IPv4 one; :: every IPv6 one.
// - (family, bigint) values for IPAM, so range arithmetic on a /64 is as cheap as on a /24 and
//   nothing is ever materialized; network and broadcast addresses are masks on them.
// - ipaddr.js parses IPv6 only. IPv4 (four decimal parts) is parsed, and both families printed,
//   here: ipaddr.js's first use in a process compiles its regular expressions (~0.8 ms, measured
//   in fresh processes), which every cold hook stage and CNI call paid for its few addresses.
import ipaddr from 'ipaddr.js';
import { UserError } from './errors.js';

export type Family = 4 | 6;

export interface Address {
  family: Family;
  value: bigint;
}

export interface Subnet {
  family: Family;
  /** The network address (host bits zero). */
  network: bigint;
  prefixLength: number;
  /** Canonical text, e.g. "10.88.0.0/16" or "fd00:88::/64". */
  cidr: string;
}

/** An address with a prefix length whose host bits may be set, as on an interface ("10.88.0.5/16"). */
export interface InterfaceAddress {
  address: Address;
  prefixLength: number;
}

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

/** What ipaddr.IPv4.isValidFourPartDecimal also requires: four decimal parts, no leading zeros. */
const FOUR_PART = /^(0|[1-9]\d*)(\.(0|[1-9]\d*)){3}$/;

export function bitsOf(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/**
 * The strict parser every other function goes through; undefined when `text` is no address.
 * `prefix`: the address starts a prefix, where ::ffff:0:0/96 stays the IPv6 prefix it is.
 */
function parseIp(text: unknown, prefix = false): Address | undefined {
  if (typeof text !== 'string') return undefined;
  // The shape first: IPv4 is four decimal parts of 0-255 (what ipaddr.IPv4.isValid takes of that
  // shape), read here; ipaddr's IPv4 check also throws (and catches) an Error for anything that is
  // not IPv4, an IPv6 address included, and an Error's stack trace cost every IPv6 parse ~20 µs.
  if (!text.includes(':')) return FOUR_PART.test(text) ? ipv4Of(text) : undefined;
  if (text.includes('%') || !ipaddr.IPv6.isValid(text)) return undefined;
  const v6 = ipaddr.IPv6.parse(text);
  return toAddress(v6.isIPv4MappedAddress() && !prefix ? v6.toIPv4Address() : v6);
}

/** Four decimal parts (FOUR_PART matched): the address, or undefined when a part exceeds 255. */
function ipv4Of(text: string): Address | undefined {
  let value = 0;
  let part = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // '.' ends the last part too
    if (c === 46) {
      value = value * 256 + part;
      part = 0;
    } else {
      part = part * 10 + (c - 48);
      if (part > 255) return undefined;
    }
  }
  return { family: 4, value: BigInt(value) };
}

function toAddress(ip: Ip): Address {
  let value = 0n;
  for (const b of ip.toByteArray()) value = (value << 8n) | BigInt(b);
  return { family: ip.kind() === 'ipv4' ? 4 : 6, value };
}

/** Parses one address strictly; `what` names it in the error ("gateway of network web"). */
export function parseAddress(text: string, what = 'address'): Address {
  const ip = parseIp(text);
  if (ip) return ip;
  throw new UserError(`invalid ${what} ${JSON.stringify(text)}: expected an IPv4 address like 10.88.0.5 or an IPv6 address like fd00::5`);
}

/** parseAddress without the error: undefined when `text` is no address (in any family). */
export function tryParseAddress(text: unknown): Address | undefined {
  return parseIp(text);
}

/** An address of one family, or a UserError naming `what` ("annotation io.tsrun.ip=…"). */
export function parseAddressOf(family: Family, text: string, what: string): Address {
  const a = tryParseAddress(text);
  if (!a || a.family !== family) throw new UserError(`${what}: not an ${family === 4 ? 'IPv4' : 'IPv6'} address`);
  return a;
}

export function formatAddress(a: Address): string {
  // IPv4 is formatted directly: it runs once per candidate when a dense pool is walked.
  if (a.family === 4) return `${Number((a.value >> 24n) & 0xffn)}.${Number((a.value >> 16n) & 0xffn)}.${Number((a.value >> 8n) & 0xffn)}.${Number(a.value & 0xffn)}`;
  return formatIpv6(a.value);
}

/**
 * RFC 5952 (what ipaddr.js's toString, the kernel and nft print): eight groups in lower-case hex
 * without leading zeros, the longest run of two or more zero groups (the first of equals) as "::".
 * Written here because a cold process's first ipaddr.js IPv6 print compiled its regular expressions
 * (the port guard's link-local addresses are printed by every attach and detach).
 */
function formatIpv6(value: bigint): string {
  const groups: number[] = new Array<number>(8);
  for (let i = 7; i >= 0; i--) {
    groups[i] = Number(value & 0xffffn);
    value >>= 16n;
  }
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** The canonical spelling of an address ("FD00:0::5" → "fd00::5", "::ffff:10.0.0.1" → "10.0.0.1"). */
export function canonicalAddress(text: string, what = 'address'): string {
  return formatAddress(parseAddress(text, what));
}

/** The address in network byte order (4 or 16 bytes). */
export function addressBytes(a: Address): number[] {
  const n = a.family === 4 ? 4 : 16;
  const bytes = new Array<number>(n);
  let v = a.value;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytes;
}

/** The address of 4 or 16 bytes in network byte order. */
export function addressFromBytes(bytes: ArrayLike<number>): Address {
  if (bytes.length !== 4 && bytes.length !== 16) throw new Error(`unexpected address length ${bytes.length}`);
  let value = 0n;
  for (let i = 0; i < bytes.length; i++) value = (value << 8n) | BigInt(bytes[i]! & 0xff);
  return { family: bytes.length === 4 ? 4 : 6, value };
}

const CIDR_HINT = 'expected CIDR notation like 10.88.0.0/16 or fd00:88::/64';

/** "10.88.0.5/16" or, for a bare address, a host prefix (/32, /128). Host bits may be set. */
export function parseInterfaceAddress(text: string, what = 'address'): InterfaceAddress {
  const slash = typeof text === 'string' ? text.lastIndexOf('/') : -1;
  const address = parseIp(slash < 0 ? text : text.slice(0, slash), slash >= 0);
  if (!address) throw new UserError(`invalid ${what} ${JSON.stringify(text)}: expected an address like 10.88.0.5/16 or fd00::5/64`);
  const bits = bitsOf(address.family);
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    throw new UserError(`invalid ${what} ${JSON.stringify(text)}: the prefix length must be 0-${bits}`);
  }
  return { address, prefixLength: Number(prefixText) };
}

/** Parses "addr/prefix". Host bits must be zero: "10.88.0.5/16" is refused rather than guessed. */
export function parseSubnet(text: string, what = 'subnet'): Subnet {
  const bad = (why: string) => new UserError(`invalid ${what} ${JSON.stringify(text)}: ${why}`);
  const slash = typeof text === 'string' ? text.lastIndexOf('/') : -1;
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const address = slash < 0 ? undefined : parseIp(text.slice(0, slash), true);
  if (!address || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) throw bad(CIDR_HINT);
  const bits = bitsOf(address.family);
  if (Number(prefixText) > bits) throw bad(`the prefix length must be at most ${bits}`);
  const s = subnetOf({ address, prefixLength: Number(prefixText) });
  if (s.network !== address.value) throw bad(`host bits are set; did you mean ${s.cidr}?`);
  return s;
}

/** The subnet an interface address lies in ("10.88.0.5/16" → 10.88.0.0/16): its host bits cleared. */
export function subnetOf(ia: InterfaceAddress): Subnet {
  const network: Address = { family: ia.address.family, value: ia.address.value & ~hostMask(ia) };
  return { family: network.family, network: network.value, prefixLength: ia.prefixLength, cidr: `${formatAddress(network)}/${ia.prefixLength}` };
}

/** The highest address of an interface address's subnet (the IPv4 broadcast): its host bits set. */
export function broadcastOf(ia: InterfaceAddress): Address {
  return { family: ia.address.family, value: ia.address.value | hostMask(ia) };
}

/** The host bits of an interface address's prefix, as a mask. */
function hostMask(ia: InterfaceAddress): bigint {
  return (1n << BigInt(bitsOf(ia.address.family) - ia.prefixLength)) - 1n;
}

/** Number of addresses in the subnet (2^host-bits). */
export function subnetSize(s: Subnet): bigint {
  return 1n << BigInt(bitsOf(s.family) - s.prefixLength);
}

/** The highest address of the subnet (the IPv4 broadcast address). */
export function lastAddress(s: Subnet): bigint {
  return s.network + subnetSize(s) - 1n;
}

export function contains(subnet: Subnet | string, ip: Address | string): boolean {
  const s = typeof subnet === 'string' ? parseSubnet(subnet) : subnet;
  const a = typeof ip === 'string' ? parseAddress(ip) : ip;
  return a.family === s.family && (a.value & maskOf(s.family, s.prefixLength)) === s.network;
}

/** True when the two subnets share any address (one contains the other's network). */
export function overlaps(a: Subnet | string, b: Subnet | string): boolean {
  const x = typeof a === 'string' ? parseSubnet(a) : a;
  const y = typeof b === 'string' ? parseSubnet(b) : b;
  if (x.family !== y.family) return false;
  const shorter = Math.min(x.prefixLength, y.prefixLength);
  const mask = maskOf(x.family, shorter);
  return (x.network & mask) === (y.network & mask);
}

/** 0.0.0.0 or :: */
export function isUnspecified(a: Address): boolean {
  return a.value === 0n;
}

/**
 * The wildcard rule of published ports: do two host addresses (canonical text, or undefined for
 * "every local address") cover a common address? Undefined covers both families; 0.0.0.0 every
 * IPv4 address; :: every IPv6 address.
 */
export function hostIpsOverlap(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  const x = parseAddress(a);
  const y = parseAddress(b);
  if (x.family !== y.family) return false;
  return x.value === y.value || isUnspecified(x) || isUnspecified(y);
}

function maskOf(family: Family, prefixLength: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLength))) & all;
}
