// IP addresses and subnets as (family, bigint): one representation for IPv4 and IPv6, so range
// arithmetic on a /64 is as cheap as on a /24 and nothing is ever materialized. Parsing goes
// through ipaddr.js but is stricter than it: IPv4 must be four decimal parts (ipaddr.js also
// takes "10.1" and "0x0a.0.0.1", which would give one address several spellings, and so several
// lease keys), IPv6 must have no zone. Formatting is canonical (dotted quad, RFC 5952), so the
// same address always becomes the same lease key.
import ipaddr from 'ipaddr.js';
import { UserError } from '../../config/errors.js';

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

export function bitsOf(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** Parses one address strictly; `what` names it in the error ("gateway of network web"). */
export function parseAddress(text: string, what = 'address'): Address {
  if (typeof text === 'string') {
    if (ipaddr.IPv4.isValidFourPartDecimal(text)) return fromBytes(4, ipaddr.IPv4.parse(text).toByteArray());
    if (!text.includes('%') && ipaddr.IPv6.isValid(text)) return fromBytes(6, ipaddr.IPv6.parse(text).toByteArray());
  }
  throw new UserError(`invalid ${what} ${JSON.stringify(text)}: expected an IPv4 address like 10.88.0.5 or an IPv6 address like fd00::5`);
}

export function formatAddress(a: Address): string {
  // IPv4 is formatted directly: it runs once per candidate when a dense pool is walked.
  if (a.family === 4) return `${Number((a.value >> 24n) & 0xffn)}.${Number((a.value >> 16n) & 0xffn)}.${Number((a.value >> 8n) & 0xffn)}.${Number(a.value & 0xffn)}`;
  const bytes = new Array<number>(16);
  let v = a.value;
  for (let i = 15; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** The canonical spelling of an address ("FD00:0::5" → "fd00::5"). */
export function canonicalAddress(text: string, what = 'address'): string {
  return formatAddress(parseAddress(text, what));
}

/** Parses "addr/prefix". Host bits must be zero: "10.88.0.5/16" is refused rather than guessed. */
export function parseSubnet(text: string, what = 'subnet'): Subnet {
  const slash = typeof text === 'string' ? text.lastIndexOf('/') : -1;
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const bad = (why: string) => new UserError(`invalid ${what} ${JSON.stringify(text)}: ${why}`);
  if (slash < 0 || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) throw bad('expected CIDR notation like 10.88.0.0/16 or fd00:88::/64');
  let addr: Address;
  try {
    addr = parseAddress(text.slice(0, slash));
  } catch {
    throw bad('expected CIDR notation like 10.88.0.0/16 or fd00:88::/64');
  }
  const prefixLength = Number(prefixText);
  const bits = bitsOf(addr.family);
  if (prefixLength > bits) throw bad(`the prefix length must be at most ${bits}`);
  const network = addr.value & maskOf(addr.family, prefixLength);
  const cidr = `${formatAddress({ family: addr.family, value: network })}/${prefixLength}`;
  if (network !== addr.value) throw bad(`host bits are set; did you mean ${cidr}?`);
  return { family: addr.family, network, prefixLength, cidr };
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

function maskOf(family: Family, prefixLength: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLength))) & all;
}

function fromBytes(family: Family, bytes: number[]): Address {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family, value };
}
