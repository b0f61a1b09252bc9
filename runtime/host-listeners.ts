// Host services a published port would take over. tsrun publishes with DNAT only (no process
// binds the host port, unlike docker-proxy or conmon's port reservation), so `-p 22:22`, an
// `io.tsrun.ports` annotation or a CNI portMapping on a port where a host process listens
// (sshd on 0.0.0.0:22) was accepted, and from then on every connection to the host's addresses on
// that port reached the container instead: docker and podman refuse such a port (their bind
// fails with EADDRINUSE). The sockets of the host namespace (the calling thread's) are asked of
// the kernel over sock_diag: TCP sockets in LISTEN, UDP sockets bound and not connected. Not
// /proc/net/tcp: the kernel builds that file by walking every bucket of the whole established
// hash, all namespaces' (13 ms per read on this development machine with two sockets in the
// namespace), where a LISTEN-only dump walks the listening hash alone (~0.1 ms). /proc is the
// fallback for a kernel without the tcp_diag/udp_diag modules.
import { readFileSync } from 'node:fs';
import { hostIpsOverlap } from '../config/address.js';
import type { PortMapping } from '../config/ports.js';
import { SyncNlSocket } from './netlink/sync-socket.js';

export interface HostListener {
  protocol: 'tcp' | 'udp';
  /** Canonical address; '0.0.0.0' or '::' for a wildcard bind. */
  address: string;
  port: number;
  /** The socket's inode (/proc/PID/fd/N links to socket:[inode]). */
  inode: string;
}

const TCP_LISTEN = '0A';
const UDP_UNCONNECTED = '07';

/** The /proc/net files a set of mappings needs. */
export function procNetFiles(ports: readonly PortMapping[]): { file: string; protocol: 'tcp' | 'udp'; family: 4 | 6 }[] {
  const out: { file: string; protocol: 'tcp' | 'udp'; family: 4 | 6 }[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    if (!ports.some((p) => p.protocol === protocol)) continue;
    out.push({ file: `/proc/net/${protocol}`, protocol, family: 4 }, { file: `/proc/net/${protocol}6`, protocol, family: 6 });
  }
  return out;
}

/**
 * The listening (TCP) or bound (UDP) sockets of one /proc/net/{tcp,udp}[6] text whose port is in
 * `ports`. Lines: "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...",
 * the local address in hex, each 32-bit word in host byte order (little-endian here).
 */
export function parseProcNet(text: string, protocol: 'tcp' | 'udp', family: 4 | 6, ports: ReadonlySet<number>): HostListener[] {
  const out: HostListener[] = [];
  const wanted = protocol === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED;
  let at = text.indexOf('\n') + 1; // the header line
  while (at > 0 && at < text.length) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, end < 0 ? text.length : end);
    at = end < 0 ? text.length : end + 1;
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== wanted) continue;
    const local = f[1]!;
    const colon = local.indexOf(':');
    const port = parseInt(local.slice(colon + 1), 16);
    if (!ports.has(port)) continue;
    out.push({ protocol, address: hexAddress(local.slice(0, colon), family), port, inode: f[9]! });
  }
  return out;
}

function hexAddress(hex: string, family: 4 | 6): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16)); // little-endian word
  }
  return addressOf(bytes, family);
}

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const TCPF_LISTEN = 1 << 10;
/** An unconnected UDP socket's state is TCP_CLOSE. */
const TCPF_CLOSE = 1 << 7;

/** struct inet_diag_req_v2 for a dump of one family and protocol, in the states that listen. */
export function sockDiagRequest(family: 4 | 6, protocol: 'tcp' | 'udp'): Buffer {
  const b = Buffer.alloc(56);
  b[0] = family === 4 ? 2 : 10; // AF_INET, AF_INET6
  b[1] = protocol === 'tcp' ? 6 : 17; // IPPROTO_TCP, IPPROTO_UDP
  b.writeUInt32LE(protocol === 'tcp' ? TCPF_LISTEN : TCPF_CLOSE, 4);
  return b;
}

/** One struct inet_diag_msg of such a dump, when its port is in `ports`. */
export function parseSockDiag(data: Buffer, protocol: 'tcp' | 'udp', ports: ReadonlySet<number>): HostListener | undefined {
  if (data.length < 72) return undefined;
  const family = data[0] === 2 ? 4 : data[0] === 10 ? 6 : undefined;
  if (family === undefined || data[1] !== (protocol === 'tcp' ? 10 : 7)) return undefined;
  const port = data.readUInt16BE(4); // id.idiag_sport, network order
  if (!ports.has(port)) return undefined;
  const bytes = [...data.subarray(8, family === 4 ? 12 : 24)]; // id.idiag_src
  return { protocol, address: addressOf(bytes, family), port, inode: String(data.readUInt32LE(68)) };
}

/**
 * The host namespace's listeners on the ports of `ports` (the calling thread's namespace), over
 * sock_diag, or from /proc/self/net where the kernel cannot answer that.
 */
export function hostListenersFor(ports: readonly PortMapping[]): HostListener[] {
  const wanted = new Set(ports.map((p) => p.hostPort));
  const out: HostListener[] = [];
  let sock: SyncNlSocket | undefined;
  try {
    for (const f of procNetFiles(ports)) {
      let found: HostListener[] | undefined;
      try {
        sock ??= new SyncNlSocket(undefined, NETLINK_SOCK_DIAG);
        found = sock
          .dumpSync(SOCK_DIAG_BY_FAMILY, 0, sockDiagRequest(f.family, f.protocol))
          .map((m) => parseSockDiag(m.data, f.protocol, wanted))
          .filter((l): l is HostListener => l !== undefined);
      } catch {
        found = undefined; // no inet_diag for this protocol (a module not loaded): read /proc
      }
      if (found === undefined) {
        try {
          found = parseProcNet(readFileSync(f.file.replace('/proc/net/', '/proc/self/net/'), 'utf8'), f.protocol, f.family, wanted);
        } catch {
          found = []; // no IPv6 in this kernel
        }
      }
      out.push(...found);
    }
  } finally {
    sock?.close();
  }
  return out;
}

function addressOf(bytes: number[], family: 4 | 6): string {
  if (family === 4) return bytes.join('.');
  const v4mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (v4mapped) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compress(groups);
}

/** RFC 5952's shortest form: the longest run of two or more zero groups becomes "::". */
function compress(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * The first listener a mapping would take traffic from: same protocol and port, and addresses
 * that overlap under the reservations' wildcard rule. A listener on `::` counts for IPv4 too (a
 * dual-stack socket takes IPv4 connections, and /proc does not say whether it is IPV6_V6ONLY).
 */
export function clashingListener(p: PortMapping, listeners: readonly HostListener[]): HostListener | undefined {
  return listeners.find((l) => l.protocol === p.protocol && l.port === p.hostPort && hostIpsOverlap(p.hostIp, l.address === '::' ? undefined : l.address));
}

/** "0.0.0.0:22", "[::]:22". */
export function listenerText(l: HostListener): string {
  return `${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port}/${l.protocol}`;
}
