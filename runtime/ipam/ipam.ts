// Address leases over the Store. A lease is one key, created with createIfAbsent, so two
// allocators (threads, processes, or hosts on etcd) can never hand out the same address, and no
// lock is held. Key layout (every segment is store-safe; see keyLayout below):
//
//   ipam/<network>/<address>                 lease; value: its holder (ipam/holder.ts: container,
//                                            host in the cluster, boot, a per-allocation instance)
//   ipam/<network>/_last.<netaddr>_<prefix>  hint: the last address handed out in that subnet
//
// The hint makes the next allocation O(1) in a sparse pool: the first candidate after it is
// normally free. It is best-effort: written with put after a successful create, it may lag or
// go backwards under concurrency, which only costs a few extra attempts, never correctness.
// When a walk keeps hitting taken addresses (a dense pool), the allocator lists the network's
// leases once and skips those in memory, so exhausting a /16 is one listing, not 65k creates.
import { ConflictError, UserError } from '../../config/errors.js';
import { checkContainerId, checkNetworkName, isContainerId } from '../../config/ids.js';
import type { Store } from '../store/store.js';
import { clusterOf } from '../store/scoped.js';
import { LOCAL_HOST_ID_KEY } from '../overlay/keys.js';
import { bootId } from '../boot.js';
import { decodeHolder, describeHolder, encodeHolder, isThisHost, judgeHolder, newInstance, type LeaseHolder } from './holder.js';
import { type Family, type Subnet, canonicalAddress, formatAddress, parseAddress } from '../../config/address.js';
import { type Pool, type PoolSpec, checkStaticAddress, nextCandidates, parsePool } from './allocator.js';
import { oneAtATime } from '../one-at-a-time.js';

/** One address family of a network: a dual-stack network calls allocate once per family. */
export interface IpamNetwork extends PoolSpec {
  name: string;
}

export interface AllocateOptions {
  /** A specific address instead of the next free one. */
  staticIp?: string | undefined;
}

export interface Allocation {
  ip: string;
  prefixLength: number;
  gateway: string;
  family: Family;
  /** Canonical CIDR of the subnet, e.g. "10.88.0.0/16". */
  subnet: string;
  /** The lease's exact value (its holder): what release compares before deleting. */
  lease: string;
}

export interface Lease {
  ip: string;
  containerId: string;
  /** The host holding it, for leases in the cluster store. */
  host?: string | undefined;
}

export interface IpamOptions {
  /** Consecutive taken candidates after which the walk lists the leases once (default 16). */
  denseAfter?: number;
}

export const keyLayout = {
  /** Prefix of a network's leases and hints. */
  network: (net: string): string => `ipam/${net}/`,
  lease: (net: string, ip: string): string => `ipam/${net}/${ip}`,
  /** '_' cannot start an address, so a hint never collides with a lease. */
  hint: (net: string, subnet: Subnet): string => `ipam/${net}/_last.${subnet.cidr.replace('/', '_')}`,
};

export class Ipam {
  private readonly denseAfter: number;
  /** Leases live in the cluster store (etcd): holders name their host. */
  private readonly cluster: boolean;
  private hostId: string | undefined;

  constructor(private readonly store: Store, opts: IpamOptions = {}) {
    this.denseAfter = opts.denseAfter ?? 16;
    this.cluster = clusterOf(store) !== undefined;
  }

  /** Who this host is, as lease holders name it: only leases in the cluster need it. The id is
   * the overlay agent's (created here if no agent has run yet), kept in the local store. */
  async self(): Promise<{ cluster: boolean; hostId?: string | undefined }> {
    if (!this.cluster) return { cluster: false };
    if (this.hostId === undefined) {
      let id = await this.store.get(LOCAL_HOST_ID_KEY);
      if (id === undefined) {
        await this.store.createIfAbsent(LOCAL_HOST_ID_KEY, newInstance());
        id = (await this.store.get(LOCAL_HOST_ID_KEY))!;
      }
      this.hostId = id;
    }
    return { cluster: true, hostId: this.hostId };
  }

  /** A new holder for an allocation by `containerId`: unique to this one call. */
  private async holder(containerId: string): Promise<LeaseHolder> {
    return { container: containerId, host: (await this.self()).hostId, boot: bootId(), instance: newInstance() };
  }

  /**
   * Leases an address of `net` to `containerId`: `staticIp` when given (idempotent when this
   * container already holds it), otherwise the next free one after the hint.
   */
  async allocate(net: IpamNetwork, containerId: string, opts: AllocateOptions = {}): Promise<Allocation> {
    checkNetworkName(net.name);
    checkContainerId(containerId);
    const label = `network ${net.name}`;
    const pool = parsePool(net, label);
    const holder = await this.holder(containerId);
    const lease = encodeHolder(holder);
    const ip = opts.staticIp !== undefined
      ? await this.reserveStatic(net.name, checkStaticAddress(pool, opts.staticIp, label), holder, lease)
      : await this.allocateNext(net.name, pool, lease);
    return {
      ip,
      prefixLength: pool.subnet.prefixLength,
      gateway: formatAddress({ family: pool.subnet.family, value: pool.gateway }),
      family: pool.subnet.family,
      subnet: pool.subnet.cidr,
      lease,
    };
  }

  /**
   * Frees `ip` if this lease is still the one `lease` (an Allocation's value) names: compare and
   * delete, so a release can never free an address someone else holds now. Endpoint records from
   * before holders were recorded have no value: the bare container id is what those leases hold.
   * True when this call freed it. Idempotent.
   */
  async release(netName: string, ip: string, containerId: string, lease?: string): Promise<boolean> {
    checkNetworkName(netName);
    return this.store.deleteIf(keyLayout.lease(netName, canonicalAddress(ip)), lease ?? containerId);
  }

  /** True when `ip` is leased to another holder than `lease` (release's arguments): a late detach
   * of a record whose address was handed on since must leave the new holder's conntrack flows. */
  async leasedToAnother(netName: string, ip: string, containerId: string, lease?: string): Promise<boolean> {
    checkNetworkName(netName);
    const value = await this.store.get(keyLayout.lease(netName, canonicalAddress(ip)));
    return value !== undefined && value !== (lease ?? containerId);
  }

  /** Frees `ip` if a container `containerId` of this host holds it, whatever attach took it (the
   * overlay agent withdrawing a container that is gone). */
  async releaseHeld(netName: string, ip: string, containerId: string): Promise<boolean> {
    checkNetworkName(netName);
    const key = keyLayout.lease(netName, canonicalAddress(ip));
    const raw = await this.store.get(key);
    if (raw === undefined) return false;
    const h = decodeHolder(raw);
    // A bare value names no host: the agent only asks for containers whose endpoint this host
    // published with this address, which is the record's say-so (see holder.ts isThisHost).
    if (h.container !== containerId || (h.host !== undefined && !isThisHost(h, await this.self()))) return false;
    return this.store.deleteIf(key, raw);
  }

  /** Frees every lease a container `containerId` of this host holds on any network (gc, and
   * detach without a record). */
  async releaseAll(containerId: string): Promise<{ network: string; ip: string }[]> {
    const self = await this.self();
    const mine = (await this.store.list('ipam/')).flatMap((e) => {
      const lease = parseLeaseKey(e.key);
      const h = lease && decodeHolder(e.value);
      return lease && h && h.container === containerId && isThisHost(h, self) ? [{ ...lease, key: e.key, value: e.value }] : [];
    });
    const freed = await Promise.all(mine.map(async (l) => ((await this.store.deleteIf(l.key, l.value)) ? [{ network: l.network, ip: l.ip }] : [])));
    return freed.flat();
  }

  /** The leases of a network (both families), in address order. */
  async leases(netName: string): Promise<Lease[]> {
    checkNetworkName(netName);
    const out: (Lease & { order: [Family, bigint] })[] = [];
    for (const e of await this.store.list(keyLayout.network(netName))) {
      const lease = parseLeaseKey(e.key);
      if (!lease || lease.network !== netName) continue;
      const a = parseAddress(lease.ip);
      const h = decodeHolder(e.value);
      out.push({ ip: lease.ip, containerId: h.container, ...(h.host !== undefined ? { host: h.host } : {}), order: [a.family, a.value] });
    }
    out.sort((x, y) => x.order[0] - y.order[0] || (x.order[1] < y.order[1] ? -1 : x.order[1] > y.order[1] ? 1 : 0));
    return out.map(({ order: _o, ...l }) => l);
  }

  /**
   * Takes `ip` for `me`. A lease already there is refused with one line naming its holder,
   * unless judgeHolder says it is stale or this container's own (another boot of this host, a
   * retried attach): then it is replaced by compare-and-delete of its exact value and a create,
   * so two attaches racing for a stale lease still end with one winner.
   */
  private async reserveStatic(net: string, ip: string, me: LeaseHolder, lease: string): Promise<string> {
    const key = keyLayout.lease(net, ip);
    // A few rounds: a holder may release between our failed create and our read.
    for (let round = 0; round < 3; round++) {
      if (await this.store.createIfAbsent(key, lease)) return ip;
      const raw = await this.store.get(key);
      if (raw === undefined) continue;
      const current = decodeHolder(raw);
      if (judgeHolder(current, me, await this.self()) === 'held') {
        throw new ConflictError(`address ${ip} is already in use by ${describeHolder(current, this.cluster)} on network ${net}`);
      }
      // A torn value (a power loss; or a truncated file under a live container) names no one,
      // but a live endpoint record naming the address does: taken over, the address would be on
      // the network twice. Read only here, where a lease is unreadable.
      if (!isContainerId(current.container)) {
        const holder = await liveRecordOf(this.store, net, ip);
        if (holder !== undefined) throw new ConflictError(`address ${ip} is already in use by container ${holder} on network ${net} (its lease is unreadable)`);
      }
      await this.store.deleteIf(key, raw);
    }
    throw new ConflictError(`address ${ip} on network ${net} is being allocated and released concurrently; try again`);
  }

  /**
   * The walk from the hint. Allocations in one process go through it one at a time per subnet:
   * started together (50 attaches at once), they would all read the same hint and walk over each
   * other's fresh leases, O(n²) creates; in turn, each starts after the address the previous one
   * took. Still correct without it, and across processes, where leases decide (see the header).
   */
  private allocateNext(net: string, pool: Pool, lease: string): Promise<string> {
    const hintKey = keyLayout.hint(net, pool.subnet);
    return oneAtATime(hintKey, () => this.walkFromHint(net, pool, lease, hintKey));
  }

  private async walkFromHint(net: string, pool: Pool, lease: string, hintKey: string): Promise<string> {
    const after = await this.store.get(hintKey).catch(() => undefined);
    let taken: Set<string> | undefined;
    let misses = 0;
    for (const ip of nextCandidates(pool, after)) {
      if (taken?.has(ip)) continue;
      if (await this.store.createIfAbsent(keyLayout.lease(net, ip), lease)) {
        // Best-effort (see the header), so written in place where the store can: a torn hint only
        // starts the next walk elsewhere, and the leases stay the only authority.
        await (this.store.overwrite ? this.store.overwrite(hintKey, ip) : this.store.put(hintKey, ip)).catch(() => {});
        return ip;
      }
      if (taken === undefined && ++misses >= this.denseAfter) {
        // Names as written by this class are canonical, so no parsing is needed to compare.
        const prefix = keyLayout.network(net);
        taken = new Set((await this.store.list(prefix)).map((e) => e.key.slice(prefix.length)));
      }
    }
    throw new UserError(`network ${net} has no free addresses in ${pool.subnet.cidr}`);
  }
}

/** The container whose live endpoint record on `net` has address `ip`, if any. */
async function liveRecordOf(store: Store, net: string, ip: string): Promise<string | undefined> {
  const [{ allEndpoints }, { endpointAlive }] = await Promise.all([import('../records.js'), import('../liveness.js')]);
  const at = canonicalAddress(ip);
  for (const e of await allEndpoints(store)) {
    if (e.network !== net) continue;
    if ([e.ipv4, e.ipv6].some((a) => a !== undefined && canonicalAddress(a.address) === at) && endpointAlive(e)) return e.containerId;
  }
  return undefined;
}

/** "ipam/web/10.88.0.5" → {network: "web", ip: "10.88.0.5"}; hints and strays → undefined. */
export function parseLeaseKey(key: string): { network: string; ip: string } | undefined {
  const parts = key.split('/');
  if (parts.length !== 3 || parts[0] !== 'ipam') return undefined;
  const [, network, ip] = parts as [string, string, string];
  try {
    return canonicalAddress(ip) === ip ? { network, ip } : undefined;
  } catch {
    return undefined;
  }
}
