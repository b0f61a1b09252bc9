// Who holds an address lease: the value of an ipam/<network>/<address> key. A container id alone
// is not an identity: ids are unique per host, not per cluster, and a container id is reused by
// the next container of that name (and by the same container after a reboot). So a lease names
//   container  the container id
//   host       the overlay host id (agent/host-id) when the lease lives in the cluster store;
//              absent in the local store, whose leases are this host's by definition
//   boot       the boot it was taken in (runtime/boot.ts): a lease of this host from another boot
//              describes nothing live
//   instance   random, new at every allocation: the value is unique to the one attach that wrote
//              it, so a release compares-and-deletes exactly its own lease, and a write whose
//              answer was lost can recognise its own value (store/etcd.ts)
// encoded as JSON. Older versions wrote the bare container id; such values are still read (the
// upgrade path), see decodeHolder and judgeHolder.
import { randomBytesSync } from '../hash.js';
import { isContainerId } from '../../config/ids.js';

export interface LeaseHolder {
  container: string;
  host?: string | undefined;
  boot?: string | undefined;
  instance?: string | undefined;
}

export function newInstance(): string {
  return randomBytesSync(6).toString('hex');
}

export function encodeHolder(h: LeaseHolder): string {
  return JSON.stringify({ container: h.container, ...(h.host !== undefined ? { host: h.host } : {}), ...(h.boot !== undefined ? { boot: h.boot } : {}), ...(h.instance !== undefined ? { instance: h.instance } : {}) });
}

/**
 * The holder a lease value names. A bare container id (a lease written before holders were
 * recorded: container ids never start with '{') is that container with no host, boot or
 * instance; see judgeHolder for what that means.
 */
export function decodeHolder(value: string): LeaseHolder {
  if (value.startsWith('{')) {
    try {
      const v = JSON.parse(value) as Record<string, unknown>;
      if (typeof v.container === 'string') {
        const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
        return { container: v.container, host: str(v.host), boot: str(v.boot), instance: str(v.instance) };
      }
    } catch {
      // not ours: fall through to the bare form
    }
  }
  return { container: value };
}

/**
 * True when `h` is a lease of this host. In the local store every lease is. In the cluster a
 * lease names its host; an old bare value names none, and is treated as held by an unknown
 * host: never taken over and never collected here, because an upgraded cluster may have that
 * container id running on any host with that address (refusing an --ip is recoverable, a
 * duplicate address is not). Such a lease is still released by the container whose endpoint
 * record says it took that address (the record is of the same age and names the bare value).
 */
export function isThisHost(h: LeaseHolder, self: { cluster: boolean; hostId?: string | undefined }): boolean {
  if (!self.cluster) return h.host === undefined || h.host === self.hostId;
  return h.host !== undefined && h.host === self.hostId;
}

/**
 * What an attach asking as `me` may do with an address `current` holds:
 *   'held'     someone else's: refuse (another host, or another live container of this host)
 *   'takeover' stale or ours: a lease of this host from another boot, or of this very container
 *              id on this host (a retried attach, as before holders were recorded), or a torn
 *              value naming no container. The caller
 *              replaces it by compare-and-delete of the exact value, then create.
 */
export function judgeHolder(current: LeaseHolder, me: LeaseHolder, self: { cluster: boolean; hostId?: string | undefined }): 'held' | 'takeover' {
  // An unreadable value (a local lease torn by a power loss: leases are volatile keys) names no
  // container, so no one holds it.
  if (!isContainerId(current.container)) return 'takeover';
  if (!isThisHost(current, self)) return 'held';
  if (current.boot !== undefined && me.boot !== undefined && current.boot !== me.boot) return 'takeover';
  return current.container === me.container ? 'takeover' : 'held';
}

/** "container c1 on host 0a1b2c3d4e5f": what a refusal names. */
export function describeHolder(h: LeaseHolder, cluster: boolean): string {
  if (!cluster) return `container ${h.container}`;
  return `container ${h.container} on ${h.host !== undefined ? `host ${h.host}` : 'an unknown host (a lease from before holders were recorded)'}`;
}
