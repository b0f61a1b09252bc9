// The resolver's view of the Store, built whole from every record (a full reload: swapped in one
// assignment) or changed in place for the containers a reload names (replaceContainer), in one
// synchronous call: a query sees the old table or the new one, never half of each. Pure: records
// in, answers out.
//
// Scoping: a name is visible to a client when the client shares a network with it and that
// network serves names. The client is found by its source address (a container on two networks
// sees both networks' names, whichever gateway it asks); a client tsrun does not know (the host,
// a container of another tool) sees the names of the network whose gateway it asked.
import ipaddr from 'ipaddr.js';
import type { NetworkDef } from '../../config/networks.js';
import type { EndpointRecord } from '../records.js';

export interface ServedNetwork {
  name: string;
  /** Names are answered (false: the resolver only forwards for this network's containers). */
  names: boolean;
  internal: boolean;
  /** Addresses the resolver listens on: the network's gateways, as the host has them. */
  listen: string[];
  subnets: string[];
}

export interface DnsEndpoint {
  containerId: string;
  network: string;
  names: string[];
  ipv4?: string | undefined;
  ipv6?: string | undefined;
  upstreams: string[];
}

/** An overlay endpoint published by another host (overlay/endpoints/… in the cluster store). */
export interface RemoteEndpoint {
  containerId: string;
  network: string;
  ipv4: string;
  aliases?: string[] | undefined;
}

/** An endpoint as the table keeps it: whether it uses the resolver decides what serves its network. */
interface Entry extends DnsEndpoint {
  resolver: boolean;
}

interface Client {
  visible: Set<string>;
  upstreams: string[] | undefined;
  internal: boolean;
  /** A source outside every network served here. */
  refused?: boolean | undefined;
}

export type Lookup =
  | { kind: 'answer'; addresses: string[]; ptr?: undefined }
  | { kind: 'ptr'; names: string[] }
  | { kind: 'nodata' }
  | { kind: 'nxdomain' }
  | { kind: 'forward'; upstreams: string[] | undefined }
  | { kind: 'refused' };

/** Networks whose containers use the resolver: DNS-capable drivers with a gateway on the host. */
export function dnsEnabled(net: NetworkDef): boolean {
  return net.dns ?? net.name !== 'tsrun';
}

/** The resolver can serve the network: its containers reach a gateway address on the host. */
export function resolverServes(net: NetworkDef): boolean {
  return (net.driver === 'bridge' || net.driver === 'overlay') && Boolean(net.gateway4 || net.gateway6);
}

/**
 * Of the listening addresses the table no longer wants (`idle`: their network's last container
 * left), those to keep listening on: each is a gateway of a bridge network that is still defined,
 * and the host still has it on that network's bridge (`interfaces`: the addresses of those bridges,
 * by name, as netlink reports them: os.networkInterfaces() leaves out a link without carrier, which
 * a bridge whose last port just left is). With one container at a time on a network, closing at each last detach
 * and binding again at each first attach cost every attach and detach a round of socket calls
 * (docs/dns.md). A kept listener follows the bridge: the network removed, the bridge gone or the
 * address off it, and the next reload closes it; the resolver exiting (no endpoint left) closes
 * them all.
 */
export function keptListeners(idle: Iterable<string>, nets: readonly NetworkDef[], interfaces: ReadonlyMap<string, readonly string[]>): Set<string> {
  const kept = new Set<string>();
  for (const [address, bridge] of listenerBridges(idle, nets)) {
    const a = normalizeIp(address);
    if ((interfaces.get(bridge) ?? []).some((i) => normalizeIp(i.replace(/%.*$/, '')) === a)) kept.add(address);
  }
  return kept;
}

/** The bridge each of these gateway addresses belongs to (a defined bridge network the resolver
 * can serve); addresses of no such network are left out. */
export function listenerBridges(addresses: Iterable<string>, nets: readonly NetworkDef[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const address of addresses) {
    const a = normalizeIp(address);
    const holder = nets.find((n) => n.driver === 'bridge' && Boolean(n.bridge) && resolverServes(n) && [n.gateway4, n.gateway6].some((g) => g !== undefined && normalizeIp(g) === a));
    if (holder) out.set(address, holder.bridge!);
  }
  return out;
}

export class DnsTable {
  readonly networks = new Map<string, ServedNetwork>();
  /** network → lower-case name → endpoints */
  private readonly byName = new Map<string, Map<string, Entry[]>>();
  /** address → endpoints holding it (one per network) */
  private readonly byAddress = new Map<string, Entry[]>();
  /** container id → its endpoints on every network */
  private readonly byContainer = new Map<string, Entry[]>();
  /** gateway address → network */
  private readonly byListen = new Map<string, ServedNetwork>();
  /** network → how many of its endpoints use the resolver (it is served while any does) */
  private readonly using = new Map<string, number>();
  private readonly defs: Map<string, NetworkDef>;
  /** The table holds other hosts' containers: see replaceContainer. */
  private readonly hasRemote: boolean;
  private count = 0;

  /**
   * `records`: every endpoint in the Store. A network is served while at least one of its
   * endpoints uses the resolver (record.resolver); names are answered on networks with DNS on.
   */
  constructor(nets: NetworkDef[], records: EndpointRecord[], remote: RemoteEndpoint[] = [], private readonly hostAddresses: ReadonlySet<string> = new Set()) {
    this.defs = new Map(nets.map((n) => [n.name, n]));
    // Containers of other hosts on overlay networks: names only (they never make a network served
    // here, and their queries go to their own host's resolver).
    const local = new Set(records.map((r) => `${r.containerId}/${r.network}`));
    const others: EndpointRecord[] = remote
      .filter((e) => !local.has(`${e.containerId}/${e.network}`))
      .map((e) => ({ containerId: e.containerId, network: e.network, driver: 'overlay', ifname: '', hostIfname: '', mac: '', ipv4: { address: e.ipv4, prefixLength: 32 }, aliases: e.aliases, ports: [], hostNetns: '', containerNetns: '', netnsPath: '', created: '' }));
    this.hasRemote = others.length > 0;
    for (const r of [...records, ...others]) this.add(r);
  }

  /** Endpoints that use the resolver. */
  get endpointCount(): number {
    return this.count;
  }

  /**
   * The table in place with `containerId`'s endpoints replaced by `records` (its records now;
   * none when it is gone): what a reload for one container changes, at the cost of that
   * container's endpoints instead of a table built again from every record. The same table as
   * one built whole from the new records (what it answers; the order of equal answers aside).
   * The caller bumps its generation (answers cached before are stale). False, and nothing
   * changed, for a table holding other hosts' containers (a local record hides a remote one of
   * the same container and network): that one is built whole.
   */
  replaceContainer(containerId: string, records: readonly EndpointRecord[]): boolean {
    if (this.hasRemote) return false;
    for (const e of this.byContainer.get(containerId) ?? []) this.remove(e);
    this.byContainer.delete(containerId);
    for (const r of records) this.add(r);
    this.clients.clear();
    return true;
  }

  private add(r: EndpointRecord): void {
    const def = this.defs.get(r.network);
    if (!def || !resolverServes(def)) return;
    const e: Entry = {
      containerId: r.containerId,
      network: r.network,
      names: [...new Set([r.containerId, ...(r.aliases ?? [])].map((n) => n.toLowerCase()))],
      ipv4: r.ipv4?.address,
      ipv6: r.ipv6?.address,
      upstreams: r.dnsServers ?? [],
      resolver: r.resolver === true,
    };
    for (const a of [e.ipv4, e.ipv6]) if (a) push(this.byAddress, normalizeIp(a), e);
    push(this.byContainer, e.containerId, e);
    if (e.resolver) {
      this.count++;
      this.using.set(def.name, (this.using.get(def.name) ?? 0) + 1);
      if (!this.networks.has(def.name)) {
        const served: ServedNetwork = {
          name: def.name,
          names: dnsEnabled(def),
          internal: def.internal,
          listen: [def.gateway4, def.gateway6].filter((g): g is string => Boolean(g)).map(normalizeIp),
          subnets: [def.subnet4, def.subnet6].filter((s): s is string => Boolean(s)),
        };
        this.networks.set(def.name, served);
        for (const l of served.listen) this.byListen.set(l, served);
      }
    }
    if (dnsEnabled(def)) {
      let names = this.byName.get(def.name);
      if (!names) this.byName.set(def.name, (names = new Map()));
      for (const n of e.names) push(names, n, e);
    }
  }

  /** Undoes add(e), except byContainer (the caller's). */
  private remove(e: Entry): void {
    for (const a of [e.ipv4, e.ipv6]) if (a) pull(this.byAddress, normalizeIp(a), e);
    const names = this.byName.get(e.network);
    if (names) {
      for (const n of e.names) pull(names, n, e);
      if (names.size === 0) this.byName.delete(e.network);
    }
    if (e.resolver) {
      this.count--;
      const left = (this.using.get(e.network) ?? 1) - 1;
      if (left > 0) this.using.set(e.network, left);
      else {
        this.using.delete(e.network);
        for (const l of this.networks.get(e.network)?.listen ?? []) this.byListen.delete(l);
        this.networks.delete(e.network);
      }
    }
  }

  /** Every address to listen on. */
  listenAddresses(): string[] {
    return [...this.byListen.keys()];
  }

  networkAt(listenAddress: string): ServedNetwork | undefined {
    return this.byListen.get(listenAddress) ?? this.byListen.get(normalizeIp(listenAddress));
  }

  /** Clients seen by this table (forgotten whenever it changes: replaceContainer): the hot path
   * of a query is then two map lookups. Bounded against a flood of sources. */
  private readonly clients = new Map<string, Client>();

  private client(source: string, listenAddress: string): Client {
    const key = `${source}|${listenAddress}`;
    let c = this.clients.get(key);
    if (!c) {
      if (this.clients.size >= 4096) this.clients.clear();
      c = this.computeClient(source, this.networkAt(listenAddress));
      this.clients.set(key, c);
    }
    return c;
  }

  /** The networks a client sees names on, and its own upstreams (--dns), if any. */
  private computeClient(source: string, via: ServedNetwork | undefined): Client {
    const at = this.byAddress.get(normalizeIp(source)) ?? [];
    // The client is a container: all its networks count, whichever address it asked from.
    const eps = [...new Set(at.map((e) => e.containerId))].flatMap((id) => this.byContainer.get(id) ?? []);
    if (eps.length > 0) {
      const visible = new Set(eps.map((e) => e.network).filter((n) => this.byName.has(n)));
      const upstreams = eps.find((e) => e.upstreams.length > 0)?.upstreams;
      // Forwarding leaves the host: refused when every network the client is on is internal.
      const internal = eps.every((e) => this.networks.get(e.network)?.internal ?? false);
      return { visible, upstreams, internal };
    }
    // Not a container: the host itself (any of its addresses) or another address of the network
    // sees that network's names. Anyone else who can route to a gateway (a LAN host
    // behind a forwarding host) gets nothing: no container names, and no open resolver.
    if (!via || !(this.hostAddresses.has(source) || via.subnets.some((s) => inSubnet(source, s)))) return { visible: new Set(), upstreams: undefined, internal: false, refused: true };
    return { visible: new Set(via.names ? [via.name] : []), upstreams: undefined, internal: via.internal };
  }

  /**
   * What to answer for `name` (type A, AAAA, PTR or another) asked by `source` on the socket
   * bound to `listenAddress`.
   */
  lookup(name: string, type: string, source: string, listenAddress: string): Lookup {
    const c = this.client(source, listenAddress);
    if (c.refused) return { kind: 'refused' };
    const q = name.toLowerCase().replace(/\.$/, '');
    const forward = (): Lookup => (c.internal ? { kind: 'refused' } : { kind: 'forward', upstreams: c.upstreams });

    if (type === 'PTR') {
      const ip = ptrToIp(q);
      if (ip === undefined) return forward();
      const owners = (this.byAddress.get(ip) ?? []).filter((e) => c.visible.has(e.network));
      if (owners.length > 0) return { kind: 'ptr', names: owners.map((e) => `${e.containerId}.${e.network}`) };
      // An address inside a visible network with no container: ours to deny.
      if ([...c.visible].some((n) => this.networks.get(n)?.subnets.some((s) => inSubnet(ip, s)))) return { kind: 'nxdomain' };
      return forward();
    }

    const labels = q.split('.');
    let found: DnsEndpoint[] | undefined;
    let ours = false;
    if (labels.length >= 2 && c.visible.has(labels[labels.length - 1]!)) {
      // NAME.NETWORK: that network only.
      ours = true;
      found = this.byName.get(labels[labels.length - 1]!)?.get(labels.slice(0, -1).join('.'));
    }
    if (!found || found.length === 0) {
      found = [];
      for (const n of c.visible) found.push(...(this.byName.get(n)?.get(q) ?? []));
    }
    if (found.length > 0) {
      if (type !== 'A' && type !== 'AAAA') return { kind: 'nodata' };
      const addrs = [...new Set(found.map((e) => (type === 'A' ? e.ipv4 : e.ipv6)).filter((a): a is string => Boolean(a)))];
      return addrs.length > 0 ? { kind: 'answer', addresses: addrs } : { kind: 'nodata' };
    }
    // A single label is a container name or nothing: the world's resolvers would only say
    // NXDOMAIN, slower. So is anything under a network's name.
    if (ours || (labels.length === 1 && c.visible.size > 0)) return { kind: 'nxdomain' };
    return forward();
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** Removes `v` (this very object) from `m`'s list at `k`, and the key with its last value. */
function pull<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (!list) return;
  const rest = list.filter((x) => x !== v);
  if (rest.length > 0) m.set(k, rest);
  else m.delete(k);
}

const DOTTED_QUAD = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

export function normalizeIp(a: string): string {
  // The kernel's IPv4 addresses are already canonical: the per-query path skips the parser.
  if (DOTTED_QUAD.test(a)) return a;
  try {
    const p = ipaddr.parse(a);
    return p.kind() === 'ipv6' && (p as ipaddr.IPv6).isIPv4MappedAddress() ? (p as ipaddr.IPv6).toIPv4Address().toString() : p.toString();
  } catch {
    return a;
  }
}

/** 4.3.2.1.in-addr.arpa → 1.2.3.4; nibbles.ip6.arpa → the IPv6 address; else undefined. */
export function ptrToIp(name: string): string | undefined {
  const q = name.toLowerCase().replace(/\.$/, '');
  if (q.endsWith('.in-addr.arpa')) {
    const parts = q.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) return undefined;
    return parts.reverse().join('.');
  }
  if (q.endsWith('.ip6.arpa')) {
    const nibbles = q.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/.test(n))) return undefined;
    const hex = nibbles.reverse().join('');
    const groups = hex.match(/.{4}/g)!;
    return ipaddr.parse(groups.join(':')).toString();
  }
  return undefined;
}

function inSubnet(ip: string, cidr: string): boolean {
  try {
    const addr = ipaddr.parse(ip);
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return addr.kind() === range.kind() && addr.match(range, bits);
  } catch {
    return false;
  }
}
