// The overlay agent: one per host, a long-running process. It
//   - registers the host (underlay address, VTEP MAC) under an etcd lease it keeps renewing, so
//     that if the host dies its registration and its endpoints expire with the lease;
//   - keeps this host's endpoints published: the driver publishes each one at attach, and the
//     agent re-publishes from the local endpoint records whenever they are missing (a new lease
//     after an outage) and withdraws those whose container is gone (releasing their addresses);
//   - watches hosts, endpoints and network definitions, and programs each local VXLAN device's
//     FDB and neighbour entries (reconcile.ts decides, this file applies), so no multicast and no
//     flooding is needed; it removes the VXLAN device and bridge of networks deleted elsewhere.
// On a restart it resumes its previous lease when that is still alive, lists the cluster and the
// kernel, and changes only what differs: running containers see nothing. When etcd is
// unreachable it keeps the kernel as it is (containers keep talking) and catches up afterwards.
import os from 'node:os';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { NetworkDef } from '../../config/networks.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { ClusterStore, RevisionedEvent } from '../store/cluster.js';
import { Rtnl } from '../netlink/rtnl.js';
import { findNetnsPath } from '../netns/find.js';
import { Transaction } from '../tx.js';
import { Ipam } from '../ipam/ipam.js';
import { allEndpoints, endpointsOf } from '../records.js';
import { sameBoot } from '../boot.js';
import { ensureHostId, routeSourceTowards, splitUnderlay, underlayLink } from '../overlay/host.js';
import { VXLAN_ALIAS_PREFIX, ensureVxlan } from '../overlay/devices.js';
import { desiredEntries, endpointValue, isEmptyPlan, planEntries, planOwnEndpoints } from '../overlay/reconcile.js';
import { bridgeOwner, foreign } from '../drivers/linux-bridge.js';
import {
  LOCAL_LEASE_KEY, OVERLAY_PREFIX, endpointKey, hostKey, parseHostRecord, parseOverlayEndpoint, parseOverlayKey, vtepMacOf, vxlanName,
  type HostRecord, type OverlayEndpoint,
} from '../overlay/keys.js';

const NETWORKS_PREFIX = 'networks/';

export interface AgentOptions {
  /** The scoped store: this host's keys locally, the cluster's in etcd. */
  store: Store;
  cluster: ClusterStore;
  /** The run directory: pinned container namespaces live in <runDir>/netns. */
  runDir: string;
  /** Underlay address; default: the source address of the route towards `etcdEndpoint`. */
  advertiseAddress?: string | undefined;
  etcdEndpoint?: string | undefined;
  ttlSeconds: number;
  resyncSeconds: number;
  log: Logger;
}

export class OverlayAgent {
  private readonly log: Logger;
  private host: Rtnl | undefined;
  private hostId = '';
  private self: HostRecord | undefined;
  private readonly hosts = new Map<string, HostRecord>();
  private readonly endpoints = new Map<string, OverlayEndpoint>();
  private readonly networks = new Map<string, NetworkDef>();
  /** Revision each map reflects, and events that arrived while a listing was in flight. */
  private readonly rev = { overlay: 0n, networks: 0n };
  private listing: { overlay: RevisionedEvent[] | undefined; networks: RevisionedEvent[] | undefined } = { overlay: undefined, networks: undefined };
  private synced = false;
  private stopWatches: (() => Promise<void>)[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private queue: Promise<void> = Promise.resolve();
  private kernelPending = false;
  private unreachableSince: number | undefined;
  private stopped = false;
  /** When each of this host's published endpoints was first seen without a local record. */
  private readonly orphanSince = new Map<string, number>();

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.log.child({ component: 'overlay-agent' });
  }

  get hostRecord(): HostRecord | undefined {
    return this.self;
  }

  /** This host's underlay address and the other registered hosts' (the VXLAN source filter). */
  underlay(): { local: string[]; peers: string[] } {
    const { peers } = splitUnderlay(this.hosts.values(), this.hostId);
    return { local: this.self ? [this.self.address] : [], peers };
  }

  async start(): Promise<void> {
    const { store, cluster } = this.opts;
    this.host = Rtnl.open();
    this.hostId = await ensureHostId(store);
    const address = this.opts.advertiseAddress ?? (await routeSourceTowards(this.opts.etcdEndpoint ?? ''));
    const underlay = await underlayLink(this.host, address);
    const leaseId = await this.acquireLease();
    this.self = {
      hostId: this.hostId,
      hostname: os.hostname(),
      address,
      vtepMac: vtepMacOf(this.hostId),
      underlay: underlay.name,
      underlayMtu: underlay.mtu,
      leaseId,
      registered: new Date().toISOString(),
    };
    await cluster.putWithLease(hostKey(this.hostId), JSON.stringify(this.self), leaseId);
    this.log.info({ hostId: this.hostId, address, underlay: underlay.name, leaseId, ttl: this.opts.ttlSeconds, cluster: cluster.name }, 'host registered');
    await this.serial(() => this.resync());
    await this.startWatches();
    this.every(Math.max(500, (this.opts.ttlSeconds * 1000) / 3), () => this.renew());
    this.every(this.opts.resyncSeconds * 1000, () => this.serial(() => this.resync()));
  }

  /** Stops watching and renewing. The lease is left to expire, not revoked: an agent restarted
   * within the TTL resumes it and the other hosts never notice. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.stopWatches.map((s) => s().catch(() => undefined)));
    this.stopWatches = [];
    await this.queue.catch(() => undefined);
    this.host?.close();
    this.log.info({ hostId: this.hostId }, 'agent stopped');
  }

  // ------------------------------------------------------------ lease

  private async acquireLease(): Promise<string> {
    const { store, cluster } = this.opts;
    const previous = await store.get(LOCAL_LEASE_KEY);
    if (previous !== undefined && (await cluster.leaseRemaining(previous).catch(() => 0)) > 1) {
      await cluster.renewLease(previous);
      this.log.info({ leaseId: previous }, 'resumed the previous lease');
      return previous;
    }
    const id = await cluster.grantLease(this.opts.ttlSeconds);
    await store.put(LOCAL_LEASE_KEY, id);
    return id;
  }

  private async renew(): Promise<void> {
    if (!this.self || this.stopped) return;
    let ttl: number;
    try {
      ttl = await this.opts.cluster.renewLease(this.self.leaseId);
    } catch (err) {
      if (this.unreachableSince === undefined) {
        this.unreachableSince = Date.now();
        this.log.warn({ err: (err as Error).message }, 'cluster unreachable: keeping the kernel state as it is');
      }
      return;
    }
    const wasDown = this.unreachableSince !== undefined;
    this.unreachableSince = undefined;
    if (ttl > 0) {
      if (wasDown) {
        this.log.info('cluster reachable again: resynchronizing');
        await this.serial(() => this.resync());
      }
      return;
    }
    // The lease expired (etcd was out of reach for longer than the TTL): register anew; the
    // resync re-publishes this host's endpoints under the new lease.
    await this.serial(async () => {
      const { store, cluster } = this.opts;
      const id = await cluster.grantLease(this.opts.ttlSeconds);
      await store.put(LOCAL_LEASE_KEY, id);
      this.self = { ...this.self!, leaseId: id, registered: new Date().toISOString() };
      await cluster.putWithLease(hostKey(this.hostId), JSON.stringify(this.self), id);
      this.log.warn({ leaseId: id }, 'lease had expired: registered again');
      await this.resync();
    });
  }

  // ------------------------------------------------------------ cluster state

  /** Lists the cluster, re-publishes this host's endpoints, reconciles the kernel. */
  private async resync(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.reload();
      await this.publishOwnEndpoints();
      await this.reconcileKernel();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'resync failed; retrying later');
    }
  }

  private async reload(): Promise<void> {
    const { cluster } = this.opts;
    this.listing = { overlay: [], networks: [] };
    try {
      const overlay = await cluster.listAt(OVERLAY_PREFIX);
      const nets = await cluster.listAt(NETWORKS_PREFIX);
      this.hosts.clear();
      this.endpoints.clear();
      for (const e of overlay.entries) this.apply({ type: 'put', key: e.key, value: e.value, revision: overlay.revision });
      this.networks.clear();
      for (const e of nets.entries) this.apply({ type: 'put', key: e.key, value: e.value, revision: nets.revision });
      this.rev.overlay = overlay.revision;
      this.rev.networks = nets.revision;
      // Events newer than the listings arrived meanwhile: they still apply.
      for (const e of this.listing.overlay ?? []) if (e.revision > this.rev.overlay) this.applyEvent('overlay', e);
      for (const e of this.listing.networks ?? []) if (e.revision > this.rev.networks) this.applyEvent('networks', e);
      this.synced = true;
    } finally {
      this.listing = { overlay: undefined, networks: undefined };
    }
  }

  private async startWatches(): Promise<void> {
    const { cluster } = this.opts;
    for (const [which, prefix] of [['overlay', OVERLAY_PREFIX], ['networks', NETWORKS_PREFIX]] as const) {
      const stop = await cluster.watchFrom(prefix, this.rev[which] + 1n, {
        onEvent: (e) => {
          if (this.stopped) return;
          this.listing[which]?.push(e);
          if (this.applyEvent(which, e)) this.scheduleKernel();
        },
        onError: (err) => {
          this.log.warn({ err: err.message, prefix }, 'watch failed: listing again');
          void this.serial(() => this.resync());
        },
      });
      this.stopWatches.push(stop);
    }
  }

  /** Applies a watch event newer than what the maps reflect; true when something changed. */
  private applyEvent(which: 'overlay' | 'networks', e: RevisionedEvent): boolean {
    if (e.revision <= this.rev[which]) return false;
    this.rev[which] = e.revision;
    return this.apply(e);
  }

  private apply(e: RevisionedEvent): boolean {
    if (e.key.startsWith(NETWORKS_PREFIX)) {
      const name = e.key.slice(NETWORKS_PREFIX.length);
      if (e.type === 'delete') return this.networks.delete(name);
      const def = safeParse<NetworkDef>(e.value);
      if (def?.driver !== 'overlay' || def.vni === undefined) return false;
      this.networks.set(name, def);
      return true;
    }
    const k = parseOverlayKey(e.key);
    if (k?.kind === 'host') {
      if (e.type === 'delete') return this.hosts.delete(k.hostId);
      const h = parseHostRecord(e.value);
      if (!h || h.hostId !== k.hostId) return false;
      this.hosts.set(k.hostId, h);
      return true;
    }
    if (k?.kind === 'endpoint') {
      if (e.type === 'delete') return this.endpoints.delete(e.key);
      const ep = parseOverlayEndpoint(e.value);
      if (!ep || ep.hostId !== k.hostId || ep.network !== k.network || ep.containerId !== k.containerId) return false;
      this.endpoints.set(e.key, ep);
      return true;
    }
    return false;
  }

  /** This host's endpoint keys against its local endpoint records (see planOwnEndpoints). */
  private async publishOwnEndpoints(): Promise<void> {
    const { store, cluster } = this.opts;
    const local: OverlayEndpoint[] = (await allEndpoints(store))
      .filter((r) => r.driver === 'overlay' && r.ipv4 !== undefined && this.networks.has(r.network))
      .map((r) => ({ containerId: r.containerId, network: r.network, hostId: this.hostId, mac: r.mac, ipv4: r.ipv4!.address, netns: r.containerNetns, aliases: r.aliases, ...(r.bootId !== undefined ? { boot: r.bootId } : {}) }));
    const published = [...this.endpoints.values()].filter((e) => e.hostId === this.hostId);
    const plan = planOwnEndpoints(local, published, (e) => this.containerAlive(e) && !this.orphanedTooLong(e));
    // Forget orphans that got their record (an attach finished) or are gone.
    const orphans = new Set(published.filter((e) => !local.some((l) => l.network === e.network && l.containerId === e.containerId)).map(orphanKey));
    for (const k of this.orphanSince.keys()) if (!orphans.has(k)) this.orphanSince.delete(k);
    for (const e of plan.put) {
      // A detach may be running: its record read above can be gone (and its endpoint withdrawn)
      // by now. Publish only while the record is there, and take our put back if it went
      // meanwhile; the detach withdraws once more after deleting it (OverlayDriver.afterRecordDeleted).
      if (!(await this.recordStands(e))) continue;
      const key = endpointKey(e.network, e.hostId, e.containerId);
      const value = endpointValue(e);
      await cluster.putWithLease(key, value, this.self!.leaseId);
      if (!(await this.recordStands(e))) {
        await cluster.deleteIf(key, value);
        continue;
      }
      this.log.info({ containerId: e.containerId, network: e.network, ipv4: e.ipv4 }, 'endpoint published');
    }
    const ipam = new Ipam(store);
    for (const e of plan.remove) {
      await cluster.deleteIf(endpointKey(e.network, e.hostId, e.containerId));
      await ipam.releaseHeld(e.network, e.ipv4, e.containerId);
      this.log.info({ containerId: e.containerId, network: e.network, ipv4: e.ipv4 }, 'withdrew the endpoint of a container that is gone');
    }
  }

  /** The local record `e` was made from is still there (same namespace and address). */
  private async recordStands(e: OverlayEndpoint): Promise<boolean> {
    return (await endpointsOf(this.opts.store, e.containerId)).some((r) => r.network === e.network && r.containerNetns === e.netns && r.ipv4?.address === e.ipv4);
  }

  /**
   * A published endpoint with no local record is an attach in progress (the driver publishes
   * before the engine saves the record: milliseconds apart) or a leftover. Its namespace identity
   * alone cannot tell: the kernel gives a freed namespace's inode to the next one. So one that
   * stays without a record for two resync periods is a leftover, whatever holds that inode now.
   */
  private orphanedTooLong(e: OverlayEndpoint): boolean {
    const k = orphanKey(e);
    const since = this.orphanSince.get(k);
    if (since === undefined) {
      this.orphanSince.set(k, Date.now());
      return false;
    }
    return Date.now() - since >= 2 * this.opts.resyncSeconds * 1000;
  }

  private containerAlive(e: OverlayEndpoint): boolean {
    // A namespace identity from another boot of this host names nothing that was attached.
    if (!sameBoot(e.boot)) return false;
    return existsSync(path.join(this.opts.runDir, 'netns', e.containerId)) || findNetnsPath(e.netns) !== undefined;
  }

  // ------------------------------------------------------------ kernel

  /** Runs a kernel pass soon; passes never overlap, and changes during one cause another. */
  private scheduleKernel(): void {
    if (this.kernelPending || !this.synced) return;
    this.kernelPending = true;
    void this.serial(async () => {
      this.kernelPending = false;
      await this.reconcileKernel().catch((err: Error) => this.log.warn({ err: err.message }, 'kernel pass failed; retrying at the next resync'));
    });
  }

  private async reconcileKernel(): Promise<void> {
    if (!this.synced || this.stopped || !this.self) return;
    const host = this.host!;
    const links = await host.listLinks();
    for (const net of this.networks.values()) {
      let dev = links.find((l) => l.name === vxlanName(net.vni!) && l.kind === 'vxlan');
      const hasLocal = [...this.endpoints.values()].some((e) => e.network === net.name && e.hostId === this.hostId);
      if (!dev && hasLocal && links.some((l) => l.name === net.bridge)) {
        // Containers here but no VXLAN device (deleted by hand, or lost): put it back.
        const underlay = await underlayLink(host, this.self.address);
        dev = await Transaction.run(this.log, (tx) =>
          ensureVxlan(net, host, { address: this.self!.address, underlayIndex: underlay.index, underlayMtu: underlay.mtu, mac: this.self!.vtepMac }, tx, this.log),
        );
      }
      if (!dev) continue;
      const desired = desiredEntries(net.name, this.hostId, this.hosts, this.endpoints.values());
      const actual = {
        fdb: (await host.listFdb(dev.index)).filter((f) => f.self && f.dst !== undefined).map((f) => ({ mac: f.mac, dst: f.dst! })),
        neigh: (await host.listNeighbours(dev.index)).filter((n) => n.permanent && n.mac !== undefined).map((n) => ({ ip: n.ip, mac: n.mac! })),
      };
      const plan = planEntries(desired, actual);
      if (isEmptyPlan(plan)) continue;
      for (const f of plan.fdbAdd) await host.addFdb({ ifindex: dev.index, mac: f.mac, dst: f.dst });
      for (const n of plan.neighAdd) await host.addNeighbour({ ifindex: dev.index, ip: n.ip, mac: n.mac, permanent: true });
      for (const n of plan.neighDel) await host.deleteNeighbour({ ifindex: dev.index, ip: n.ip });
      for (const f of plan.fdbDel) await host.deleteFdb({ ifindex: dev.index, mac: f.mac, dst: f.dst });
      this.log.info({ network: net.name, vxlan: dev.name, ...countsOf(plan) }, 'vxlan entries updated');
    }
    // VXLAN devices (and their bridges) of overlay networks deleted elsewhere.
    for (const l of links) {
      if (l.kind !== 'vxlan' || !l.alias?.startsWith(VXLAN_ALIAS_PREFIX)) continue;
      const name = l.alias.slice(VXLAN_ALIAS_PREFIX.length);
      if (this.networks.has(name)) continue;
      await host.deleteLink(l.index);
      const bridge = links.find((b) => { const o = bridgeOwner(b); return o?.network === name && !foreign(o); });
      if (bridge) await host.deleteLink(bridge.index);
      this.log.info({ network: name, vxlan: l.name, bridge: bridge?.name }, 'removed the devices of a deleted overlay network');
    }
  }

  // ------------------------------------------------------------ plumbing

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.queue.then(() => (this.stopped ? undefined : fn()));
    this.queue = next.catch((err: Error) => this.log.warn({ err: err.message }, 'agent step failed'));
    return this.queue;
  }

  private every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => void fn().catch((err: Error) => this.log.warn({ err: err.message }, 'periodic step failed')), ms);
    this.timers.push(t);
  }
}

function countsOf(p: ReturnType<typeof planEntries>): Record<string, number> {
  return { fdbAdded: p.fdbAdd.length, fdbDeleted: p.fdbDel.length, neighAdded: p.neighAdd.length, neighDeleted: p.neighDel.length };
}

function safeParse<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

function orphanKey(e: OverlayEndpoint): string {
  return `${e.network}/${e.containerId}/${e.netns}`;
}
