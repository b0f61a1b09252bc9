// The overlay agent's decisions, as pure functions: what the kernel of one host should hold for
// one overlay network given what the cluster store says, what it holds now, and the difference.
// The agent only ever applies these lists, so a restart, a missed event or a manual change is
// repaired by the next pass, and entries that are already right are never touched (a running
// container sees no gap).
//
// Per remote endpoint (another host's container on the network) the VXLAN device gets:
//   FDB entry        container MAC → that host's underlay address   (where to tunnel frames)
//   neighbour entry  container IP  → container MAC                  (answered locally: the device
//                                                                     runs with ARP proxy on, so
//                                                                     no broadcast crosses hosts)
// Local containers need neither: the bridge learns their MACs, and their ARP answers come from
// themselves.
import type { HostRecord, OverlayEndpoint } from './keys.js';

export interface FdbFact {
  mac: string;
  dst: string;
}

export interface NeighFact {
  ip: string;
  mac: string;
}

export interface Entries {
  fdb: FdbFact[];
  neigh: NeighFact[];
}

export interface Plan {
  fdbAdd: FdbFact[];
  fdbDel: FdbFact[];
  /** Added or replaced (the kernel call replaces). */
  neighAdd: NeighFact[];
  neighDel: NeighFact[];
}

/**
 * Entries one host needs for `network`: every endpoint of the network on another host whose
 * host is registered (a host whose registration expired is dead, and its endpoints with it).
 */
export function desiredEntries(network: string, selfHostId: string, hosts: ReadonlyMap<string, HostRecord>, endpoints: Iterable<OverlayEndpoint>): Entries {
  const fdb = new Map<string, FdbFact>();
  const neigh = new Map<string, NeighFact>();
  // Sorted, so a (never expected) duplicate address resolves the same way on every host.
  const eps = [...endpoints].filter((e) => e.network === network && e.hostId !== selfHostId).sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  for (const e of eps) {
    const host = hosts.get(e.hostId);
    if (!host) continue;
    const mac = e.mac.toLowerCase();
    fdb.set(`${mac} ${host.address}`, { mac, dst: host.address });
    neigh.set(e.ipv4, { ip: e.ipv4, mac });
  }
  return { fdb: [...fdb.values()], neigh: [...neigh.values()] };
}

/** What to add and delete so that `actual` becomes `desired`. */
export function planEntries(desired: Entries, actual: Entries): Plan {
  const fdbKey = (f: FdbFact) => `${f.mac.toLowerCase()} ${f.dst}`;
  const want = new Map(desired.fdb.map((f) => [fdbKey(f), f]));
  const have = new Map(actual.fdb.map((f) => [fdbKey(f), f]));
  const fdbAdd = [...want].filter(([k]) => !have.has(k)).map(([, f]) => f);
  const fdbDel = [...have].filter(([k]) => !want.has(k)).map(([, f]) => f);

  const wantN = new Map(desired.neigh.map((n) => [n.ip, n]));
  const haveN = new Map(actual.neigh.map((n) => [n.ip, n]));
  const neighAdd = [...wantN.values()].filter((n) => haveN.get(n.ip)?.mac.toLowerCase() !== n.mac.toLowerCase());
  const neighDel = [...haveN.values()].filter((n) => !wantN.has(n.ip));
  return { fdbAdd, fdbDel, neighAdd, neighDel };
}

export function isEmptyPlan(p: Plan): boolean {
  return p.fdbAdd.length + p.fdbDel.length + p.neighAdd.length + p.neighDel.length === 0;
}

/** What this host's endpoint keys in the cluster should be, from its local endpoint records. */
export interface OwnEndpointsPlan {
  put: OverlayEndpoint[];
  /** Keys of endpoints whose container is gone: delete them and release their addresses. */
  remove: OverlayEndpoint[];
}

/**
 * `local`: this host's overlay endpoints per its own records (the source of truth for what runs
 * here). `published`: this host's endpoint keys found in the cluster. A published endpoint with
 * no record may be an attach in progress (the cluster key is written before the local record),
 * so it is removed only when `alive` says its container's namespace is gone.
 */
export function planOwnEndpoints(local: readonly OverlayEndpoint[], published: readonly OverlayEndpoint[], alive: (e: OverlayEndpoint) => boolean): OwnEndpointsPlan {
  const pub = new Map(published.map((e) => [keyOf(e), e]));
  const mine = new Map(local.map((e) => [keyOf(e), e]));
  const put = local.filter((e) => {
    const p = pub.get(keyOf(e));
    return !p || endpointValue(p) !== endpointValue(e);
  });
  const remove = published.filter((e) => !mine.has(keyOf(e)) && !alive(e));
  return { put, remove };
}

/** The stored form of an endpoint: fixed field order, so equal endpoints are equal strings. */
export function endpointValue(e: OverlayEndpoint): string {
  return JSON.stringify({ containerId: e.containerId, network: e.network, hostId: e.hostId, mac: e.mac.toLowerCase(), ipv4: e.ipv4, netns: e.netns, ...(e.aliases && e.aliases.length > 0 ? { aliases: e.aliases } : {}), ...(e.boot !== undefined ? { boot: e.boot } : {}) });
}

function keyOf(e: OverlayEndpoint): string {
  return `${e.network}/${e.hostId}/${e.containerId}`;
}
