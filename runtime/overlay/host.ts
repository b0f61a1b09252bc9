// Who this host is in the overlay: a stable id kept in its local store (so simulated hosts with
// their own TSRUN_ROOT are distinct hosts), the underlay address its peers tunnel to, and the
// interface holding that address.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { UserError } from '../../config/errors.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Link } from '../netlink/types.js';
import type { Store } from '../store/store.js';
import type { ClusterStore } from '../store/cluster.js';
import { HOSTS_PREFIX, LOCAL_HOST_ID_KEY, LOCAL_LEASE_KEY, hostKey, parseHostRecord, type HostRecord } from './keys.js';

/** This host's id, created on first use (by the agent). */
export async function ensureHostId(store: Store): Promise<string> {
  await store.createIfAbsent(LOCAL_HOST_ID_KEY, randomBytes(6).toString('hex'));
  return (await store.get(LOCAL_HOST_ID_KEY))!;
}

/** This host's registration, as the driver needs it before wiring a container. */
export async function requireLocalHost(store: Store, cluster: ClusterStore): Promise<HostRecord> {
  const hostId = await agentHostId(store);
  if (hostId === undefined) throw new UserError('no tsrun agent has run on this host: start `tsrun agent` (same TSRUN_ROOT and --store) before attaching to an overlay network');
  const rec = parseHostRecord(await cluster.get(hostKey(hostId)));
  if (!rec) throw new UserError(`this host (${hostId}) is not registered in ${cluster.name}: is \`tsrun agent\` running here?`);
  return rec;
}

/**
 * The source address this host would use towards `endpoint` ("host:port"): the kernel's route
 * choice, read by connecting a UDP socket (which sends nothing).
 */
export async function routeSourceTowards(endpoint: string): Promise<string> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(endpoint);
  if (!m) throw new UserError(`cannot tell the underlay address from etcd endpoint ${endpoint}: pass --advertise-address`);
  const [, hostPart, port] = m as unknown as [string, string, string];
  const family = isIP(hostPart) === 6 ? 'udp6' : 'udp4';
  const sock = dgram.createSocket(family);
  try {
    return await new Promise<string>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(Number(port), hostPart, () => resolve(sock.address().address));
    });
  } catch (err) {
    throw new UserError(`no route from this host towards etcd endpoint ${endpoint} (${(err as Error).message}): pass --advertise-address`, { cause: err });
  } finally {
    sock.close();
  }
}

/** The interface holding `address` in the namespace of `host`. */
export async function underlayLink(host: Rtnl, address: string): Promise<Link> {
  // Its family's addresses only: an IPv6 dump carries a link-local address per container veth.
  const a = (await host.listAddresses(undefined, isIP(address) === 6 ? 6 : 4)).find((x) => x.address === address);
  const link = a && (await host.getLink(a.ifindex));
  if (!link) throw new UserError(`${address} is not an address of this host: the overlay's underlay address must be a local one (--advertise-address)`);
  return link;
}

/**
 * The VXLAN source filter as the cluster describes it: this host's underlay address and every
 * other registered host's. Undefined where this host has no overlay identity (no agent ever ran,
 * or the store has no cluster). A firewall rebuild restores it with everything else, so a rebuilt
 * table never accepts VXLAN from an unregistered source while the agent catches up.
 */
export async function underlayFilter(store: Store, cluster: ClusterStore | undefined): Promise<{ local: string[]; peers: string[] } | undefined> {
  if (!cluster) return undefined;
  const hostId = await agentHostId(store);
  if (hostId === undefined) return undefined;
  const hosts = (await cluster.list(HOSTS_PREFIX)).map((e) => parseHostRecord(e.value)).filter((h): h is HostRecord => h !== undefined);
  return splitUnderlay(hosts, hostId);
}

/** The VXLAN source filter from the registered hosts: this host's underlay address, and the
 * others' (sorted, once each). The agent computes it from the hosts it watches, a rebuild from
 * the cluster's listing. */
export function splitUnderlay(hosts: Iterable<Pick<HostRecord, 'hostId' | 'address'>>, hostId: string): { local: string[]; peers: string[] } {
  const all = [...hosts];
  const local = all.filter((h) => h.hostId === hostId).map((h) => h.address);
  const peers = [...new Set(all.filter((h) => h.hostId !== hostId).map((h) => h.address))].sort();
  return { local, peers };
}

/** This host's overlay id once an agent has run here. The id alone may predate any agent (IPAM
 * names this host in cluster leases): the agent's lease record is what says one has run. */
async function agentHostId(store: Store): Promise<string | undefined> {
  const hostId = await store.get(LOCAL_HOST_ID_KEY);
  if (hostId === undefined || (await store.get(LOCAL_LEASE_KEY)) === undefined) return undefined;
  return hostId;
}
