// Address leases over the Store. A lease is one key, created with createIfAbsent, so two
// allocators (threads, processes, or hosts on etcd) can never hand out the same address, and no
// lock is held. Key layout (every segment is store-safe; see keyLayout below):
//
//   ipam/<network>/<address>                 lease; value: the container id
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
import { type Family, type Subnet, canonicalAddress, formatAddress, parseAddress } from '../../config/address.js';
import { type Pool, type PoolSpec, checkStaticAddress, nextCandidates, parsePool } from './allocator.js';

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
}

export interface Lease {
  ip: string;
  containerId: string;
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

  constructor(private readonly store: Store, opts: IpamOptions = {}) {
    this.denseAfter = opts.denseAfter ?? 16;
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
    const ip = opts.staticIp !== undefined
      ? await this.reserveStatic(net.name, checkStaticAddress(pool, opts.staticIp, label), containerId)
      : await this.allocateNext(net.name, pool, containerId);
    return {
      ip,
      prefixLength: pool.subnet.prefixLength,
      gateway: formatAddress({ family: pool.subnet.family, value: pool.gateway }),
      family: pool.subnet.family,
      subnet: pool.subnet.cidr,
    };
  }

  /** Frees `ip` if `containerId` holds it; true when this call freed it. Idempotent. */
  async release(netName: string, ip: string, containerId: string): Promise<boolean> {
    checkNetworkName(netName);
    return this.store.deleteIf(keyLayout.lease(netName, canonicalAddress(ip)), containerId);
  }

  /** Frees every lease held by `containerId` on any network (gc, and detach without a record). */
  async releaseAll(containerId: string): Promise<{ network: string; ip: string }[]> {
    const mine = (await this.store.list('ipam/')).flatMap((e) => {
      const lease = parseLeaseKey(e.key);
      return lease && e.value === containerId ? [{ ...lease, key: e.key }] : [];
    });
    const freed = await Promise.all(mine.map(async (l) => ((await this.store.deleteIf(l.key, containerId)) ? [{ network: l.network, ip: l.ip }] : [])));
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
      out.push({ ip: lease.ip, containerId: e.value, order: [a.family, a.value] });
    }
    out.sort((x, y) => x.order[0] - y.order[0] || (x.order[1] < y.order[1] ? -1 : x.order[1] > y.order[1] ? 1 : 0));
    return out.map(({ ip, containerId }) => ({ ip, containerId }));
  }

  private async reserveStatic(net: string, ip: string, containerId: string): Promise<string> {
    const key = keyLayout.lease(net, ip);
    // Two rounds: a holder may release between our failed create and our read.
    for (let round = 0; round < 3; round++) {
      if (await this.store.createIfAbsent(key, containerId)) return ip;
      const owner = await this.store.get(key);
      if (owner === containerId) return ip; // a retried attach: the address is already ours
      if (owner !== undefined && !isContainerId(owner)) {
        // An unreadable lease (torn by a power loss: leases are volatile keys) names no container.
        await this.store.deleteIf(key, owner);
        continue;
      }
      if (owner !== undefined) throw new ConflictError(`address ${ip} is already in use by container ${owner} on network ${net}`);
    }
    throw new ConflictError(`address ${ip} on network ${net} is being allocated and released concurrently; try again`);
  }

  private async allocateNext(net: string, pool: Pool, containerId: string): Promise<string> {
    const hintKey = keyLayout.hint(net, pool.subnet);
    const after = await this.store.get(hintKey).catch(() => undefined);
    let taken: Set<string> | undefined;
    let misses = 0;
    for (const ip of nextCandidates(pool, after)) {
      if (taken?.has(ip)) continue;
      if (await this.store.createIfAbsent(keyLayout.lease(net, ip), containerId)) {
        await this.store.put(hintKey, ip).catch(() => {}); // best-effort, see the header
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
