// Hand-made frames for the hostile-neighbour tests: what an attacker on the LAN (or a container
// with NET_RAW) can send that no socket API would. Built and sent by python3 with an AF_PACKET
// socket inside the attacker's namespace; nothing here runs in the machine's own namespace.
import type { Netns } from '../../harness/sandbox.js';

const PY = String.raw`
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def mac(m): return bytes.fromhex(m.replace(':', ''))
kind, ifname, dmac, smac = sys.argv[1:5]
# An optional 802.1Q/802.1ad tag (TPID:VID) after the MACs, as the last argument 'tag=8100:0'.
# An RA's source address, 'src=ADDR', before it (fe80::bad without).
tag = b''
if sys.argv[-1].startswith('tag='):
    tpid, vid = sys.argv.pop()[4:].split(':')
    tag = struct.pack('!HH', int(tpid, 16), int(vid))
ra_src = sys.argv.pop()[4:] if sys.argv[-1].startswith('src=') else 'fe80::bad'
if kind == 'garp':
    # gratuitous ARP request: "IP is at SMAC", to broadcast
    # the sender hardware address is SMAC unless a sixth argument names another
    ip = socket.inet_aton(sys.argv[5])
    sha = mac(sys.argv[6]) if len(sys.argv) > 6 else mac(smac)
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, sha, ip, bytes(6), ip)
    frame = mac(dmac) + mac(smac) + b'\x08\x06' + arp
elif kind == 'udp4':
    src, dst, sport, dport, payload = sys.argv[5], sys.argv[6], int(sys.argv[7]), int(sys.argv[8]), sys.argv[9].encode()
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    frame = mac(dmac) + mac(smac) + b'\x08\x00' + ip + udp
elif kind == 'udp6':
    src, dst, sport, dport, payload = sys.argv[5], sys.argv[6], int(sys.argv[7]), int(sys.argv[8]), sys.argv[9].encode()
    if payload.startswith(b'hex:'): payload = bytes.fromhex(payload[4:].decode())
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0) + payload
    pseudo = s6 + d6 + struct.pack('!I3xB', len(udp), 17)
    udp = udp[:6] + struct.pack('!H', csum(pseudo + udp) or 0xffff) + udp[8:]
    ip = struct.pack('!IHBB', 0x60000000, len(udp), 17, 64) + s6 + d6
    frame = mac(dmac) + mac(smac) + b'\x86\xdd' + ip + udp
elif kind == 'ra':
    # ICMPv6 router advertisement from fe80::bad to ff02::1 with prefix 2001:db8:bad::/64
    src, dst = socket.inet_pton(socket.AF_INET6, ra_src), socket.inet_pton(socket.AF_INET6, 'ff02::1')
    opt_prefix = struct.pack('!BBBBIII16s', 3, 4, 64, 0xc0, 86400, 14400, 0, socket.inet_pton(socket.AF_INET6, '2001:db8:bad::'))
    opt_mac = struct.pack('!BB6s', 1, 1, mac(smac))
    body = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0) + opt_mac + opt_prefix
    pseudo = src + dst + struct.pack('!I3xB', len(body), 58)
    body = body[:2] + struct.pack('!H', csum(pseudo + body)) + body[4:]
    ip = struct.pack('!IHBB', 0x60000000, len(body), 58, 255) + src + dst
    frame = mac('33:33:00:00:00:01') + mac(smac) + b'\x86\xdd' + ip + body
elif kind == 'nd':
    # A neighbour solicitation (135) or advertisement (136): type, source, destination, target,
    # flags (the advertisement's R/S/O bits, 0xa0000000 = router+override), and options
    # 'TYPE:HEX' (each 8 bytes: type, length 1, six bytes), comma-separated, '-' for none.
    icmp, src, dst, target, flags, opts = int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8], int(sys.argv[9], 16), sys.argv[10]
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    # a router solicitation (133) has no target: options follow its 8 bytes
    body = struct.pack('!BBHI', icmp, 0, 0, 0) if icmp == 133 else struct.pack('!BBHI16s', icmp, 0, 0, flags, socket.inet_pton(socket.AF_INET6, target))
    for o in ([] if opts == '-' else opts.split(',')):
        t, v = o.split(':', 1)
        body += struct.pack('!BB6s', int(t), 1, bytes.fromhex(v.replace(':', '')))
    pseudo = s6 + d6 + struct.pack('!I3xB', len(body), 58)
    body = body[:2] + struct.pack('!H', csum(pseudo + body)) + body[4:]
    ip = struct.pack('!IHBB', 0x60000000, len(body), 58, 255) + s6 + d6
    frame = mac(dmac) + mac(smac) + b'\x86\xdd' + ip + body
else:
    sys.exit('unknown frame kind ' + kind)
frame = frame[:12] + tag + frame[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
for _ in range(3):
    s.send(frame)
`;

/** The MAC address of an interface in a namespace. */
export function macOf(ns: Netns, ifname: string): string {
  // not /sys/class/net: nsenter --net keeps the caller's /sys
  return (JSON.parse(ns.sh(`ip -j link show ${ifname}`)) as { address: string }[])[0]!.address;
}

/** Sends a hand-made UDP/IPv4 datagram (three copies) out of `ifname` to `dmac`. */
export function sendUdp4(ns: Netns, o: { ifname: string; dmac: string; src: string; dst: string; dport: number; payload: string; smac?: string }): void {
  send(ns, ['udp4', o.ifname, o.dmac, o.smac ?? macOf(ns, o.ifname), o.src, o.dst, '40000', String(o.dport), o.payload]);
}

/** Sends a hand-made UDP/IPv6 datagram (three copies); a payload 'hex:…' is sent as those bytes,
 * from source port `sport` (40000 by default). */
export function sendUdp6(ns: Netns, o: { ifname: string; dmac: string; src: string; dst: string; dport: number; payload: string; smac?: string; sport?: number }): void {
  send(ns, ['udp6', o.ifname, o.dmac, o.smac ?? macOf(ns, o.ifname), o.src, o.dst, String(o.sport ?? 40000), String(o.dport), o.payload]);
}

/** Sends a rogue router advertisement (prefix 2001:db8:bad::/64, lifetime 1800 s; three copies)
 * from `src` (fe80::bad by default: the guard drops that source before the RA rule sees it, so
 * pass the sender's own link-local address to test the RA rule), optionally behind a VLAN tag
 * ('8100:0': 802.1Q, VLAN 0). */
export function sendRouterAdvert(ns: Netns, ifname: string, tag?: string, src?: string): void {
  send(ns, ['ra', ifname, '33:33:00:00:00:01', macOf(ns, ifname), ...(src ? [`src=${src}`] : []), ...(tag ? [`tag=${tag}`] : [])]);
}

/** Sends a gratuitous ARP request claiming `ip` at the interface's own MAC, or at `sha` in the ARP
 * body (the frame still from the interface's MAC) (three copies), optionally behind a VLAN tag
 * ('8100:0': 802.1Q, VLAN 0; '88a8:0': 802.1ad). */
export function sendGratuitousArp(ns: Netns, o: { ifname: string; ip: string; tag?: string; sha?: string }): void {
  send(ns, ['garp', o.ifname, 'ff:ff:ff:ff:ff:ff', macOf(ns, o.ifname), o.ip, ...(o.sha ? [o.sha] : []), ...(o.tag ? [`tag=${o.tag}`] : [])]);
}

/** Sends a hand-made neighbour solicitation ('ns'), advertisement ('na') or router solicitation
 * ('rs', `target` unused) (three copies) from
 * the interface's MAC: `flags` the advertisement's R/S/O bits (default override), `options`
 * link-layer address options and others as [type, six bytes as a MAC] (type 1 source, 2 target,
 * 14 nonce), in order. */
export function sendNeighbourDiscovery(
  ns: Netns,
  o: { ifname: string; kind: 'ns' | 'na' | 'rs'; src: string; dst: string; target: string; dmac?: string; flags?: number; options?: [number, string][] },
): void {
  const dmac = o.dmac ?? (o.dst.toLowerCase() === 'ff02::1' ? '33:33:00:00:00:01' : solicitedNodeMac(o.target));
  const opts = o.options && o.options.length > 0 ? o.options.map(([t, v]) => `${t}:${v}`).join(',') : '-';
  send(ns, ['nd', o.ifname, dmac, macOf(ns, o.ifname), o.kind === 'ns' ? '135' : o.kind === 'rs' ? '133' : '136', o.src, o.dst, o.target, (o.flags ?? 0x20000000).toString(16), opts]);
}

/** The multicast MAC of an address's solicited-node group (33:33:ff + its last three bytes). */
function solicitedNodeMac(ip: string): string {
  const r = /([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  const tail = r ? (r[1]!.padStart(4, '0') + r[2]!.padStart(4, '0')).slice(2) : '000001';
  return `33:33:ff:${tail.slice(0, 2)}:${tail.slice(2, 4)}:${tail.slice(4, 6)}`;
}

function send(ns: Netns, args: string[]): void {
  const r = ns.exec('python3', ['-c', PY, ...args]);
  if (r.status !== 0) throw new Error(`sending a crafted frame failed: ${r.stderr.trim()}`);
}

/** A UDP listener (node) in a namespace given by path: collects what arrives, as text. */
export function udpSink(host: Netns, netnsPath: string, port: number, family: 4 | 6 = 4): { received: () => string; ready: Promise<void>; stop: () => void } {
  const child = host.spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, '-e',
    `const s=require('dgram').createSocket('udp${family}');s.on('message',(m)=>process.stdout.write(m+'\\n'));s.bind(${port},()=>console.log('bound'))`]);
  let out = '';
  const ready = new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return { received: () => out.replace(/^bound\n/, ''), ready, stop: () => void child.kill() };
}

/** A runner inside the namespace at `netnsPath`, entered from `host` with nsenter: what the
 * senders above take, for a container's namespace. */
export function nsRunner(host: Netns, netnsPath: string): Netns {
  return {
    exec: (cmd: string, args: string[]) => host.exec('nsenter', [`--net=${netnsPath}`, '--', cmd, ...args]),
    sh: (command: string) => {
      const r = host.exec('nsenter', [`--net=${netnsPath}`, '--', 'sh', '-c', command]);
      if (r.status !== 0) throw new Error(`${command}: ${r.stderr}`);
      return r.stdout;
    },
  } as unknown as Netns;
}

/** A namespace's link-local address on `dev` once its duplicate address detection is over (the
 * kernel neither answers for nor learns about a tentative one, nor sends from it). */
export async function linkLocalOf(host: Netns, netnsPath: string, dev: string): Promise<string> {
  for (let i = 0; ; i++) {
    const out = JSON.parse(host.exec('nsenter', [`--net=${netnsPath}`, '--', 'ip', '-j', '-6', 'addr', 'show', 'dev', dev]).stdout || '[]') as { addr_info?: { local: string; scope: string; tentative?: boolean }[] }[];
    const a = out.flatMap((l) => l.addr_info ?? []).find((x) => x.scope === 'link');
    if (a && !a.tentative) return a.local;
    if (i === 100) throw new Error(`${dev}: no link-local address after 5 s: ${JSON.stringify(out)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
