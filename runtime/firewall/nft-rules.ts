// tsrun's nftables ruleset, as pure functions returning libnftables JSON (libnftables-json(5)).
//
// tsrun owns exactly one table, `table inet tsrun`, with a FIXED set of chains and rules. Every
// per-network and per-container fact is an element of a named set or map, so attaching the
// 200th container adds elements and never a rule: the rule count is the same at 1 and 200.
// Every element carries a comment naming its owner ("net:<name>", "ctr:<id>") so gc can find
// orphans. Nothing outside `table inet tsrun` is ever read-modified or deleted.
//
//   table inet tsrun {
//     set bridges          { type ifname }                        every tsrun bridge
//     set bridge_pairs     { type ifname . ifname }               (br . br) per network with icc
//     set internal_bridges { type ifname }                        bridges of internal networks
//     set subnets4/6       { type ipv4_addr/ipv6_addr; flags interval }   every tsrun subnet
//     set nat_src4/6       { type ipv4_addr/ipv6_addr; flags interval }   subnets of non-internal networks
//     map pub4_any_addr    { type inet_proto . inet_service : ipv4_addr }      (proto . hostPort) on any local address
//     map pub4_any_port    { type inet_proto . inet_service : inet_service }
//     map pub4_ip_addr     { type ipv4_addr . inet_proto . inet_service : ipv4_addr }  (hostIp . proto . hostPort)
//     map pub4_ip_port     { type ipv4_addr . inet_proto . inet_service : inet_service }
//     map pub6_*           the same for IPv6
//
//     chain publish {                                              regular chain, jumped to twice
//       th dport 53 meta l4proto { udp, tcp } ip daddr @subnets4 fib daddr type local return
//       th dport 53 meta l4proto { udp, tcp } ip6 daddr @subnets6 fib daddr type local return
//       fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @pub4_ip_addr : … map @pub4_ip_port
//       meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @pub4_any_addr : … @pub4_any_port
//       fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6_ip_addr : … @pub6_ip_port
//       ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @pub6_any_addr : … @pub6_any_port
//     }
//     chain prerouting_raw { type filter hook prerouting priority raw; policy accept;
//       ip daddr 127.0.0.0/8 iifname != "lo" drop
//       ip6 daddr ::1 iifname != "lo" drop
//       udp dport 4789 udp dport @underlay_ports fib daddr type local ip saddr != @underlay_peers4 drop
//       th dport 53 meta l4proto { udp, tcp } ip daddr @subnets4 fib daddr type local iifname != @bridges iifname != "lo" drop
//       th dport 53 meta l4proto { udp, tcp } ip6 daddr @subnets6 fib daddr type local iifname != @bridges iifname != "lo" drop
//     }
//     chain prerouting { type nat hook prerouting priority dstnat; policy accept;  jump publish }
//     chain output     { type nat hook output priority -100; policy accept;        jump publish }
//     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//       ip saddr @nat_src4 oifname != @bridges masquerade
//       ip6 saddr @nat_src6 oifname != @bridges masquerade
//       ct status dnat ip saddr @subnets4 oifname @bridges masquerade
//       ct status dnat ip6 saddr @subnets6 oifname @bridges masquerade
//       ip saddr 127.0.0.0/8 oifname @bridges masquerade
//     }
//     chain forward { type filter hook forward priority filter; policy accept;
//       ct state established,related accept
//       iifname != @bridges ip saddr @subnets4 drop
//       iifname != @bridges ip6 saddr @subnets6 drop
//       iifname . oifname @bridge_pairs accept
//       iifname @internal_bridges drop
//       oifname @internal_bridges drop
//       oifname @bridges ct status dnat accept
//       iifname @bridges oifname @bridges drop
//       iifname @bridges accept
//       oifname @bridges drop
//     }
//   }
//
// tsrun filters the host's input in one place only: its resolvers' port on the gateways (j).
//
// Each rule also carries a comment "<label> (tsrun <schema id>)"; the schema id is a hash of this
// definition, so ensureBase can tell a current table from an old or damaged one.
//
// Packet paths (what each rule is for):
//  a. Outbound NAT. A container packet leaving through an interface that is not a tsrun bridge
//     (eth0, a VPN, a non-tsrun bridge) with its source in @nat_src4/6 is masqueraded to that
//     interface's address. Internal networks never enter nat_src*, so they are never NATed.
//  b. Published ports from outside. prerouting jumps to publish: first an exact
//     (daddr . proto . port) lookup in the pub*_ip maps (ports bound to one host address), then a
//     (proto . port) lookup in the pub*_any maps. Both only when daddr is a LOCAL address (fib):
//     the engine also refuses to publish on an address the host does not have, and the fib
//     match keeps a later route or address change from redirecting traffic meant for another
//     machine into a container. A hit DNATs to the container address (…_addr map) and port
//     (…_port map); a miss leaves the packet alone. Two maps with the same key are used instead
//     of one map with concatenated data because nft 1.0.6 crashes parsing `dnat … to … map @m`
//     with concatenated data from JSON.
//  c. From the host itself. Locally generated packets never see prerouting, so output jumps to
//     the same publish chain. For 127.0.0.1:port the DNATed packet still has source 127.0.0.1
//     and must leave through the bridge: the engine sets net.ipv4.conf.<bridge>.route_localnet=1
//     (without it the kernel drops it as a martian), and postrouting masquerades sources in
//     127.0.0.0/8 leaving through a tsrun bridge to the bridge address. prerouting_raw drops
//     anything for 127.0.0.0/8 or ::1 that did not arrive on lo, before conntrack and DNAT: a LAN
//     neighbour addressing 127.0.0.1 at the host's MAC (moby#45610) and a container using
//     route_localnet to reach the host's loopback services (CVE-2020-8558) are both stopped.
//     [::1] cannot be routed out of the host at all, so IPv6 loopback is excluded from DNAT.
//  d. Hairpin. A container reaching a published port through a host address is DNATed in
//     prerouting; the reply would go straight back from the target container with the wrong
//     source, so DNATed packets from a tsrun subnet leaving through a tsrun bridge are
//     masqueraded to that bridge's address (the reply then returns through the host).
//  e. Default-deny into container networks. Only tsrun's bridges are named: forwarding between
//     the host's other interfaces is never touched. Established/related flows are accepted first
//     (cheap, and what nearly every packet is). A NEW flow into a tsrun bridge is accepted only
//     when it was DNATed (a published port), or comes from the same bridge with icc on
//     (bridge_pairs holds (br . br) for icc networks only; nft cannot compare iifname with
//     oifname directly). Everything else into a bridge is dropped, IPv4 and IPv6: routed access
//     from a neighbour that routes a container subnet via the host, routed same-bridge traffic
//     under icc=false (port isolation alone does not stop routing through the gateway), and
//     forwarding between two tsrun networks. Internal networks: nothing forwarded out of or into
//     their bridge except within it. Connections from the host itself are output, not forward:
//     the host reaches its containers.
//  f. Egress: new flows out of a bridge to anywhere but another tsrun bridge are accepted. In
//     nftables a drop in ANY base chain is final, so accepts document intent but cannot override
//     another table's drop policy: a host whose own forward policy is drop must allow tsrun's
//     bridges itself (tsrun never edits other tables).
//  h. VXLAN (UDP 4789) to any local address of this host is accepted only from the registered
//     underlay addresses of the cluster's other hosts (sets kept by the overlay agent): anything
//     else on the underlay cannot inject frames into an overlay network, --internal ones too. Any
//     local address, not only the underlay one: the kernel's VXLAN socket listens on all of them.
//     underlay_ports holds 4789 while the agent keeps the sets (a host without a tsrun overlay
//     drops no one's VXLAN); underlay_local4 says which address the agent registered. While it
//     is on, VXLAN from a tsrun bridge (a container) to anywhere is dropped too: masqueraded, it
//     left with this host's registered address and other hosts took it for this host's VTEP.
//  g. icc=false is also bridge port isolation (netlink layer) for bridged same-subnet traffic,
//     which never reaches the inet hooks.
//  j. tsrun's resolvers (UDP and TCP 53 on each served network's gateway addresses, which are the
//     host's own) answer only packets that came in through a tsrun bridge (the containers) or
//     from the host itself (lo). Anything else to port 53 of a local address inside a tsrun
//     subnet is dropped before conntrack: a LAN neighbour that routes a container subnet via the
//     host (or sends to a gateway at the host's MAC) reaches a gateway as local input, which the
//     forward rules (e) never see; the resolver would answer it REFUSED, or, from a spoofed
//     container or subnet source, send a container's names or a forwarded answer into the
//     bridge. A listener kept after a network's last container is covered the same way. Fail
//     closed: the rule is in the fixed ruleset (schema id), so a table without it is rebuilt.
//     Nor are they DNATed to a published port: a container publishing port 53 on every host
//     address (-p 53:53/udp, a DNS server in a container) would otherwise take the gateways'
//     port 53, every container's and the host's queries to their resolver, with it.
//  k. Forged container sources. A new flow whose source is inside a tsrun subnet but that did not
//     come in through a tsrun bridge is dropped before any accept (IPv4 and IPv6). A LAN
//     neighbour sending with a container's address as its source (no route to the subnet needed)
//     was forwarded back out and masqueraded by (a) as that container's flow: the host relayed
//     for it with its own address, and the neighbour's answer to that address came back through
//     the flow as an established reply into a port the container never published (default-deny
//     bypassed). Sent to a published port instead, the DNATed packet made the container answer a
//     neighbour of its own. Overlay traffic of other hosts' containers comes in through the
//     network's bridge (its VXLAN port), the host's own packets are output, not forward.
//  i. No notrack rule. With br_netfilter loaded, bridged frames cross the inet hooks and
//     conntrack; an earlier version untracked traffic that stayed on an overlay bridge. Measured
//     (docs/benchmarks.md), it gained nothing: TCP crosses the bridge in GSO/GRO aggregates of up
//     to 64 KB (the VXLAN device's GRO cells aggregate what it decapsulates), so conntrack costs
//     ~2 % of the path's CPU, and the rule's own set lookup ran for every packet of the host.
import { sha256Hex } from '../hash.js';
import { addressBytes, bitsOf, formatAddress, isUnspecified as unspecified, parseAddress, parseInterfaceAddress, subnetOf, tryParseAddress } from '../../config/address.js';
import { UserError } from '../../config/errors.js';
import { checkContainerId, checkIfname, checkNetworkName } from '../../config/ids.js';
import type { FirewallEndpoint, FirewallNetwork, PortMapping } from './types.js';

export const FAMILY = 'inet';
/** The overlay's VXLAN port (runtime/overlay/devices.ts VXLAN_PORT). */
const VXLAN_UDP_PORT = 4789;
export const TABLE = 'tsrun';

/** Any JSON value nft accepts or prints. */
export type NftJson = string | number | boolean | null | NftJson[] | { [key: string]: NftJson };
/** One command of a batch, e.g. {"add": {"element": {...}}}. */
export type NftCommand = Record<string, Record<string, NftJson>>;
/** What `nft -j` reads: one batch, applied atomically. */
export interface NftBatch {
  nftables: NftCommand[];
}
/** What `nft -j list …` prints: metainfo, then one object per table/chain/set/map/rule. */
export interface NftListing {
  nftables: Record<string, NftJson>[];
}

export type SetName =
  | 'bridges'
  | 'bridge_pairs'
  | 'internal_bridges'
  | 'subnets4'
  | 'subnets6'
  | 'nat_src4'
  | 'nat_src6'
  | 'pub4_any_addr'
  | 'pub4_any_port'
  | 'pub4_ip_addr'
  | 'pub4_ip_port'
  | 'pub6_any_addr'
  | 'pub6_any_port'
  | 'pub6_ip_addr'
  | 'pub6_ip_port'
  | 'underlay_local4'
  | 'underlay_peers4'
  | 'underlay_ports';

/** One element of a named set or map (value present for maps). */
export interface SetElement {
  set: string;
  key: NftJson;
  value?: NftJson;
  comment?: string;
}

interface SetDef {
  name: SetName;
  type: string | string[];
  flags?: string[];
  /** Data type, for maps. */
  map?: string;
}

const SETS: readonly SetDef[] = [
  { name: 'bridges', type: 'ifname' },
  { name: 'bridge_pairs', type: ['ifname', 'ifname'] },
  { name: 'internal_bridges', type: 'ifname' },
  { name: 'subnets4', type: 'ipv4_addr', flags: ['interval'] },
  { name: 'subnets6', type: 'ipv6_addr', flags: ['interval'] },
  { name: 'nat_src4', type: 'ipv4_addr', flags: ['interval'] },
  { name: 'nat_src6', type: 'ipv6_addr', flags: ['interval'] },
  { name: 'pub4_any_addr', type: ['inet_proto', 'inet_service'], map: 'ipv4_addr' },
  { name: 'pub4_any_port', type: ['inet_proto', 'inet_service'], map: 'inet_service' },
  { name: 'pub4_ip_addr', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'ipv4_addr' },
  { name: 'pub4_ip_port', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'inet_service' },
  { name: 'pub6_any_addr', type: ['inet_proto', 'inet_service'], map: 'ipv6_addr' },
  { name: 'pub6_any_port', type: ['inet_proto', 'inet_service'], map: 'inet_service' },
  { name: 'pub6_ip_addr', type: ['ipv6_addr', 'inet_proto', 'inet_service'], map: 'ipv6_addr' },
  { name: 'pub6_ip_port', type: ['ipv6_addr', 'inet_proto', 'inet_service'], map: 'inet_service' },
  // The overlay agent keeps these current: this host's underlay address, and the registered
  // underlay addresses of the other hosts of the cluster.
  { name: 'underlay_local4', type: 'ipv4_addr' },
  { name: 'underlay_peers4', type: 'ipv4_addr' },
  // The VXLAN port while the agent keeps the two sets above (empty otherwise): it turns the
  // source filter (h) on, so a host running no tsrun overlay drops nobody's VXLAN.
  { name: 'underlay_ports', type: 'inet_service' },
];

type ChainName = 'publish' | 'prerouting_raw' | 'prerouting' | 'output' | 'postrouting' | 'forward';

interface ChainDef {
  name: ChainName;
  /** Base chains only. */
  base?: { type: 'filter' | 'nat'; hook: 'prerouting' | 'output' | 'postrouting' | 'forward'; prio: number };
}

const CHAINS: readonly ChainDef[] = [
  { name: 'publish' },
  { name: 'prerouting_raw', base: { type: 'filter', hook: 'prerouting', prio: -300 } },
  { name: 'prerouting', base: { type: 'nat', hook: 'prerouting', prio: -100 } },
  { name: 'output', base: { type: 'nat', hook: 'output', prio: -100 } },
  { name: 'postrouting', base: { type: 'nat', hook: 'postrouting', prio: 100 } },
  { name: 'forward', base: { type: 'filter', hook: 'forward', prio: 0 } },
];

// ---- expression helpers (the JSON nft itself prints for these rules) ----
const meta = (key: string): NftJson => ({ meta: { key } });
const payload = (protocol: string, field: string): NftJson => ({ payload: { protocol, field } });
const ct = (key: string): NftJson => ({ ct: { key } });
const concat = (...parts: NftJson[]): NftJson => ({ concat: parts });
const prefix = (addr: string, len: number): NftJson => ({ prefix: { addr, len } });
const match = (left: NftJson, right: NftJson, op: '==' | '!=' | 'in' = '=='): NftJson => ({ match: { op, left, right } });
const inSet = (left: NftJson, set: SetName, op: '==' | '!=' = '=='): NftJson => match(left, `@${set}`, op);
const fibLocal: NftJson = match({ fib: { result: 'type', flags: ['daddr'] } }, 'local');
const ctDnat: NftJson = match(ct('status'), 'dnat', 'in');
const accept: NftJson = { accept: null };
const drop: NftJson = { drop: null };
const masquerade: NftJson = { masquerade: null };

function dnatVia(family: 'ip' | 'ip6', key: NftJson, addrMap: SetName, portMap: SetName): NftJson {
  return { dnat: { family, addr: { map: { key, data: `@${addrMap}` } }, port: { map: { key, data: `@${portMap}` } } } };
}

const protoPort = concat(meta('l4proto'), payload('th', 'dport'));
/** DNS: UDP or TCP to port 53. The port first: one load and compare ends the rule for nearly
 * every packet (bridged frames cross prerouting too, with br_netfilter); the protocol check then
 * keeps bytes 2-3 of another protocol's header from passing for a port. */
const dns53: NftJson[] = [match(payload('th', 'dport'), 53), match(meta('l4proto'), { set: ['udp', 'tcp'] })];

interface RuleDef {
  chain: ChainName;
  label: string;
  expr: NftJson[];
}

const RULES: readonly RuleDef[] = [
  // j: port 53 of a gateway is tsrun's resolver, never a published port (a DNS server published
  // on every host address would otherwise answer every container's queries to its gateway).
  {
    chain: 'publish',
    label: 'j: resolvers not DNATed v4',
    expr: [...dns53, inSet(payload('ip', 'daddr'), 'subnets4'), fibLocal, { return: null }],
  },
  {
    chain: 'publish',
    label: 'j: resolvers not DNATed v6',
    expr: [...dns53, inSet(payload('ip6', 'daddr'), 'subnets6'), fibLocal, { return: null }],
  },
  // b, c: published ports (jumped to from prerouting and output). Every DNAT names a LOCAL
  // destination (fib): a published address that later stops being local (an address removed, a
  // route added) can never turn into a hijack of traffic meant for another machine.
  {
    chain: 'publish',
    label: 'b: publish on one host address v4',
    expr: [fibLocal, dnatVia('ip', concat(payload('ip', 'daddr'), meta('l4proto'), payload('th', 'dport')), 'pub4_ip_addr', 'pub4_ip_port')],
  },
  {
    chain: 'publish',
    label: 'b: publish on local addresses v4',
    expr: [match(meta('nfproto'), 'ipv4'), fibLocal, dnatVia('ip', protoPort, 'pub4_any_addr', 'pub4_any_port')],
  },
  {
    chain: 'publish',
    label: 'b: publish on one host address v6',
    expr: [fibLocal, dnatVia('ip6', concat(payload('ip6', 'daddr'), meta('l4proto'), payload('th', 'dport')), 'pub6_ip_addr', 'pub6_ip_port')],
  },
  {
    chain: 'publish',
    label: 'b: publish on local addresses v6',
    expr: [match(payload('ip6', 'daddr'), '::1', '!='), fibLocal, dnatVia('ip6', protoPort, 'pub6_any_addr', 'pub6_any_port')],
  },
  // c: loopback destinations only from lo (moby#45610, CVE-2020-8558): dropped before DNAT, so
  // neither a LAN neighbour (at the host's MAC) nor a container reaches 127.0.0.1-published ports
  // or, through route_localnet, the host's loopback services.
  {
    chain: 'prerouting_raw',
    label: 'c: loopback v4 only from lo',
    expr: [match(payload('ip', 'daddr'), prefix('127.0.0.0', 8)), match(meta('iifname'), 'lo', '!='), drop],
  },
  {
    chain: 'prerouting_raw',
    label: 'c: loopback v6 only from lo',
    expr: [match(payload('ip6', 'daddr'), '::1'), match(meta('iifname'), 'lo', '!='), drop],
  },
  // h: VXLAN only from the cluster's registered hosts, to ANY local address: the kernel's VXLAN
  // socket listens on all of them, so a filter on the underlay address alone let a frame sent to
  // another one (a gateway, the host's LAN address) into the network. On only while the agent
  // keeps the sets (underlay_ports holds the port then), so nothing is dropped on a host that runs
  // no tsrun overlay.
  {
    chain: 'prerouting_raw',
    label: 'h: VXLAN only from registered hosts',
    expr: [match(payload('udp', 'dport'), VXLAN_UDP_PORT), inSet(payload('udp', 'dport'), 'underlay_ports'), fibLocal, inSet(payload('ip', 'saddr'), 'underlay_peers4', '!='), drop],
  },
  // h: and no VXLAN from the containers (while the filter is on: this host is one of the
  // cluster's). A container's datagram to another host's port 4789 leaves masqueraded, from this
  // host's registered underlay address, which that host's filter trusts: a container (no
  // capability needed, a UDP socket) put any frame into any overlay network of any other host,
  // --internal ones and ones it is not on, past every port guard.
  {
    chain: 'prerouting_raw',
    label: 'h: no VXLAN from containers',
    expr: [match(payload('udp', 'dport'), VXLAN_UDP_PORT), inSet(payload('udp', 'dport'), 'underlay_ports'), inSet(meta('iifname'), 'bridges'), drop],
  },
  // j: tsrun's resolvers listen on the gateways (the host's own addresses in tsrun subnets): only
  // for the containers (through a tsrun bridge) and the host itself (lo). A LAN neighbour that
  // routes a subnet via the host would otherwise query them as local input, which the forward
  // rules never see (a probe of the networks, a reflector, TCP connections piled up).
  {
    chain: 'prerouting_raw',
    label: 'j: resolvers only from tsrun bridges and the host v4',
    expr: [...dns53, inSet(payload('ip', 'daddr'), 'subnets4'), fibLocal, inSet(meta('iifname'), 'bridges', '!='), match(meta('iifname'), 'lo', '!='), drop],
  },
  {
    chain: 'prerouting_raw',
    label: 'j: resolvers only from tsrun bridges and the host v6',
    expr: [...dns53, inSet(payload('ip6', 'daddr'), 'subnets6'), fibLocal, inSet(meta('iifname'), 'bridges', '!='), match(meta('iifname'), 'lo', '!='), drop],
  },
  { chain: 'prerouting', label: 'b: published ports', expr: [{ jump: { target: 'publish' } }] },
  { chain: 'output', label: 'c: published ports from the host', expr: [{ jump: { target: 'publish' } }] },
  // a, d, c: source NAT
  { chain: 'postrouting', label: 'a: outbound NAT v4', expr: [inSet(payload('ip', 'saddr'), 'nat_src4'), inSet(meta('oifname'), 'bridges', '!='), masquerade] },
  { chain: 'postrouting', label: 'a: outbound NAT v6', expr: [inSet(payload('ip6', 'saddr'), 'nat_src6'), inSet(meta('oifname'), 'bridges', '!='), masquerade] },
  { chain: 'postrouting', label: 'd: hairpin v4', expr: [ctDnat, inSet(payload('ip', 'saddr'), 'subnets4'), inSet(meta('oifname'), 'bridges'), masquerade] },
  { chain: 'postrouting', label: 'd: hairpin v6', expr: [ctDnat, inSet(payload('ip6', 'saddr'), 'subnets6'), inSet(meta('oifname'), 'bridges'), masquerade] },
  {
    chain: 'postrouting',
    label: 'c: host loopback to a container',
    expr: [match(payload('ip', 'saddr'), prefix('127.0.0.0', 8)), inSet(meta('oifname'), 'bridges'), masquerade],
  },
  // e, f: forwarding. Established flows first: the one rule nearly every forwarded packet hits.
  { chain: 'forward', label: 'f: established flows', expr: [match(ct('state'), ['established', 'related'], 'in'), accept] },
  // k: a container's address as the source of a new flow that did not come out of a tsrun bridge
  // is forged (a LAN neighbour needs no route to the subnet for it): without this, the host
  // forwarded it back out and masqueraded it as that container's flow (a relay speaking with
  // the host's address), and the answer came back through the flow, as an established reply,
  // into a port the container never published; a forged source to a published port made the
  // container answer a neighbour of its own.
  { chain: 'forward', label: 'k: container sources only from tsrun bridges v4', expr: [inSet(meta('iifname'), 'bridges', '!='), inSet(payload('ip', 'saddr'), 'subnets4'), drop] },
  { chain: 'forward', label: 'k: container sources only from tsrun bridges v6', expr: [inSet(meta('iifname'), 'bridges', '!='), inSet(payload('ip6', 'saddr'), 'subnets6'), drop] },
  { chain: 'forward', label: 'e: within one bridge (icc)', expr: [inSet(concat(meta('iifname'), meta('oifname')), 'bridge_pairs'), accept] },
  { chain: 'forward', label: 'e: nothing out of internal networks', expr: [inSet(meta('iifname'), 'internal_bridges'), drop] },
  { chain: 'forward', label: 'e: nothing into internal networks', expr: [inSet(meta('oifname'), 'internal_bridges'), drop] },
  { chain: 'forward', label: 'f: published ports', expr: [inSet(meta('oifname'), 'bridges'), ctDnat, accept] },
  { chain: 'forward', label: 'e: isolate networks and icc=false', expr: [inSet(meta('iifname'), 'bridges'), inSet(meta('oifname'), 'bridges'), drop] },
  { chain: 'forward', label: 'f: container egress', expr: [inSet(meta('iifname'), 'bridges'), accept] },
  { chain: 'forward', label: 'e: default-deny into tsrun bridges', expr: [inSet(meta('oifname'), 'bridges'), drop] },
];

// ---- the port guard: table bridge tsrun ----
//
// Bridged frames between containers of one network never reach the inet hooks (no
// br_netfilter), so what a container may SEND is checked where frames enter the bridge, per
// bridge port (the host end of its veth), in a second small table with the same shape: fixed
// rules, per-endpoint facts as set elements.
//
//   table bridge tsrun {
//     set guard_ports { type ifname }                                   host ends of container veths
//     set guard_macs  { type ifname . ether_addr }                      (port . its container's MAC)
//     set guard_src4  { type ifname . ether_addr . ipv4_addr }          (port . MAC . its address)
//     set guard_src6  { type ifname . ether_addr . ipv6_addr }
//     chain guard { type filter hook prerouting priority -300; policy accept;
//       iifname != @guard_ports iifname != "tsv*" accept                not a container: nothing to check
//       iifname "tsvx*" accept                                          the overlay's VXLAN port (vxlanName)
//       iifname . ether saddr . ip saddr @guard_src4 accept             its own MAC and IPv4 address: the rest passes
//       iifname . ether saddr != @guard_macs drop                       MAC spoofing
//       ether type { 8021q, 8021ad } drop                               VLAN-tagged frames (VLAN 0 hid ARP/RAs)
//       arp saddr ip != 0.0.0.0 iifname . arp saddr ether . arp saddr ip != @guard_src4 drop   ARP spoofing
//       iifname . ether saddr . ip saddr != @guard_src4 drop            IPv4 source spoofing
//       icmpv6 type { nd-router-advert, nd-redirect } drop              a container is never a router
//       ip6 saddr :: meta l4proto != ipv6-icmp drop                     :: is for ND and MLD alone
//       ip6 saddr != :: iifname . ether saddr . ip6 saddr != @guard_src6 drop
//     }
//   }
// :: (duplicate address detection, MLD before an address is valid) passes with the MAC check; a
// link-local source must be the port's own, the one the kernel derives inside the container from
// the MAC tsrun gives it (EUI-64, linkLocalHex), an element of guard_src6 like its address.
// Fail-closed: a port named like a container's veth (tsv…, hostVethName) that the guard does not
// know yet is NOT "not a container": it falls through, matches no (port . MAC) element and is
// dropped whole by the MAC rule. So nothing a container sends passes before its elements exist
// (`network connect` to a running, hostile container), whatever the order of the attach's steps.
// The overlay's VXLAN device (tsvx<vni>, vxlanName) is the one bridge port of tsrun's with that
// prefix that is no container's: hex never has an x, so no container veth is named tsvx….
export const GUARDED_PORT_PREFIX = 'tsv';
export const VXLAN_PORT_PREFIX = 'tsvx';
export const GUARD_FAMILY = 'bridge';
const guardWhere = { family: GUARD_FAMILY, table: TABLE };

type GuardSet = 'guard_ports' | 'guard_macs' | 'guard_src4' | 'guard_src6';
const GUARD_SETS: readonly { name: GuardSet; type: string | string[] }[] = [
  { name: 'guard_ports', type: 'ifname' },
  { name: 'guard_macs', type: ['ifname', 'ether_addr'] },
  { name: 'guard_src4', type: ['ifname', 'ether_addr', 'ipv4_addr'] },
  { name: 'guard_src6', type: ['ifname', 'ether_addr', 'ipv6_addr'] },
];
const gSet = (name: GuardSet) => `@${name}`;
const portMac = [meta('iifname'), payload('ether', 'saddr')];
const GUARD_RULES: readonly { label: string; expr: NftJson[] }[] = [
  { label: 'not a container port', expr: [match(meta('iifname'), gSet('guard_ports'), '!='), match(meta('iifname'), `${GUARDED_PORT_PREFIX}*`, '!='), accept] },
  { label: 'the overlay\'s VXLAN port', expr: [match(meta('iifname'), `${VXLAN_PORT_PREFIX}*`), accept] },
  // Nearly every frame a container sends is IPv4 from its own MAC and address: accepted here, on
  // the second lookup instead of the third, without walking the ARP and IPv6 rules. Exactly
  // what the rules below would do: a (port . MAC . address) element of guard_src4 is added with
  // the (port . MAC) element of guard_macs (guardElements), so the MAC and IPv4 checks pass.
  { label: 'own MAC and IPv4 address', expr: [match(concat(...portMac, payload('ip', 'saddr')), gSet('guard_src4')), accept] },
  { label: 'MAC spoofing', expr: [match(concat(...portMac), gSet('guard_macs'), '!='), drop] },
  // The ARP and router-advertisement rules below find their protocol by `ether type`, which
  // reads a VLAN tag's TPID, while a receiver (the host's bridge, a neighbour) takes a frame
  // tagged with VLAN 0 (an 802.1p priority tag) for an untagged one: a tagged gratuitous ARP
  // claimed the gateway's or a neighbour's address past the guard. A container port sends no
  // tagged frames (the rule above accepted its own IPv4 ones, tagged or not: harmless).
  { label: 'VLAN-tagged frames', expr: [match(payload('ether', 'type'), { set: ['8021q', '8021ad'] }), drop] },
  // The ARP body's sender MAC, not the frame's (the rule above holds the frame's to the port's):
  // receivers learn the body's, so a container could point its own address at a neighbour's MAC.
  {
    label: 'ARP spoofing',
    expr: [match(payload('arp', 'saddr ip'), '0.0.0.0', '!='), match(concat(meta('iifname'), payload('arp', 'saddr ether'), payload('arp', 'saddr ip')), gSet('guard_src4'), '!='), drop],
  },
  { label: 'IPv4 source spoofing', expr: [match(concat(...portMac, payload('ip', 'saddr')), gSet('guard_src4'), '!='), drop] },
  { label: 'router advertisements and redirects', expr: [match(payload('icmpv6', 'type'), { set: ['nd-router-advert', 'nd-redirect'] }), drop] },
  // The unspecified source is for neighbour discovery and MLD alone (duplicate address detection,
  // before an address is valid): ICMPv6. Anything else from it was a way to the host's loopback,
  // since Linux sends a reply to :: to ::1 ("BSD'ism"): a query to the resolver had its answer
  // sent to any UDP port of the host's ::1, past every firewall rule.
  { label: 'not ICMPv6 from ::', expr: [match(payload('ip6', 'saddr'), '::'), match(meta('l4proto'), 'ipv6-icmp', '!='), drop] },
  // Link-local sources too: guard_src6 holds the port's link-local address (linkLocalHex), so a
  // container cannot send from a neighbour's (with its own MAC: answers, the host's and its
  // services', went to that neighbour, one it may not reach under icc=false) or a made-up one.
  {
    label: 'IPv6 source spoofing',
    expr: [match(payload('ip6', 'saddr'), '::', '!='), match(concat(...portMac, payload('ip6', 'saddr')), gSet('guard_src6'), '!='), drop],
  },
];

function guardBaseCommands(): NftCommand[] {
  return [
    { create: { table: { family: GUARD_FAMILY, name: TABLE } } },
    ...GUARD_SETS.map((g) => ({ add: { set: { ...guardWhere, name: g.name, type: g.type } } })),
    { add: { chain: { ...guardWhere, name: 'guard', type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } } },
    ...GUARD_RULES.map((r) => ({ add: { rule: { ...guardWhere, chain: 'guard', expr: r.expr, comment: `guard: ${r.label} (tsrun ${schemaId()})` } } })),
  ];
}

// ---- neighbour discovery: table bridge tsrun_nd ----
//
// What a container's IPv6 neighbour solicitations and advertisements SAY, beyond their source
// (which the guard checks): the target of an advertisement, and the MAC in a link-layer address
// option, which is what receivers learn. Without it an unsolicited advertisement with the override
// flag for a neighbour's address or the gateway's, sent from the attacker's link-local address,
// moved the host's entry for that neighbour and the neighbours' entries for it and the gateway to
// the attacker (the IPv6 twin of the ARP claims the guard stops); and an advertisement or a
// solicitation for its own address naming a neighbour's MAC sent the host's traffic for it there.
//
//   table bridge tsrun_nd {
//     set nd_targets { typeof iifname . @th,64,128 }    (port . its IPv6 and link-local addresses)
//     set nd_lladdrs { typeof iifname . @th,208,48 }    (port . its MAC): the option's address
//     chain nd { type filter hook prerouting priority -300; policy accept;
//       icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } iifname "tsv*" iifname != "tsvx*" jump nd_check
//       icmpv6 type nd-router-solicit iifname "tsv*" iifname != "tsvx*" drop   the host, a router, learns from it too
//     }
//     chain nd_check {
//       ip6 nexthdr != ipv6-icmp drop                                     behind extension headers
//       icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd_targets drop
//       ip6 length 24 return                                              no option
//       icmpv6 type nd-neighbor-solicit ip6 saddr :: return               a DAD probe: nothing is learnt from it
//       ip6 length != 32 drop                                             more than one option
//       @th,192,16 != { 0x0101, 0x0201 } drop                             one option, a link-layer address
//       iifname . @th,208,48 != @nd_lladdrs drop                          naming the port's own MAC
//     }
//   }
//
// Its own table, built with nft's own syntax (ndTableText), because nftables 1.0.6 can say this
// only there: it has no `icmpv6 taddr`, refuses a raw payload against an ipv6_addr set, and its
// JSON cannot declare a `typeof` set with a raw payload. Rules referencing such a set and elements
// added to it are fine in JSON (and over netlink: the key is the same bytes as the address), so
// the attach adds its (port . address) and (port . MAC) elements in its one batch, as the guard's;
// a missing table fails that batch (not-found) and is rebuilt before the retry. Exactly one link-
// layer option at offset 24 or none: the kernel takes the FIRST option of each type and skips
// others, so an option checked anywhere else could be preceded by the one it learns (a nonce
// first). A container's link-local address is pinned too: the kernel derives it in the container
// from the MAC tsrun gives it (EUI-64: linkLocalHex), so an advertisement's target must be the
// port's global or link-local address (a solicitation's source, which receivers learn with its
// option, is held to the same two by the guard's source check); before, any link-local target
// and source passed and a container took over the gateway's (the bridge's) or a neighbour's
// link-local address in its neighbours' and the host's tables. A port that is not a
// container's veth is not looked at (tsvx: the overlay's VXLAN
// device); an unknown container port's frames are dropped whole by the guard's MAC rule.
export const ND_TABLE = 'tsrun_nd';
type NdSet = 'nd_targets' | 'nd_lladdrs';
const ND_SETS: readonly { name: NdSet; typeof: string; type: readonly string[] }[] = [
  { name: 'nd_targets', typeof: 'iifname . @th,64,128', type: ['ifname', 'raw128'] },
  { name: 'nd_lladdrs', typeof: 'iifname . @th,208,48', type: ['ifname', 'raw48'] },
];
const ND_CHAINS = [
  { name: 'nd_check' },
  { name: 'nd', base: { type: 'filter', hook: 'prerouting', prio: -300 } },
] as const;
const ND_RULES: readonly { chain: 'nd' | 'nd_check'; label: string; text: string }[] = [
  { chain: 'nd', label: 'solicitations and advertisements from container ports', text: 'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } iifname "tsv*" iifname != "tsvx*" jump nd_check' },
  // The host is a router (IPv6 forwarding on) and takes a router solicitation's source link-layer
  // address for its sender's address, as a neighbour solicitation's; a container never solicits
  // routers (accept_ra=0, no SLAAC).
  { chain: 'nd', label: 'router solicitations from container ports', text: 'icmpv6 type nd-router-solicit iifname "tsv*" iifname != "tsvx*" drop' },
  { chain: 'nd_check', label: 'behind extension headers', text: 'ip6 nexthdr != ipv6-icmp drop' },
  { chain: 'nd_check', label: 'an advertisement for another address', text: 'icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd_targets drop' },
  { chain: 'nd_check', label: 'no option', text: 'ip6 length 24 return' },
  // A solicitation only: the kernel learns from an advertisement whatever its source, :: too.
  { chain: 'nd_check', label: 'a DAD probe', text: 'icmpv6 type nd-neighbor-solicit ip6 saddr :: return' },
  { chain: 'nd_check', label: 'more than one option', text: 'ip6 length != 32 drop' },
  { chain: 'nd_check', label: 'an option other than a link-layer address', text: '@th,192,16 != { 0x0101, 0x0201 } drop' },
  { chain: 'nd_check', label: 'another MAC in the link-layer address option', text: 'iifname . @th,208,48 != @nd_lladdrs drop' },
];
const ndRuleComment = (r: { label: string }): string => `nd: ${r.label} (tsrun ${schemaId()})`;

/** The neighbour-discovery elements of a container's bridge port (none without a port): its MAC,
 * its link-local address and its IPv6 address if it has one. */
function ndElements(ifname: string, mac: string, ipv6: string | undefined, comment: string): SetElement[] {
  const els: SetElement[] = [
    { set: 'nd_lladdrs', key: concat(ifname, rawHex(mac.replace(/:/g, ''))), comment },
    { set: 'nd_targets', key: concat(ifname, rawHex(linkLocalHex(mac))), comment },
  ];
  if (ipv6 !== undefined) els.push({ set: 'nd_targets', key: concat(ifname, rawHex(addressBytes(parseAddress(ipv6)).map((b) => (b < 16 ? '0' : '') + b.toString(16)).join(''))), comment });
  return els;
}

/** The link-local address the kernel gives an interface with this MAC (fe80::/64 and the modified
 * EUI-64 of the MAC: the universal/local bit flipped, ff:fe in the middle; addr_gen_mode eui64,
 * a new network namespace's default), as 32 hex digits. */
export function linkLocalHex(mac: string): string {
  const b = mac.split(':');
  const first = (parseInt(b[0]!, 16) ^ 0x02).toString(16).padStart(2, '0');
  return `fe80000000000000${first}${b[1]}${b[2]}fffe${b[3]}${b[4]}${b[5]}`.toLowerCase();
}

/** The same link-local address as nft prints an ipv6_addr: fe80::42:acff:fe11:2. */
function linkLocalOf(mac: string): string {
  const hex = linkLocalHex(mac);
  // Its 32 hex digits are the address: no IPv6 parser needed (ipaddr.js compiles its regular
  // expressions on a cold process's first use, and every attach and detach prints this).
  if (/^[0-9a-f]{32}$/.test(hex)) return formatAddress({ family: 6, value: BigInt(`0x${hex}`) });
  return formatAddress(parseAddress(Array.from({ length: 8 }, (_, i) => hex.slice(i * 4, i * 4 + 4)).join(':')));
}

/** An nd element's key as listed in the form ndElements writes it: nft prints a raw field that
 * fits 53 bits (the MAC) as a JSON number, a longer one (the address) as a hex string. */
function ndListedKey(key: NftJson): NftJson {
  if (!isObject(key) || !Array.isArray(key.concat)) return key;
  return { concat: key.concat.map((v) => (typeof v === 'number' ? `0x${v.toString(16)}` : typeof v === 'string' && /^0x/i.test(v) ? rawHex(v.slice(2).toLowerCase()) : v)) };
}

/** A raw key field as nft prints it (so a listed element compares equal): "0x", the hex digits
 * without leading zeros. */
function rawHex(digits: string): string {
  return `0x${digits.replace(/^0+(?=.)/, '')}`;
}

/** An element of an nd set as nft's own syntax writes it: "port" . 0xHEX comment "owner". */
function ndElementText(e: SetElement): string {
  const parts = isObject(e.key) && Array.isArray(e.key.concat) ? e.key.concat : [];
  const [ifname, raw] = parts;
  if (typeof ifname !== 'string' || typeof raw !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(ifname) || !/^0x[0-9a-f]{1,32}$/i.test(raw)) {
    throw new UserError(`firewall: cannot write element ${JSON.stringify(e.key)} of ${e.set}`);
  }
  const comment = e.comment !== undefined && /^[A-Za-z0-9_.:~-]{1,128}$/.test(e.comment) ? ` comment "${e.comment}"` : '';
  return `"${ifname}" . ${raw}${comment}`;
}

/**
 * table bridge tsrun_nd with its rules and these elements as ONE transaction in nft's own syntax
 * (the one thing here JSON cannot say, see above): replacing whatever is there ('replace'), or
 * failing whole (EEXIST) when another process created it meanwhile ('create', as baseTable).
 */
export function ndTableText(els: SetElement[], mode: 'create' | 'replace' = 'replace'): string {
  const where = `bridge ${ND_TABLE}`;
  const lines = [
    ...(mode === 'replace' ? [`add table ${where}`, `delete table ${where}`, `add table ${where}`] : [`create table ${where}`]),
    ...ND_SETS.map((s) => `add set ${where} ${s.name} { typeof ${s.typeof}; }`),
    ...ND_CHAINS.map((c) => ('base' in c ? `add chain ${where} ${c.name} { type ${c.base.type} hook ${c.base.hook} priority ${c.base.prio}; policy accept; }` : `add chain ${where} ${c.name}`)),
    ...ND_RULES.map((r) => `add rule ${where} ${r.chain} ${r.text} comment "${ndRuleComment(r)}"`),
  ];
  for (const s of ND_SETS) {
    const mine = els.filter((e) => e.set === s.name);
    if (mine.length > 0) lines.push(`add element ${where} ${s.name} { ${mine.map(ndElementText).join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** The nd elements every endpoint of a state contributes (a rebuild's). */
export function ndElementsOf(endpoints: FirewallEndpoint[]): SetElement[] {
  const seen = new Set<string>();
  return endpoints.flatMap((ep) => guardElements(ep)).filter((e) => isNdSet(e.set) && (seen.has(`${e.set}|${canon(e.key)}`) ? false : (seen.add(`${e.set}|${canon(e.key)}`), true)));
}

const isNdSet = (set: string): boolean => set.startsWith('nd_');

/** True when a (terse) listing of table bridge tsrun_nd has its sets and rules as this version
 * defines them. */
export function ndMatches(listing: NftListing): boolean {
  const objs = tableObjects(listing, GUARD_FAMILY, ND_TABLE);
  const sets = objs.filter(([k]) => k === 'set').map(([, o]) => String(o.name)).sort();
  const rules = objs.filter(([k]) => k === 'rule').map(([, o]) => `${String(o.chain)}|${typeof o.comment === 'string' ? o.comment : ''}`);
  const want = ND_CHAINS.flatMap((c) => ND_RULES.filter((r) => r.chain === c.name).map((r) => `${r.chain}|${ndRuleComment(r)}`));
  const have = ND_CHAINS.flatMap((c) => rules.filter((r) => r.startsWith(`${c.name}|`)));
  return JSON.stringify(sets) === JSON.stringify(ND_SETS.map((g) => g.name).sort()) && rules.length === want.length && JSON.stringify(have) === JSON.stringify(want);
}

/** Elements a container's bridge port contributes to the guard (none without a port). */
export function guardElements(input: FirewallEndpoint): SetElement[] {
  if (!input.port) return [];
  const ep = normalizeEndpoint(input);
  const { ifname, mac } = checkPort(input.port, ep.containerId);
  const comment = ownerComment('ctr', ep.containerId);
  const els: SetElement[] = [
    { set: 'guard_ports', key: ifname, comment },
    { set: 'guard_macs', key: concat(ifname, mac), comment },
  ];
  if (ep.ipv4 !== undefined) els.push({ set: 'guard_src4', key: concat(ifname, mac, ep.ipv4), comment });
  // its link-local address, whether or not the network has IPv6 (the kernel gives one anyway)
  els.push({ set: 'guard_src6', key: concat(ifname, mac, linkLocalOf(mac)), comment });
  if (ep.ipv6 !== undefined) els.push({ set: 'guard_src6', key: concat(ifname, mac, ep.ipv6), comment });
  els.push(...ndElements(ifname, mac, ep.ipv6, comment));
  return els;
}

const MAC_RE = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;
function checkPort(port: { ifname: string; mac: string }, containerId: string): { ifname: string; mac: string } {
  checkIfname(port.ifname, `bridge port of container ${containerId}`);
  const mac = String(port.mac).toLowerCase();
  if (!MAC_RE.test(mac)) throw new UserError(`container ${containerId}: ${JSON.stringify(port.mac)} is not a MAC address`);
  return { ifname: port.ifname, mac };
}

/** Guard elements added, then deleted, in one batch: idempotent (the key names the port, MAC
 * and address, so it can only be this endpoint's). */
export function removeGuardBatch(ep: FirewallEndpoint): NftBatch {
  const els = guardElements(ep);
  return { nftables: els.length === 0 ? [] : [...addElements(els), ...deleteElements(els)] };
}

/**
 * The key and data types of one of tsrun's own sets, by family, table and name; undefined for any
 * other set. The direct netlink path (nfnl.ts) encodes elements by these, without asking the kernel.
 */
export function setTypeOf(family: string, table: string, name: string): { type: string | readonly string[]; map?: string; interval: boolean } | undefined {
  if (table === ND_TABLE) return ndSetTypeOf(family, name);
  if (table !== TABLE) return undefined;
  if (family === FAMILY) {
    const s = ALL_SETS.find((d) => d.name === name);
    return s && { type: s.type, ...(s.map ? { map: s.map } : {}), interval: s.flags?.includes('interval') ?? false };
  }
  if (family === GUARD_FAMILY) {
    const g = GUARD_SETS.find((d) => d.name === name);
    return g && { type: g.type, interval: false };
  }
  return undefined;
}

/** setTypeOf for table bridge tsrun_nd: its keys' raw fields are 'raw128' and 'raw48' (hex). */
function ndSetTypeOf(family: string, name: string): { type: readonly string[]; interval: boolean } | undefined {
  const d = family === GUARD_FAMILY ? ND_SETS.find((s) => s.name === name) : undefined;
  return d && { type: d.type, interval: false };
}

/** Rules in table bridge tsrun (the port guard): also constant. */
export const GUARD_RULE_COUNT = GUARD_RULES.length;

/** Rules in table inet tsrun: the same number at 0, 1 and 200 containers. */
export const RULE_COUNT = RULES.length;

/**
 * Changes whenever the sets, chains or rules above change: "v1-" and the first 10 hex digits of
 * the SHA-256 of schemaDefinition(). Written here rather than computed: every process that checks
 * the table (a hook's poststop, a CNI DEL) would otherwise load node:crypto for it (~3.5 ms of a
 * cold process with the node:stream it pulls in), and SHA-256 of these ~13 KB in cold JavaScript
 * costs more still. The unit test (nft-rules.test.ts) fails, naming the new value, when the
 * definitions change and this does not.
 */
const SCHEMA_ID = 'v1-4458242dc6';

export function schemaId(): string {
  return SCHEMA_ID;
}

/**
 * The schema marker: a set of table inet tsrun whose NAME carries the schema id, holding one
 * element. Every attach batch re-adds that element (backend.ts attach; re-adding an identical
 * element is no error), so a table built by another schema (an older tsrun before an in-place
 * upgrade) fails the attach's own batch with ENOENT, and the attach rebuilds the table with the
 * current fixed rules (ensureBase) before any element of the container is added: no extra nft
 * process or dump on the attach path, one more message in the batch it sends anyway. Outside
 * schemaDefinition() (its name is derived from the hash), inside the self-check's inventory.
 */
const SCHEMA_SET: SetDef = { name: `schema_${SCHEMA_ID.replace(/-/g, '_')}` as SetName, type: 'inet_service' };
const SCHEMA_MARK: SetElement = { set: SCHEMA_SET.name, key: 1 };

/** This version's sets of table inet tsrun: SETS and the schema marker. */
const ALL_SETS: readonly SetDef[] = [...SETS, SCHEMA_SET];

/** The attach's schema check: fails the batch (not-found) on a table of another schema. Made once
 * and shared, as networkBatchOf's batches are (callers copy the array, never change a command):
 * the netlink encoder remembers a command it has encoded by identity, so every attach after the
 * first copies the mark's bytes instead of encoding it again (~0.07 ms of a cold process's
 * attach, in the interpreter). */
export function schemaMarkBatch(): NftCommand[] {
  return (schemaMark ??= addElements([SCHEMA_MARK]));
}

let schemaMark: NftCommand[] | undefined;

/** What the schema id is the hash of (the unit test hashes it). */
export function schemaDefinition(): string {
  return JSON.stringify({ SETS, CHAINS, RULES, GUARD_SETS, GUARD_RULES, ND_SETS, ND_CHAINS, ND_RULES });
}

const ruleComment = (r: RuleDef): string => `${r.label} (tsrun ${schemaId()})`;
const where = { family: FAMILY, table: TABLE };

function setObject(s: SetDef): Record<string, NftJson> {
  const o: Record<string, NftJson> = { ...where, name: s.name, type: s.type };
  if (s.flags) o.flags = s.flags;
  if (s.map) o.map = s.map;
  return o;
}

function chainObject(c: ChainDef): Record<string, NftJson> {
  return c.base ? { ...where, name: c.name, ...c.base, policy: 'accept' } : { ...where, name: c.name };
}

/**
 * The whole table with its constant rules and empty sets. It starts with `create table`, which
 * fails with EEXIST when the table is there, so the batch is all-or-nothing and two racing
 * processes can never duplicate the rules: exactly one creates, the other learns it exists.
 */
export function baseTable(): NftBatch {
  return { nftables: baseCommands() };
}

function baseCommands(): NftCommand[] {
  return [
    { create: { table: { family: FAMILY, name: TABLE } } },
    ...ALL_SETS.map((s) => ({ add: { [s.map ? 'map' : 'set']: setObject(s) } })),
    ...schemaMarkBatch(),
    ...CHAINS.map((c) => ({ add: { chain: chainObject(c) } })),
    ...RULES.map((r) => ({ add: { rule: { ...where, chain: r.chain, expr: r.expr, comment: ruleComment(r) } } })),
    ...guardBaseCommands(),
  ];
}

/**
 * Replaces an old or damaged table in ONE atomic batch: delete it, create the current one, and
 * re-add every element of the old table whose set still exists with the same type, so no
 * published port or masqueraded subnet is ever missing to a packet.
 */
export function replaceBaseBatch(old: NftListing | undefined): NftBatch {
  const carried = old ? listElements(old).filter((e) => SETS.some((s) => s.name === e.set && sameSetShape(s, findSet(old, s.name)))) : [];
  return { nftables: [...dropTables(), ...baseCommands(), ...addElements(carried)] };
}

/** Deletes both of tsrun's tables whether or not they exist (`add` first makes a missing one no error). */
function dropTables(): NftCommand[] {
  return [FAMILY, GUARD_FAMILY].flatMap((family): NftCommand[] => [{ add: { table: { family, name: TABLE } } }, { delete: { table: { family, name: TABLE } } }]);
}

/**
 * Replaces the underlay sets in one batch: this host's underlay address(es) and the registered
 * addresses of the other hosts. Flush and refill are atomic: no packet sees a half-filled set.
 */
/** The VXLAN source filter's elements: this host's underlay address and its registered peers'. */
function underlayElements(local: string[], peers: string[]): SetElement[] {
  return [
    ...local.map((a) => ({ set: 'underlay_local4', key: normalizeAddress(a, 'ipv4', 'underlay address'), comment: 'agent' })),
    ...peers.map((a) => ({ set: 'underlay_peers4', key: normalizeAddress(a, 'ipv4', 'underlay peer'), comment: 'agent' })),
    // The filter is on while this host has an underlay address registered.
    ...(local.length > 0 ? [{ set: 'underlay_ports', key: VXLAN_UDP_PORT, comment: 'agent' }] : []),
  ];
}

export function underlayBatch(local: string[], peers: string[]): NftBatch {
  const els = underlayElements(local, peers);
  return {
    nftables: [
      { flush: { set: { ...where, name: 'underlay_local4' } } },
      { flush: { set: { ...where, name: 'underlay_peers4' } } },
      { flush: { set: { ...where, name: 'underlay_ports' } } },
      ...addElements(els),
    ],
  };
}

/** Everything the table should hold, as the Store describes it (see Engine.firewallState). */
export interface FirewallState {
  networks: FirewallNetwork[];
  endpoints: FirewallEndpoint[];
  /** The overlay's VXLAN source filter, from the cluster's host records: a rebuild restores it in
   * the same batch, so no rebuilt table accepts VXLAN from anyone until the agent refills it. */
  underlay?: { local: string[]; peers: string[] };
}

/**
 * Rebuilds the whole table from the Store in ONE atomic batch: delete whatever is there (a
 * damaged, old or half-flushed table; 'replace') or fail if a table appeared meanwhile
 * ('create'), create the current base, and add every network's and every endpoint's elements. A key wanted twice (which a consistent Store never holds) keeps its
 * first holder instead of failing the batch.
 */
export function restoreBatch(state: FirewallState, mode: 'create' | 'replace' = 'replace'): NftBatch {
  const seen = new Set<string>();
  const els: SetElement[] = [];
  const underlay = state.underlay ? underlayElements(state.underlay.local, state.underlay.peers) : [];
  for (const e of [...state.networks.flatMap((n) => networkElements(n)), ...state.endpoints.flatMap((ep) => [...endpointElements(ep), ...guardElements(ep)]), ...underlay]) {
    if (isNdSet(e.set)) continue; // table bridge tsrun_nd: ndTableText
    const id = `${e.set}|${canon(e.key)}`;
    if (seen.has(id)) continue;
    seen.add(id);
    els.push(e);
  }
  // 'create': baseCommands() starts with `create table`, which fails whole if the table exists.
  const replace: NftCommand[] = mode === 'replace' ? dropTables() : [];
  return { nftables: [...replace, ...baseCommands(), ...addElements(els)] };
}

/** Deletes table inet tsrun (tests, uninstall). `add` first so a missing table is no error. */
// ---- checking a listed table against this definition ----

/** One of tsrun's tables as this version defines it, for the self-check over netlink
 * (kernel-inventory.ts): its sets' types, its chains' hooks, its rules' comments in order. */
export interface TableDefinition {
  family: string;
  table: string;
  sets: { name: string; type: string | readonly string[]; map?: string; interval: boolean }[];
  chains: { name: string; base?: { type: string; hook: string; prio: number; policy: 'accept' } }[];
  rules: { chain: string; comment: string }[];
}

/** Both tables: inet tsrun and the port guard's bridge tsrun. */
export function tableDefinitions(): TableDefinition[] {
  return [
    {
      family: FAMILY,
      table: TABLE,
      sets: ALL_SETS.map((d) => ({ name: d.name, type: d.type, ...(d.map ? { map: d.map } : {}), interval: d.flags?.includes('interval') ?? false })),
      chains: CHAINS.map((c) => ({ name: c.name, ...(c.base ? { base: { ...c.base, policy: 'accept' as const } } : {}) })),
      rules: RULES.map((r) => ({ chain: r.chain, comment: ruleComment(r) })),
    },
    {
      family: GUARD_FAMILY,
      table: TABLE,
      sets: GUARD_SETS.map((g) => ({ name: g.name, type: g.type, interval: false })),
      chains: [{ name: 'guard', base: { type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } }],
      rules: GUARD_RULES.map((r) => ({ chain: 'guard', comment: `guard: ${r.label} (tsrun ${schemaId()})` })),
    },
    {
      family: GUARD_FAMILY,
      table: ND_TABLE,
      sets: ND_SETS.map((d) => ({ name: d.name, type: d.type, interval: false })),
      chains: ND_CHAINS.map((c) => ({ name: c.name, ...('base' in c ? { base: { ...c.base, policy: 'accept' as const } } : {}) })),
      rules: ND_RULES.map((r) => ({ chain: r.chain, comment: ndRuleComment(r) })),
    },
  ];
}


/** True when a (terse) listing of table inet tsrun has exactly these sets, chains and rules. */
export function baseMatches(listing: NftListing): boolean {
  return JSON.stringify(inventory(listing)) === expectedInventoryJson();
}

/** True when a (terse) listing of table bridge tsrun has the port guard's sets and rules as
 * this version defines them (the guard's part of the fingerprint). */
export function guardMatches(listing: NftListing): boolean {
  const objs = tableObjects(listing, GUARD_FAMILY);
  const sets = objs.filter(([k]) => k === 'set').map(([, o]) => String(o.name)).sort();
  const rules = objs.filter(([k]) => k === 'rule').map(([, o]) => (typeof o.comment === 'string' ? o.comment : ''));
  const want = GUARD_RULES.map((r) => `guard: ${r.label} (tsrun ${schemaId()})`);
  return JSON.stringify(sets) === JSON.stringify(GUARD_SETS.map((g) => g.name).sort()) && JSON.stringify(rules) === JSON.stringify(want);
}

interface Inventory {
  sets: string[];
  chains: string[];
  rules: Record<string, string[]>;
}

// Built on first use: the attach path never compares a listing.
let expectedInventory: string | undefined;
function expectedInventoryJson(): string {
  expectedInventory ??= JSON.stringify({
    sets: ALL_SETS.map((s) => setShape(s)).sort(),
    chains: CHAINS.map((c) => chainShape(chainObject(c))).sort(),
    rules: Object.fromEntries(CHAINS.map((c) => [c.name, RULES.filter((r) => r.chain === c.name).map(ruleComment)])),
  } satisfies Inventory);
  return expectedInventory;
}

function setShape(s: { name?: NftJson; type?: NftJson; flags?: NftJson; map?: NftJson }): string {
  return JSON.stringify([s.name, s.type, s.flags ?? [], s.map ?? null]);
}

function chainShape(c: Record<string, NftJson>): string {
  return JSON.stringify([c.name, c.type ?? null, c.hook ?? null, c.prio ?? null, c.policy ?? null]);
}

function inventory(listing: NftListing): Inventory {
  const inv: Inventory = { sets: [], chains: [], rules: {} };
  for (const [kind, obj] of tableObjects(listing)) {
    if (kind === 'set' || kind === 'map') inv.sets.push(setShape(obj));
    else if (kind === 'chain') {
      inv.chains.push(chainShape(obj));
      inv.rules[String(obj.name)] ??= [];
    } else if (kind === 'rule') (inv.rules[String(obj.chain)] ??= []).push(typeof obj.comment === 'string' ? obj.comment : '');
  }
  inv.sets.sort();
  inv.chains.sort();
  // Compare rules chain by chain in the definition's chain order.
  const ordered: Record<string, string[]> = {};
  for (const name of [...CHAINS.map((c) => c.name as string), ...Object.keys(inv.rules).sort()]) {
    if (name in inv.rules && !(name in ordered)) ordered[name] = inv.rules[name]!;
  }
  inv.rules = ordered;
  return inv;
}

/** The objects of table inet tsrun in a listing, as [kind, object]. */
function tableObjects(listing: NftListing, family: string = FAMILY, table: string = TABLE): [string, Record<string, NftJson>][] {
  const out: [string, Record<string, NftJson>][] = [];
  for (const item of listing.nftables ?? []) {
    for (const [kind, obj] of Object.entries(item)) {
      if (kind === 'metainfo' || kind === 'table' || !isObject(obj)) continue;
      if (obj.family !== family || (obj.table ?? obj.name) !== table) continue;
      out.push([kind, obj]);
    }
  }
  return out;
}

function findSet(listing: NftListing, name: string): Record<string, NftJson> | undefined {
  return tableObjects(listing).find(([kind, o]) => (kind === 'set' || kind === 'map') && o.name === name)?.[1];
}

function sameSetShape(def: SetDef, listed: Record<string, NftJson> | undefined): boolean {
  return listed !== undefined && setShape(def) === setShape(listed);
}

/** Number of rules of table inet tsrun in a listing. */
export function countRulesIn(listing: NftListing): number {
  return tableObjects(listing).filter(([kind]) => kind === 'rule').length;
}

// ---- elements ----

const COMMENT_MAX = 128;

/** The comment tagging an element with its owner; ids too long for nft's 128 bytes are hashed. */
export function ownerComment(kind: 'ctr' | 'net', id: string): string {
  const full = `${kind}:${id}`;
  if (Buffer.byteLength(full) <= COMMENT_MAX) return full;
  const hash = sha256Hex(id).slice(0, 16);
  return `${kind}:${id.slice(0, COMMENT_MAX - kind.length - 2 - hash.length - 1)}~${hash}`;
}

/** Elements a network contributes: its bridge and subnets. */
export function networkElements(input: FirewallNetwork): SetElement[] {
  const net = normalizeNetwork(input);
  const comment = ownerComment('net', net.name);
  const els: SetElement[] = [
    { set: 'bridges', key: net.bridge, comment },
  ];
  // icc=false: no (br . br) pair, so routed same-bridge traffic falls to the isolation drop.
  if (net.icc) els.push({ set: 'bridge_pairs', key: concat(net.bridge, net.bridge), comment });
  if (net.internal) els.push({ set: 'internal_bridges', key: net.bridge, comment });
  for (const [fam, subnets] of [['4', net.subnets4], ['6', net.subnets6]] as const) {
    for (const cidr of subnets) {
      const key = subnetKey(cidr);
      els.push({ set: `subnets${fam}`, key, comment });
      if (!net.internal) els.push({ set: `nat_src${fam}`, key, comment });
    }
  }
  return els;
}

/** Elements a container contributes: one (addr, port) map pair per published port and family. */
export function endpointElements(input: FirewallEndpoint): SetElement[] {
  const ep = normalizeEndpoint(input);
  const comment = ownerComment('ctr', ep.containerId);
  const els: SetElement[] = [];
  for (const p of ep.ports) {
    for (const t of portTargets(p, ep)) {
      const key = t.hostIp === undefined ? concat(p.protocol, p.hostPort) : concat(t.hostIp, p.protocol, p.hostPort);
      const kind = t.hostIp === undefined ? 'any' : 'ip';
      els.push({ set: `pub${t.fam}_${kind}_addr`, key, value: t.containerIp, comment });
      els.push({ set: `pub${t.fam}_${kind}_port`, key, value: p.containerPort, comment });
    }
  }
  return els;
}

/** `add element` commands, one per set, in order of first appearance. */
export function addElements(els: SetElement[]): NftCommand[] {
  return groupBySet(els).map(([set, group]) => ({
    add: { element: { ...whereOf(set), name: set, elem: group.map(elemJson) } },
  }));
}

/**
 * `delete element` commands (keys only). nft fails the whole batch if one is missing; the
 * backend therefore deletes only what a fresh listing shows it still owns (ownedElements).
 */
export function deleteElements(els: SetElement[]): NftCommand[] {
  return groupBySet(els).map(([set, group]) => ({
    delete: { element: { ...whereOf(set), name: set, elem: group.map((e) => e.key) } },
  }));
}

export const addNetworkBatch = (net: FirewallNetwork): NftBatch => ({ nftables: addElements(networkElements(net)) });

const networkBatches = new Map<string, NftBatch>();

/**
 * addNetworkBatch remembered per network: every attach re-adds its network's elements, so a
 * process attaching many containers (the engine's callers, tsrun run, the agent) checks and
 * builds them once, and the netlink encoder, which remembers commands it has encoded, encodes
 * them once. The batch is shared: callers copy it, never change it.
 */
export function networkBatchOf(net: FirewallNetwork): NftBatch {
  if (typeof net !== 'object' || net === null) return addNetworkBatch(net); // its error
  const key = JSON.stringify([net.name, net.bridge, net.subnets4, net.subnets6, net.internal, net.icc]);
  let batch = networkBatches.get(key);
  if (!batch) {
    batch = addNetworkBatch(net);
    if (networkBatches.size >= 64) networkBatches.clear();
    networkBatches.set(key, batch);
  }
  return batch;
}
export const deleteNetworkBatch = (net: FirewallNetwork): NftBatch => ({ nftables: deleteElements(networkElements(net)) });
export const addEndpointBatch = (ep: FirewallEndpoint): NftBatch => ({ nftables: addElements(endpointElements(ep)) });
export const deleteEndpointBatch = (ep: FirewallEndpoint): NftBatch => ({ nftables: deleteElements(endpointElements(ep)) });

function elemJson(e: SetElement): NftJson {
  const k: NftJson = e.comment === undefined ? e.key : { elem: { val: e.key, comment: e.comment } };
  return e.value === undefined ? k : [k, e.value];
}

/** The guard's sets live in table bridge tsrun, every other set in table inet tsrun. */
function whereOf(set: string): { family: string; table: string } {
  if (isNdSet(set)) return { family: GUARD_FAMILY, table: ND_TABLE };
  return set.startsWith('guard_') ? { family: GUARD_FAMILY, table: TABLE } : where;
}

function groupBySet(els: SetElement[]): [string, SetElement[]][] {
  const groups = new Map<string, SetElement[]>();
  for (const e of els) {
    const g = groups.get(e.set);
    if (g) g.push(e);
    else groups.set(e.set, [e]);
  }
  return [...groups];
}

// ---- reading elements back from a listing (gc, conflicts, fallback delete) ----

/** Every element of every set and map of table inet tsrun in a full listing (the schema marker aside). */
export function listElements(listing: NftListing, family: string = FAMILY, table: string = TABLE): SetElement[] {
  const out: SetElement[] = [];
  for (const [kind, obj] of tableObjects(listing, family, table)) {
    if ((kind !== 'set' && kind !== 'map') || !Array.isArray(obj.elem)) continue;
    const set = String(obj.name);
    // A schema marker (this version's or another's) is part of the base, owned by no one.
    if (family === FAMILY && set.startsWith('schema_')) continue;
    for (const raw of obj.elem) {
      const isPair = kind === 'map' && Array.isArray(raw) && raw.length === 2;
      const keyPart = isPair ? (raw as NftJson[])[0]! : raw;
      const el: SetElement = { set, key: keyPart };
      if (isObject(keyPart) && isObject(keyPart.elem)) {
        el.key = keyPart.elem.val ?? null;
        if (typeof keyPart.elem.comment === 'string') el.comment = keyPart.elem.comment;
      }
      if (isPair) el.value = (raw as NftJson[])[1]!;
      if (table === ND_TABLE) el.key = ndListedKey(el.key);
      out.push(el);
    }
  }
  return out;
}

/**
 * The wanted elements that the listing holds with the same key, the same data AND the same owner
 * comment: what a detach may delete. An element someone else re-created since (same port, and
 * the same address after IPAM handed it on) carries another owner and is left alone.
 */
export function ownedElements(listing: NftListing, wanted: SetElement[]): SetElement[] {
  const sets = new Set(wanted.map((w) => w.set));
  const have = new Set(listElements(listing).filter((e) => sets.has(e.set)).map((e) => identity(e, 'owner')));
  return wanted.filter((w) => have.has(identity(w, 'owner')));
}

/** `els` without those whose set and key `keep` has (a container's elements other than those of
 * the endpoints it still has on record). */
export function elementsExcept(els: SetElement[], keep: SetElement[]): SetElement[] {
  if (keep.length === 0) return els;
  const kept = new Set(keep.map((e) => identity(e, 'key')));
  return els.filter((e) => !kept.has(identity(e, 'key')));
}

/** Wanted map elements whose key the listing holds with different data, with the holder. */
export function conflictingElements(listing: NftListing, wanted: SetElement[]): { wanted: SetElement; held: SetElement }[] {
  const byKey = new Map(listElements(listing).map((e) => [identity(e, 'key'), e] as const));
  const out: { wanted: SetElement; held: SetElement }[] = [];
  for (const w of wanted) {
    const held = byKey.get(identity(w, 'key'));
    if (held && canon(held.value) !== canon(w.value)) out.push({ wanted: w, held });
  }
  return out;
}

function identity(e: SetElement, what: 'key' | 'owner'): string {
  const id = `${e.set}|${canon(e.key)}`;
  return what === 'key' ? id : `${id}|${canon(e.value)}|${e.comment ?? ''}`;
}

/** Stable text for comparing nft values: IP addresses normalized, full-length prefixes as addresses. */
export function canon(v: NftJson | undefined): string {
  return JSON.stringify(canonValue(v ?? null));
}

const canonStrings = new Map<string, string>();

function canonValue(v: NftJson): NftJson {
  if (typeof v === 'string') {
    let c = canonStrings.get(v);
    if (c === undefined) {
      const a = /[.:]/.test(v) ? tryParseAddress(v) : undefined;
      c = a ? formatAddress(a) : v;
      if (canonStrings.size < 100_000) canonStrings.set(v, c);
    }
    return c;
  }
  if (Array.isArray(v)) return v.map(canonValue);
  if (isObject(v)) {
    if (isObject(v.prefix) && typeof v.prefix.addr === 'string' && typeof v.prefix.len === 'number') {
      const a = tryParseAddress(v.prefix.addr);
      if (a && v.prefix.len === bitsOf(a.family)) return formatAddress(a);
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canonValue(x)]));
  }
  return v;
}

function isObject(v: unknown): v is Record<string, NftJson> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- validation: every field checked before anything reaches nft ----

/** A checked copy: names, bridge, CIDRs (host bits masked, duplicates refused). */
export function normalizeNetwork(net: FirewallNetwork): FirewallNetwork {
  if (typeof net !== 'object' || net === null) throw new UserError('firewall network: expected an object');
  checkNetworkName(net.name);
  checkIfname(net.bridge, `bridge name of network ${net.name}`);
  for (const f of ['internal', 'icc'] as const) {
    if (typeof net[f] !== 'boolean') throw new UserError(`network ${net.name}: ${f} must be true or false`);
  }
  const subnets = (field: 'subnets4' | 'subnets6', kind: 'ipv4' | 'ipv6'): string[] => {
    const list: unknown = net[field];
    if (!Array.isArray(list)) throw new UserError(`network ${net.name}: ${field} must be a list of CIDRs`);
    const out = list.map((c: unknown, i) => normalizeCidr(c, kind, `network ${net.name}: ${field}[${i}]`));
    const dup = out.find((c, i) => out.indexOf(c) !== i);
    if (dup !== undefined) throw new UserError(`network ${net.name}: ${field} lists ${dup} twice`);
    return out;
  };
  return { name: net.name, bridge: net.bridge, subnets4: subnets('subnets4', 'ipv4'), subnets6: subnets('subnets6', 'ipv6'), internal: net.internal, icc: net.icc };
}

/** A checked copy: container id, addresses, and ports (no host port published twice). */
export function normalizeEndpoint(ep: FirewallEndpoint): FirewallEndpoint {
  if (typeof ep !== 'object' || ep === null) throw new UserError('firewall endpoint: expected an object');
  checkContainerId(ep.containerId);
  const what = `container ${ep.containerId}`;
  const ipv4 = ep.ipv4 === undefined ? undefined : normalizeAddress(ep.ipv4, 'ipv4', `${what}: ipv4`);
  const ipv6 = ep.ipv6 === undefined ? undefined : normalizeAddress(ep.ipv6, 'ipv6', `${what}: ipv6`);
  if (!Array.isArray(ep.ports)) throw new UserError(`${what}: ports must be a list`);
  const seen = new Map<string, number>();
  const ports = ep.ports.map((p: PortMapping, i): PortMapping => {
    const at = `${what}: ports[${i}]`;
    if (typeof p !== 'object' || p === null) throw new UserError(`${at}: expected an object`);
    for (const f of ['hostPort', 'containerPort'] as const) {
      const n: unknown = p[f];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`${at}.${f}: must be an integer 1-65535, got ${JSON.stringify(n)}`);
    }
    if (p.protocol !== 'tcp' && p.protocol !== 'udp') throw new UserError(`${at}.protocol: must be tcp or udp, got ${JSON.stringify(p.protocol)}`);
    const out: PortMapping = { hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol };
    if (p.hostIp !== undefined && p.hostIp !== '') out.hostIp = normalizeAddress(p.hostIp, undefined, `${at}.hostIp`);
    const fams = portTargets(out, { ipv4, ipv6 }, at).map((t) => t.fam);
    for (const fam of fams) {
      const hostIp = out.hostIp !== undefined && !isUnspecified(out.hostIp) ? out.hostIp : '*';
      const key = `${fam}|${hostIp}|${out.protocol}|${out.hostPort}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        throw new UserError(`${at}: host port ${out.hostPort}/${out.protocol}${hostIp === '*' ? '' : ` on ${hostIp}`} is already published by ports[${prev}]`);
      }
      seen.set(key, i);
    }
    return out;
  });
  return { containerId: ep.containerId, ipv4, ipv6, ports };
}

interface PortTarget {
  fam: '4' | '6';
  /** undefined: every local address of the family. */
  hostIp?: string;
  containerIp: string;
}

/** Which families and maps one port goes to. Without hostIp: every family the container has. */
function portTargets(p: PortMapping, ep: { ipv4?: string | undefined; ipv6?: string | undefined }, at = `ports`): PortTarget[] {
  if (p.hostIp === undefined) {
    const out: PortTarget[] = [];
    if (ep.ipv4 !== undefined) out.push({ fam: '4', containerIp: ep.ipv4 });
    if (ep.ipv6 !== undefined) out.push({ fam: '6', containerIp: ep.ipv6 });
    if (out.length === 0) throw new UserError(`${at}: cannot publish a port: the container has no IPv4 or IPv6 address`);
    return out;
  }
  const fam = parseAddress(p.hostIp).family === 4 ? '4' : '6';
  const containerIp = fam === '4' ? ep.ipv4 : ep.ipv6;
  if (containerIp === undefined) throw new UserError(`${at}.hostIp: ${p.hostIp} is IPv${fam} but the container has no IPv${fam} address`);
  return [isUnspecified(p.hostIp) ? { fam, containerIp } : { fam, hostIp: p.hostIp, containerIp }];
}

function isUnspecified(ip: string): boolean {
  return unspecified(parseAddress(ip));
}

// Addresses and CIDRs follow config/address.ts (one parser, one canonical form: dotted quad or
// RFC 5952, which is also how nft prints them).
function normalizeAddress(raw: unknown, kind: 'ipv4' | 'ipv6' | undefined, at: string): string {
  const a = tryParseAddress(raw);
  if (!a) throw new UserError(`${at}: ${JSON.stringify(raw)} is not an IP address`);
  if (kind !== undefined && a.family !== (kind === 'ipv4' ? 4 : 6)) throw new UserError(`${at}: ${JSON.stringify(raw)} is not an ${kind === 'ipv4' ? 'IPv4' : 'IPv6'} address`);
  return formatAddress(a);
}

/** The subnet with its host bits masked off. */
function normalizeCidr(raw: unknown, kind: 'ipv4' | 'ipv6', at: string): string {
  const notCidr = () => new UserError(`${at}: ${JSON.stringify(raw)} is not an ${kind === 'ipv4' ? 'IPv4' : 'IPv6'} CIDR`);
  if (typeof raw !== 'string' || !raw.includes('/')) throw notCidr();
  let s;
  try {
    s = subnetOf(parseInterfaceAddress(raw));
  } catch {
    throw notCidr();
  }
  if (s.family !== (kind === 'ipv4' ? 4 : 6)) throw notCidr();
  if (s.prefixLength === 0) throw new UserError(`${at}: ${raw} covers every address`);
  return s.cidr;
}

function subnetKey(cidr: string): NftJson {
  const { address, prefixLength } = parseInterfaceAddress(cidr);
  return prefixLength === bitsOf(address.family) ? formatAddress(address) : prefix(formatAddress(address), prefixLength);
}
