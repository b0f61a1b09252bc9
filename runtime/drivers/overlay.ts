// The overlay driver: containers on different hosts share one IPv4 subnet over VXLAN. On each
// host an overlay network is a bridge (as the bridge driver makes it, with the gateway address,
// so traffic to the outside world leaves through the local host with NAT) plus a VXLAN device as
// a bridge port; each container gets a veth on that bridge, with an MTU that leaves room for the
// VXLAN header. Addresses come from IPAM over the cluster store, so no two hosts ever hand out
// the same one. Every endpoint is published in the cluster (bound to this host's agent lease);
// the agents of the other hosts program their VXLAN devices from it.
import { UserError } from '../../config/errors.js';
import type { NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { Rtnl } from '../netlink/rtnl.js';
import { netnsId } from '../netns/netns.js';
import { bootId } from '../boot.js';
import type { Transaction } from '../tx.js';
import type { EndpointRecord } from '../records.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { ClusterStore } from '../store/cluster.js';
import { clusterOf } from '../store/scoped.js';
import type { AttachContext, DetachOptions, DriverEndpoint, NetworkDriver } from './driver.js';
import { attachVeth, ensureBridge, removeOwnBridge, removeVeth } from './linux-bridge.js';
import { ensureVxlan, overlayMtu, removeVxlan } from '../overlay/devices.js';
import { requireLocalHost, underlayLink } from '../overlay/host.js';
import { endpointValue } from '../overlay/reconcile.js';
import {
  HOSTS_PREFIX, LOCAL_HOST_ID_KEY, endpointKey, hostKey, networkEndpointsPrefix, parseHostRecord, parseOverlayEndpoint,
  vxlanName, type HostRecord, type OverlayEndpoint,
} from '../overlay/keys.js';

export class OverlayDriver implements NetworkDriver {
  validate(net: NetworkDef): Issue[] {
    if (!net.subnet4) return [{ path: 'subnet', message: `overlay network ${net.name} has no IPv4 subnet` }];
    if (net.vni === undefined) return [{ path: 'vni', message: `overlay network ${net.name} has no VXLAN id` }];
    return [];
  }

  /** The bridge and its gateway address; its MTU follows its ports (the VXLAN device's). */
  async ensureNetwork(net: NetworkDef, host: Rtnl, tx: Transaction, log: Logger): Promise<void> {
    await ensureBridge(net, host, tx, log, { mtu: undefined });
  }

  async attach(ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint> {
    const { net, host, log } = ctx;
    const cluster = requireClusterOf(ctx.store, net);
    if (!ctx.ipv4) throw new UserError(`overlay network ${net.name}: no IPv4 address was allocated`);
    let self = await requireLocalHost(ctx.store!, cluster);
    const underlay = await underlayLink(host, self.address);
    const mtu = overlayMtu(net, underlay.mtu);
    await ensureVxlan(net, host, { address: self.address, underlayIndex: underlay.index, underlayMtu: underlay.mtu, mac: self.vtepMac }, tx, log);
    // The container's MAC follows from its IPv4 address (attachVeth: containerMac), Docker's
    // scheme: what the other hosts' static neighbour entries rely on being unique.
    const ep = await attachVeth(ctx, tx, { mtu });

    const published: OverlayEndpoint = {
      containerId: ctx.containerId,
      network: net.name,
      hostId: self.hostId,
      mac: ep.mac,
      ipv4: ctx.ipv4.address,
      netns: netnsId(ctx.containerNetnsPath),
      ...(ctx.aliases && ctx.aliases.length > 0 ? { aliases: ctx.aliases } : {}),
      boot: bootId(),
    };
    const key = endpointKey(net.name, self.hostId, ctx.containerId);
    await tx.step(
      `publish the endpoint in ${cluster.name}`,
      async () => {
        try {
          await cluster.putWithLease(key, endpointValue(published), self.leaseId);
        } catch (err) {
          // The agent renewed its registration under a new lease since we read it: once more.
          if (!/lease not found/i.test((err as Error).message)) throw err;
          self = await requireLocalHost(ctx.store!, cluster);
          await cluster.putWithLease(key, endpointValue(published), self.leaseId);
        }
      },
      async () => void (await cluster.deleteIf(key)),
    );
    return ep;
  }

  async detach(rec: EndpointRecord, host: Rtnl | undefined, store?: Store, opts: DetachOptions = {}): Promise<void> {
    // Withdraw first, so other hosts stop sending to the container before its address is reused.
    await this.withdraw(rec, store, opts);
    if (host) await removeVeth(host, rec, opts);
  }

  /**
   * The agent re-publishes this host's endpoints from their local records (a resync): one that
   * read this record before the detach deleted it can put the endpoint back after the withdrawal
   * above. The agent checks the record again after such a put; this second withdrawal, after the
   * record is gone, closes the other side of that window.
   */
  async afterRecordDeleted(rec: EndpointRecord, store: Store): Promise<void> {
    await this.withdraw(rec, store, {});
  }

  private async withdraw(rec: EndpointRecord, store: Store | undefined, opts: DetachOptions): Promise<void> {
    const cluster = store && clusterOf(store);
    const hostId = store && (await store.get(LOCAL_HOST_ID_KEY));
    if (cluster && hostId) {
      // The key is (network, host, container id): a newer container with the same id may have
      // published under it since. Withdraw only what this record published.
      const key = endpointKey(rec.network, hostId, rec.containerId);
      const raw = await cluster.get(key);
      const found = parseOverlayEndpoint(raw);
      if (raw !== undefined && (!found || publishedBy(found, rec))) await cluster.deleteIf(key, raw);
      else if (found) opts.log?.warn({ containerId: rec.containerId, network: rec.network, found: { ipv4: found.ipv4, mac: found.mac, netns: found.netns } }, 'the cluster endpoint under this key is a newer one: left alone');
    }
  }

  async removeNetwork(net: NetworkDef, host: Rtnl): Promise<void> {
    await removeVxlan(net, host);
    await removeOwnBridge(net, host);
  }

  async remoteEndpoints(net: NetworkDef, store: Store): Promise<string[]> {
    const cluster = requireClusterOf(store, net);
    const self = await store.get(LOCAL_HOST_ID_KEY);
    const hosts = await this.hosts(cluster);
    return (await this.endpoints(cluster, net))
      .filter((e) => e.hostId !== self)
      .map((e) => `${e.containerId} on host ${hosts.get(e.hostId)?.hostname ?? ''}${hosts.has(e.hostId) ? ` (${e.hostId})` : e.hostId}`);
  }

  /** Every registered host and the network's endpoints on each. */
  async inspect(net: NetworkDef, store: Store): Promise<Record<string, unknown>> {
    const cluster = requireClusterOf(store, net);
    const self = await store.get(LOCAL_HOST_ID_KEY);
    const hosts = await this.hosts(cluster);
    const endpoints = await this.endpoints(cluster, net);
    const ids = [...new Set([...hosts.keys(), ...endpoints.map((e) => e.hostId)])].sort();
    return {
      vxlan: net.vni === undefined ? undefined : vxlanName(net.vni),
      hosts: ids.map((id) => {
        const h = hosts.get(id);
        return {
          hostId: id,
          ...(h ? { hostname: h.hostname, address: h.address, vtepMac: h.vtepMac } : {}),
          registered: h !== undefined,
          local: id === self,
          endpoints: endpoints.filter((e) => e.hostId === id).map((e) => ({ containerId: e.containerId, ipv4: e.ipv4, mac: e.mac })),
        };
      }),
    };
  }

  private async hosts(cluster: ClusterStore): Promise<Map<string, HostRecord>> {
    const out = new Map<string, HostRecord>();
    for (const e of await cluster.list(HOSTS_PREFIX)) {
      const h = parseHostRecord(e.value);
      if (h && hostKey(h.hostId) === e.key) out.set(h.hostId, h);
    }
    return out;
  }

  private async endpoints(cluster: ClusterStore, net: NetworkDef): Promise<OverlayEndpoint[]> {
    return (await cluster.list(networkEndpointsPrefix(net.name))).flatMap((e) => {
      const ep = parseOverlayEndpoint(e.value);
      return ep ? [ep] : [];
    });
  }
}

/** The published endpoint is the one this record's attach published (same address, MAC, namespace). */
export function publishedBy(ep: OverlayEndpoint, rec: Pick<EndpointRecord, 'ipv4' | 'mac' | 'containerNetns' | 'bootId'>): boolean {
  const sameBootAs = ep.boot === undefined || rec.bootId === undefined || ep.boot === rec.bootId;
  return ep.ipv4 === rec.ipv4?.address && ep.mac === rec.mac && ep.netns === rec.containerNetns && sameBootAs;
}

function requireClusterOf(store: Store | undefined, net: NetworkDef): ClusterStore {
  const cluster = store && clusterOf(store);
  if (!cluster) throw new UserError(`overlay network ${net.name} needs the cluster store: pass --store etcd://HOST:PORT (or set TSRUN_STORE)`);
  return cluster;
}
