// Telling the other containers of a bridge network who holds an address now. A peer that talked to
// an address keeps its neighbour entry (address → MAC) for tens of seconds; when the address is
// handed to a new endpoint with another MAC, the peer's frames go to the old MAC, which no port
// has, until its entry goes stale and a unicast probe to the old MAC fails (measured in
// test/integration/security/neighbour-announce.test.ts: the peer still shows the old MAC after the
// attach). Where the MAC follows from the IPv4 address (drivers/mac.ts) successive holders share it
// and there is nothing to announce; otherwise (a user's --mac, an endpoint without IPv4 whose MAC
// is random, any IPv6 address: its previous holder's MAC followed from another IPv4 address or
// was random), tsrun announces the endpoint, as docker (advertise_addr_nmsgs) and netavark do: a
// gratuitous ARP request for the IPv4 address and an unsolicited neighbour advertisement
// (override flag, to all nodes) for each IPv6 address. A peer's kernel updates an entry it has
// (never creates one: arp_accept and accept_untracked_na stay as they are).
//
// Sent from the container's end, inside the container's namespace, once the attach has
// configured it (see announce in linux-bridge.ts): the frames enter the bridge through the new
// port and leave through the peers' ports (neighbour-announce.test.ts shows a peer's entry
// updated by them). Once, not docker's three times 600 ms apart, which needs a process that
// outlives the hook or CNI call. The port's hairpin is off meanwhile, so the bridge does not send
// them back into the container. One AF_PACKET socket, one sendto per frame: no process, no wait.
// Best-effort: a failure is logged, never fails the attach.
import { closeSync } from 'node:fs';
import { libcFunction, loadKoffi, type LibcFn as Fn } from '../koffi.js';
import { withNetnsSync } from '../netns/netns.js';
import { parseIp, parseMac } from '../netlink/addr.js';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o200_0000;
const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;

/** A gratuitous ARP request: sender and target protocol address both `ip`, from `mac`, broadcast. */
export function garpFrame(mac: string, ip: string): Buffer {
  const m = parseMac(mac);
  const a = parseIp(ip);
  if (a.bytes.length !== 4) throw new TypeError(`garpFrame: ${ip} is not IPv4`);
  const f = Buffer.alloc(14 + 28);
  f.fill(0xff, 0, 6);
  m.copy(f, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(1, 14); // hardware: Ethernet
  f.writeUInt16BE(0x0800, 16); // protocol: IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  m.copy(f, 22);
  a.bytes.copy(f, 28);
  // target hardware address: zero
  a.bytes.copy(f, 38);
  return f;
}

/** An unsolicited neighbour advertisement (RFC 4861 7.2.6): from `ip` to ff02::1, hop limit 255,
 * override set, solicited not, the target `ip` with `mac` as its link-layer address. */
export function unsolicitedNaFrame(mac: string, ip: string): Buffer {
  const m = parseMac(mac);
  const a = parseIp(ip);
  if (a.bytes.length !== 16) throw new TypeError(`unsolicitedNaFrame: ${ip} is not IPv6`);
  const allNodes = parseIp('ff02::1').bytes;
  const icmpLen = 4 + 4 + 16 + 8; // type/code/checksum, flags, target, option (type 2, 1 × 8 bytes)
  const f = Buffer.alloc(14 + 40 + icmpLen);
  Buffer.from([0x33, 0x33, 0, 0, 0, 1]).copy(f, 0);
  m.copy(f, 6);
  f.writeUInt16BE(ETH_P_IPV6, 12);
  const ip6 = 14;
  f.writeUInt32BE(0x6000_0000, ip6);
  f.writeUInt16BE(icmpLen, ip6 + 4);
  f[ip6 + 6] = 58; // ICMPv6
  f[ip6 + 7] = 255;
  a.bytes.copy(f, ip6 + 8);
  allNodes.copy(f, ip6 + 24);
  const icmp = ip6 + 40;
  f[icmp] = 136; // neighbour advertisement
  f[icmp + 1] = 0;
  f.writeUInt32BE(0x2000_0000, icmp + 4); // override
  a.bytes.copy(f, icmp + 8);
  f[icmp + 24] = 2; // target link-layer address
  f[icmp + 25] = 1;
  m.copy(f, icmp + 26);
  f.writeUInt16BE(icmp6Checksum(a.bytes, allNodes, f.subarray(icmp)), icmp + 2);
  return f;
}

/** The ICMPv6 checksum over the pseudo-header and `msg` (whose checksum field is zero). */
export function icmp6Checksum(src: Buffer, dst: Buffer, msg: Buffer): number {
  let sum = 0;
  const add = (b: Buffer) => {
    for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  };
  add(src);
  add(dst);
  sum += (msg.length >>> 16) + (msg.length & 0xffff) + 58;
  add(msg);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  return c === 0 ? 0xffff : c;
}

/** The frames that tell peers `mac` holds these addresses. */
export function announcementFrames(mac: string, ipv4: string | undefined, ipv6: readonly string[]): Buffer[] {
  return [...(ipv4 ? [garpFrame(mac, ipv4)] : []), ...ipv6.map((a) => unsolicitedNaFrame(mac, a))];
}

interface Libc {
  socket: Fn;
  sendto: Fn;
}
let libc: Libc | undefined;

function bindings(): Libc {
  if (!libc) {
    loadKoffi();
    libc = {
      socket: libcFunction('int socket(int domain, int type, int protocol)'),
      sendto: libcFunction('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
    };
  }
  return libc;
}

/** struct sockaddr_ll naming the interface to send on. */
function linkAddress(ifindex: number, ethertype: number): Buffer {
  const a = Buffer.alloc(20);
  a.writeUInt16LE(AF_PACKET, 0);
  a.writeUInt16BE(ethertype, 2);
  a.writeInt32LE(ifindex, 4);
  return a;
}

/**
 * Sends `frames` out of the interface `ifindex` of the namespace at `nsPath` (undefined: this
 * thread's). Throws when the socket cannot be had or a send fails: the caller logs it (a cache
 * hint; an attach never fails for it).
 */
export function sendFrames(nsPath: string | undefined, ifindex: number, frames: readonly Buffer[]): void {
  if (frames.length === 0) return;
  const c = bindings();
  const open = () => c.socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0) as number;
  const fd = nsPath === undefined ? open() : withNetnsSync(nsPath, open);
  if (fd < 0) throw new Error(`AF_PACKET socket: errno ${loadKoffi().errno()}`);
  try {
    for (const f of frames) {
      const n = c.sendto(fd, f, f.length, 0, linkAddress(ifindex, f.readUInt16BE(12)), 20) as number;
      if (n !== f.length) throw new Error(`sendto: errno ${loadKoffi().errno()}`);
    }
  } finally {
    closeSync(fd);
  }
}
