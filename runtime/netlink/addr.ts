// IP and MAC addresses between their text forms and the bytes netlink carries.
import ipaddr from 'ipaddr.js';
import { UserError } from '../../config/errors.js';
import { parseIpStrict } from '../../config/ip.js';
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

export function parseIp(text: string): ParsedIp {
  const ip = parseIpStrict(text);
  if (!ip) throw new UserError(`invalid IP address "${text}"`);
  return { family: ip.kind() === 'ipv4' ? AF_INET : AF_INET6, bytes: Buffer.from(ip.toByteArray()), text: ip.toString() };
}

/** "10.0.0.2/24" → address and prefix; a bare address gets a host prefix (/32, /128). */
export function parseCidr(text: string): ParsedCidr {
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  const max = ip.family === AF_INET ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefixLen = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefixLen > max) throw new UserError(`invalid prefix length in "${text}"`);
  return { ...ip, prefixLen };
}

/** The network part of a CIDR ("10.0.0.7/24" → 10.0.0.0/24), as routes need it. */
export function networkOf(c: ParsedCidr): ParsedCidr {
  const bytes = Buffer.from(c.bytes);
  for (let bit = c.prefixLen; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { ...c, bytes, text: ipFromBytes(bytes) };
}

/** The IPv4 broadcast address of a CIDR (all host bits set). */
export function broadcastOf(c: ParsedCidr): Buffer {
  const bytes = Buffer.from(c.bytes);
  for (let bit = c.prefixLen; bit < bytes.length * 8; bit++) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return bytes;
}

export function ipFromBytes(b: Buffer): string {
  if (b.length !== 4 && b.length !== 16) throw new Error(`unexpected address length ${b.length}`);
  return ipaddr.fromByteArray([...b]).toString();
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function parseMac(text: string): Buffer {
  if (!MAC_RE.test(text)) throw new UserError(`invalid MAC address "${text}"`);
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

export function macFromBytes(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
