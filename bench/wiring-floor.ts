// The kernel's floor under one bridge attach's wiring: the rtnetlink requests an attach makes, in
// its order, sent raw (one socket in the host namespace kept open, one opened in the container's,
// each request answered before the next, as the kernel answers them inside sendmsg), the
// container's accept_ra writes, and the same nf_tables element batch (network, endpoint with one
// published port, port guard) as one netlink datagram. What tsrun adds on top of it is everything
// else in record.wiringMs: IPAM and host port leases in the Store, the records it reads, its
// sysctl checks, its JavaScript. Nothing here is tsrun's code path: the requests are encoded with
// tsrun's pure builders before the clock starts, and sent with libc calls directly.
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST, decodeMessages, encodeMessage, errorCode, type NlMessage } from '../runtime/netlink/codec.js';
import * as rq from '../runtime/netlink/requests.js';
import { parseLink } from '../runtime/netlink/parse.js';
import { AF_NETLINK, CLONE_NEWNET, MSG_DONTWAIT, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW, libcSys } from '../runtime/netns/sys.js';
import { THREAD_NETNS } from '../runtime/netns/netns.js';
import { addElements, addNetworkBatch, addEndpointBatch, guardElements } from '../runtime/firewall/nft-rules.js';
import { encodeElementBatch, sendElementBatch, type ElementBatch } from '../runtime/firewall/nfnl.js';
import type { FirewallEndpoint, FirewallNetwork } from '../runtime/firewall/types.js';

export interface FloorNetwork {
  bridge: string;
  /** "10.88.0.1/16": the bridge's gateway address as an attach re-adds it. */
  gatewayCidr: string;
  gateway: string;
  mtu: number;
  firewall: FirewallNetwork;
}

const buf = Buffer.alloc(64 * 1024);
let seq = 0;

/** One request on `fd`: its replies, after the kernel's ACK (or its error, as a negative errno). */
function exchange(fd: number, req: rq.Request): NlMessage[] | number {
  const s = ++seq;
  libcSys.send(fd, encodeMessage({ type: req.type, flags: req.flags | NLM_F_REQUEST | NLM_F_ACK, seq: s, port: 0, data: req.body }), 0);
  const out: NlMessage[] = [];
  for (;;) {
    const n = libcSys.recv(fd, buf, MSG_DONTWAIT);
    for (const m of decodeMessages(buf.subarray(0, n))) {
      if (m.seq !== s) continue;
      if (m.type === NLMSG_ERROR) {
        const errno = errorCode(m.data);
        return errno === 0 ? out : -errno;
      }
      out.push({ ...m, data: Buffer.from(m.data) }); // the buffer is read into again
    }
  }
}

function must(fd: number, req: rq.Request, what: string): NlMessage[] {
  const r = exchange(fd, req);
  if (typeof r === 'number') throw new Error(`wiring floor: ${what} refused (errno ${-r})`);
  return r;
}

const rtnlSocket = (): number => libcSys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

/** One floor round and its undo. */
export interface FloorRound {
  /** Milliseconds of the wiring itself. */
  ms: number;
  /** The round's endpoint as the firewall knows it (its elements go with the caller's removal). */
  endpoint: FirewallEndpoint;
  /** Takes the round's veth off the bridge, as a detach does (not timed). */
  retireVeth(): void;
}

/**
 * Wires one veth from `net`'s bridge into the namespace pinned at `pin` as an attach does, timed.
 * `i` makes the names, the MAC and the address of the round unique.
 */
export function wiringFloorRound(host: number, net: FloorNetwork, pin: string, i: number, ip: { address: string; prefixLength: number }): FloorRound {
  const hostIfname = `tsfl${(i % 0xffff).toString(16)}`;
  const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
  const peerMac = `02:f1:00:00:${hex(i >> 8)}:${hex(i)}`;
  const ep: FirewallEndpoint = { containerId: `floor-${i}`, ipv4: ip.address, ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], port: { ifname: hostIfname, mac: peerMac } };
  const batch: ElementBatch | undefined = encodeElementBatch({ nftables: [...addNetworkBatch(net.firewall).nftables, ...addEndpointBatch(ep).nftables, ...addElements(guardElements(ep))] });
  if (!batch) throw new Error('wiring floor: the attach batch has no netlink form');
  const nsFd = openSync(pin, 'r');
  const t0 = performance.now();
  // Host side: the bridge (looked up, its gateway re-added), the veth onto it, its port flags.
  const bridge = parseLink(must(host, rq.getLink(net.bridge), 'get bridge')[0]!);
  exchange(host, rq.addAddress(bridge.index, net.gatewayCidr)); // EEXIST, as at every attach
  must(host, rq.getLink(net.bridge), 'get bridge');
  must(host, rq.createVeth({ name: hostIfname, peerName: 'eth0', peerNsFd: nsFd, mtu: net.mtu, peerMac, master: bridge.index, up: true }), 'create veth');
  const hostEnd = parseLink(must(host, rq.getLink(hostIfname), 'get veth')[0]!);
  must(host, rq.setBridgePort(hostEnd.index, { hairpin: true }), 'bridge port flags');
  // Container side: a socket and the accept_ra writes in one visit, then the interface.
  const home = openSync(THREAD_NETNS, 'r');
  let inner: number;
  try {
    libcSys.setns(nsFd, CLONE_NEWNET);
    try {
      inner = rtnlSocket();
      for (const dev of ['all', 'default', 'eth0']) writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/accept_ra`, '0');
    } finally {
      libcSys.setns(home, CLONE_NEWNET);
    }
  } finally {
    closeSync(home);
  }
  try {
    const eth0 = parseLink(must(inner, rq.getLink('eth0'), 'get eth0')[0]!);
    must(inner, rq.addAddress(eth0.index, `${ip.address}/${ip.prefixLength}`), 'address');
    must(inner, rq.setUp(eth0.index, true), 'eth0 up');
    must(inner, rq.setUp('lo', true), 'lo up');
    must(inner, rq.addRoute({ dst: 'default', gateway: net.gateway, ifindex: eth0.index }), 'default route');
  } finally {
    libcSys.close(inner);
  }
  // The firewall: the same element batch, one datagram.
  const refused = sendElementBatch(batch);
  const ms = performance.now() - t0;
  closeSync(nsFd);
  if (refused) throw new Error(`wiring floor: element batch refused: ${refused.message}`);
  return { ms, endpoint: ep, retireVeth: () => void exchange(host, rq.setMaster(hostEnd.index, 0)) };
}

/** The host namespace's socket for every round (kept, as a process keeps its own). */
export function floorHostSocket(): number {
  return rtnlSocket();
}

export function closeFloorSocket(fd: number): void {
  libcSys.close(fd);
}
