// IP and MAC addresses between their text forms and the bytes netlink carries. Parsing, the
// canonical text and network/broadcast addresses come from config/address.ts, the one address
// module; this file only adds the netlink side (address families, byte buffers).
import { UserError } from '../../config/errors.js';
import {
  addressBytes, addressFromBytes, broadcastOf as broadcastAddress, formatAddress, parseAddress, parseInterfaceAddress, subnetOf, type Address,
} from '../../config/address.js';
import { AF_INET, AF_INET6 } from './codec.js';

export interface ParsedIp {
  family: typeof AF_INET | typeof AF_INET6;
  bytes: Buffer;
  /** Canonical text (RFC 5952 for IPv6). */
  text: string;
}

export interface ParsedCidr extends ParsedIp {
  prefixLen: number;
}

function parsed(a: Address): ParsedIp {
  return { family: a.family === 4 ? AF_INET : AF_INET6, bytes: Buffer.from(addressBytes(a)), text: formatAddress(a) };
}

const addressOf = (c: ParsedCidr): Address => addressFromBytes(c.bytes);

export function parseIp(text: string): ParsedIp {
  return parsed(parseAddress(text, 'IP address'));
}

/** "10.0.0.2/24" → address and prefix; a bare address gets a host prefix (/32, /128). */
export function parseCidr(text: string): ParsedCidr {
  const ia = parseInterfaceAddress(text);
  return { ...parsed(ia.address), prefixLen: ia.prefixLength };
}

/** The network part of a CIDR ("10.0.0.7/24" → 10.0.0.0/24), as routes need it. */
export function networkOf(c: ParsedCidr): ParsedCidr {
  const s = subnetOf({ address: addressOf(c), prefixLength: c.prefixLen });
  return { ...parsed({ family: s.family, value: s.network }), prefixLen: c.prefixLen };
}

/** The IPv4 broadcast address of a CIDR (all host bits set). */
export function broadcastOf(c: ParsedCidr): Buffer {
  return Buffer.from(addressBytes(broadcastAddress({ address: addressOf(c), prefixLength: c.prefixLen })));
}

export function ipFromBytes(b: Buffer): string {
  return formatAddress(addressFromBytes(b));
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function parseMac(text: string): Buffer {
  if (!MAC_RE.test(text)) throw new UserError(`invalid MAC address "${text}"`);
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

export function macFromBytes(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
