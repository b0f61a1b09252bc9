// The overlay's key layout in the cluster store (all under overlay/, which the scoped store keeps
// in etcd), and the records stored there. One module, so the driver that writes, the agent that
// watches and inspect that reads agree on every name.
//
//   overlay/hosts/<hostId>                               HostRecord; bound to the host agent's lease
//   overlay/endpoints/<network>/<hostId>/<containerId>   OverlayEndpoint; bound to the same lease
//   overlay/vni/<vni>                                    the network holding that VXLAN id
//
// Endpoints are keyed by host as well as container: container ids are unique per host, not per
// cluster, and a host's keys can then be listed (and cleaned) without reading anyone else's.
// This host's own identity lives in its local store, never in the cluster:
//   agent/host-id   agent/lease
export const OVERLAY_PREFIX = 'overlay/';
export const HOSTS_PREFIX = 'overlay/hosts/';
export const ENDPOINTS_PREFIX = 'overlay/endpoints/';

export const LOCAL_HOST_ID_KEY = 'agent/host-id';
export const LOCAL_LEASE_KEY = 'agent/lease';

export interface HostRecord {
  hostId: string;
  hostname: string;
  /** Underlay (VTEP) address: where other hosts send this host's VXLAN packets. */
  address: string;
  /** MAC of this host's VXLAN devices (one per overlay network, all with this address). */
  vtepMac: string;
  /** The interface holding `address`, and its MTU (containers get underlayMtu - 50). */
  underlay: string;
  underlayMtu: number;
  /** The etcd lease this host's keys are bound to (decimal). */
  leaseId: string;
  registered: string;
}

export interface OverlayEndpoint {
  containerId: string;
  network: string;
  hostId: string;
  mac: string;
  ipv4: string;
  /** Identity (dev:inode) of the container's namespace, so the agent can tell a live one. */
  netns: string;
  /** --network-alias names, for the DNS resolvers of other hosts. */
  aliases?: string[] | undefined;
  /** The boot of the host that attached it (runtime/boot.ts): with the key's host and container,
   * which attach this is; an endpoint of this host from another boot describes nothing live. */
  boot?: string | undefined;
}

export const hostKey = (hostId: string): string => `${HOSTS_PREFIX}${hostId}`;
export const networkEndpointsPrefix = (network: string): string => `${ENDPOINTS_PREFIX}${network}/`;
export const hostEndpointsPrefix = (network: string, hostId: string): string => `${ENDPOINTS_PREFIX}${network}/${hostId}/`;
export const endpointKey = (network: string, hostId: string, containerId: string): string => `${ENDPOINTS_PREFIX}${network}/${hostId}/${containerId}`;
export const vniKey = (vni: number): string => `overlay/vni/${vni}`;

export type OverlayKey =
  | { kind: 'host'; hostId: string }
  | { kind: 'endpoint'; network: string; hostId: string; containerId: string }
  | { kind: 'vni'; vni: number };

/** What an overlay/ key names; undefined for anything else (other tools' keys, future layouts). */
export function parseOverlayKey(key: string): OverlayKey | undefined {
  const p = key.split('/');
  if (p[0] !== 'overlay') return undefined;
  if (p[1] === 'hosts' && p.length === 3 && p[2]) return { kind: 'host', hostId: p[2] };
  if (p[1] === 'endpoints' && p.length === 5 && p[2] && p[3] && p[4]) return { kind: 'endpoint', network: p[2], hostId: p[3], containerId: p[4] };
  if (p[1] === 'vni' && p.length === 3 && /^\d+$/.test(p[2] ?? '')) return { kind: 'vni', vni: Number(p[2]) };
  return undefined;
}

/** JSON.parse that returns undefined for a value that is not a record of the expected shape. */
export function parseHostRecord(text: string | undefined): HostRecord | undefined {
  const v = safeJson(text);
  return v && typeof v.hostId === 'string' && typeof v.address === 'string' && typeof v.leaseId === 'string' ? (v as unknown as HostRecord) : undefined;
}

export function parseOverlayEndpoint(text: string | undefined): OverlayEndpoint | undefined {
  const v = safeJson(text);
  return v && typeof v.containerId === 'string' && typeof v.hostId === 'string' && typeof v.mac === 'string' && typeof v.ipv4 === 'string'
    ? (v as unknown as OverlayEndpoint)
    : undefined;
}

function safeJson(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The VXLAN device of an overlay network on every host: named by its id, so it is unique per
 * host (ids are unique per cluster) and fits the 15-byte limit ("tsvx16777215"). */
export function vxlanName(vni: number): string {
  return `tsvx${vni}`;
}

/** The locally administered MAC of a host's VTEP devices, derived from its id. */
export function vtepMacOf(hostId: string): string {
  const hex = hostId.replace(/[^0-9a-f]/gi, '').padEnd(10, '0').slice(0, 10).toLowerCase();
  return `0e:${hex.match(/../g)!.join(':')}`;
}
