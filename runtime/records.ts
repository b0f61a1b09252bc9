// Endpoint records: everything detach needs, persisted in the Store at attach time, so teardown
// works from the record alone — after the container's process is gone, from another process
// (a hook's poststop), and from another network namespace (runc runs poststop where `runc delete`
// was called).
import type { PortMapping } from '../config/ports.js';
import type { NetworkDriverName } from '../config/networks.js';
import type { Store } from './store/store.js';

export interface EndpointAddress {
  address: string;
  prefixLength: number;
  gateway?: string | undefined;
  /** The address lease's exact value (ipam/holder.ts): detach compares it before freeing the
   * address. Absent in records from before holders were recorded (the lease holds the bare id). */
  lease?: string | undefined;
}

/**
 * The identity of a host-side veth end. Its name is derived from (container id, network), so a
 * newer container with the same id on the same network gets the same name; the index does not
 * repeat (the kernel hands out interface indexes cyclically), and the peer's index in the
 * container's namespace is a second check for free (the same RTM_GETLINK reports it).
 */
export interface HostLink {
  /** ifindex of the host end in the host-side namespace. */
  index: number;
  /** ifindex of the peer (the container's interface) in the container's namespace. */
  peer?: number | undefined;
  /** The host end's MAC, chosen at random by the kernel when attach made it: with the name and
   * the index, what tells this link from a newer one wherever its peer has gone since (a
   * container with CAP_NET_ADMIN can move its end, which changes the peer's index and namespace,
   * but cannot touch the host end). Absent in older records (then the peer index is checked). */
  mac?: string | undefined;
  /** The peer's namespace as the host side saw it at attach (IFLA_LINK_NETNSID): when it differs
   * now, the peer has been moved, so its namespace's end no longer takes the pair with it. */
  peerNs?: number | undefined;
}

export interface EndpointRecord {
  containerId: string;
  network: string;
  driver: NetworkDriverName;
  /** Interface name inside the container. */
  ifname: string;
  /** Host-side interface (the veth end on the bridge). */
  hostIfname: string;
  /** Which link hostIfname was when it was made (see HostLink): a late detach deletes the link by
   * that name only while it is still this one. Absent in older records and for drivers with no
   * host-side link (macvlan, ipvlan). */
  hostLink?: HostLink | undefined;
  mac: string;
  ipv4?: EndpointAddress | undefined;
  ipv6?: EndpointAddress | undefined;
  ports: PortMapping[];
  /** Identity (dev:inode) of the network namespace holding the host side: the bridge, the veth
   * end, the nftables table. Detach finds that namespace again by this identity. */
  hostNetns: string;
  /** Identity of the container's network namespace when it was wired. */
  containerNetns: string;
  /** The path the container namespace was reached by (a tsrun pin or /proc/PID/ns/net). */
  netnsPath: string;
  /** When netnsPath was /proc/PID/ns/net (the hook): that process and its start time. Namespace
   * identities (dev:inode) are reused once a namespace is freed, so "is this the container I
   * wired?" is answered by the process, not by the inode alone. */
  netnsHolder?: { pid: number; start: string } | undefined;
  /** The boot the record was made in (runtime/boot.ts): a record from another boot is stale. */
  bootId?: string | undefined;
  /** DNS names besides the container id on this network (--network-alias). */
  aliases?: string[] | undefined;
  /** --dns: the upstreams the resolver forwards this container's other queries to. */
  dnsServers?: string[] | undefined;
  /** The container's resolv.conf points at tsrun's resolver on this network's gateway: the
   * resolver serves the network while such an endpoint exists. */
  resolver?: boolean | undefined;
  /** The front door that made it, when that door must find its endpoints again ('cni': GC). */
  via?: 'cni' | undefined;
  /** The CNI network (conflist name) a CNI attachment was made for: two conflists may name one
   * tsrun network, and one runtime's GC must not collect the other's attachments. */
  cniNetwork?: string | undefined;
  /** Elapsed milliseconds of the in-process wiring (netlink + nft), for the benchmark. */
  wiringMs?: number | undefined;
  created: string;
}

const key = (containerId: string, network: string) => `endpoints/${containerId}/${network}`;
/** The Store key of a container's record on a network. */
export const recordKey = key;

export async function saveEndpoint(store: Store, rec: EndpointRecord): Promise<void> {
  await store.put(key(rec.containerId, rec.network), JSON.stringify(rec));
}

export async function deleteEndpoint(store: Store, containerId: string, network: string): Promise<void> {
  await store.deleteIf(key(containerId, network));
}

export async function endpointsOf(store: Store, containerId: string): Promise<EndpointRecord[]> {
  return (await store.list(`endpoints/${containerId}/`)).flatMap((e) => parseRecord(e.value, e.key) ?? []);
}

export async function allEndpoints(store: Store): Promise<EndpointRecord[]> {
  return (await store.list('endpoints/')).flatMap((e) => parseRecord(e.value, e.key) ?? []);
}

/** Keys of records whose value cannot be read (see parseRecord): gc deletes them. */
export async function tornRecordKeys(store: Store): Promise<string[]> {
  return (await store.list('endpoints/')).filter((e) => parseRecord(e.value, e.key) === undefined).map((e) => e.key);
}

/**
 * A stored record, or undefined when its value is unreadable. Records are written without
 * fdatasync (store/open.ts, VOLATILE_PREFIXES), so after a power loss one can be empty or
 * zero-filled, or hold another record written before the crash (its file was a reused spare:
 * store/local.ts); it then describes a container of an earlier boot, which is gone with its veth
 * and namespace, and is skipped (its lease and host ports are freed by gc, as a crashed attach's
 * are). Given its `key`, a record that names another container or network than the key is torn:
 * acting on it would tear down what another record owns.
 */
export function parseRecord(value: string, key?: string): EndpointRecord | undefined {
  try {
    const r = JSON.parse(value) as Partial<EndpointRecord> | null;
    const whole = r !== null && typeof r === 'object' && typeof r.containerId === 'string' && typeof r.network === 'string';
    return whole && (key === undefined || key === recordKey(r.containerId!, r.network!)) ? (r as EndpointRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** The process whose namespace a /proc/PID/ns/net path names, with its start time. */
export function holderOf(netnsPath: string, startOf: (pid: number) => string | undefined): { pid: number; start: string } | undefined {
  const m = /^\/proc\/(\d+)\/ns\/net$/.exec(netnsPath);
  if (!m) return undefined;
  const pid = Number(m[1]);
  const start = startOf(pid);
  return start === undefined ? undefined : { pid, start };
}
