// Forgetting a detached endpoint's conntrack flows when its address is next handed out, instead of
// at every detach. What the flush protects is the address's next holder: a flow that names the
// old container's address (its own connections, DNATed flows to its published ports) must not
// reach a new container that gets the same address. Until then the old flows reach nobody: the
// old veth is off its bridge or gone, so the address answers no one.
//
// The flush is a walk of the machine-wide conntrack hash (runtime/conntrack.ts: 23-36 ms here,
// whatever the table holds). Done at detach, every container paid it; done at reuse, only an
// allocation that gets a recently used address pays it, and one walk then serves every address
// waiting on that network. The allocator hands addresses out in order after its hint, so a freed
// address comes back only when the pool wraps around or when it is asked for by --ip.
//
//   ipam/<network>/_flush.<address>   value: {"netns": host netns identity, "boot": boot id, "tag"}
//
// A detach writes the mark BEFORE it releases the lease, so whoever leases the address next finds
// it; the allocation that finds it flushes before anything is wired, then deletes the marks it
// served. A mark from another boot needs no flush (conntrack did not survive the reboot). '_' keeps
// marks out of lease listings and gc's lease sweep (ipam.ts, parseLeaseKey), like the hints.
//
// Only with the local store: with a cluster store, leases are shared by every host, and the host
// that leases the address next may not be the one holding the flows, so detach flushes at once.
import { canonicalAddress } from '../config/address.js';
import type { Logger } from './log.js';
import type { Store } from './store/store.js';
import { clusterOf } from './store/scoped.js';
import { bootId, sameBoot } from './boot.js';
import { forgetFlows } from './conntrack.js';
import { findNetnsPath } from './netns/find.js';
import { THREAD_NETNS } from './netns/netns.js';
import { oneAtATime } from './one-at-a-time.js';

const MARK = '_flush.';
const markKey = (network: string, ip: string): string => `ipam/${network}/${MARK}${canonicalAddress(ip)}`;

interface Mark {
  netns: string;
  boot: string;
  /** Unique per detach: a flush deletes exactly the marks it read, never a newer one. */
  tag: string;
}

/** True when flushes can wait for the address's next allocation (a local store). */
export function flushAtReuse(store: Store): boolean {
  return clusterOf(store) === undefined;
}

/** At detach, before the leases are released: `addresses` had flows in the namespace `hostNetns`. */
export async function markForFlush(store: Store, network: string, addresses: string[], hostNetns: string): Promise<void> {
  const value = JSON.stringify({ netns: hostNetns, boot: bootId(), tag: `${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2, 8)}` } satisfies Mark);
  for (const ip of addresses) await store.put(markKey(network, ip), value);
}

/**
 * At allocation, with the lease of `ip` just taken: when `ip` waits for a flush, forget the flows
 * of every address of `network` waiting in the same namespace (one walk), then drop their marks.
 */
export async function flushIfMarked(store: Store, network: string, ip: string, log: Logger): Promise<void> {
  if ((await store.get(markKey(network, ip))) === undefined) return;
  // Attaches of one process reusing addresses together (a burst after a burst) would each list
  // the whole network: one at a time, and one whose mark is gone by its turn was served by the
  // walk before it (a mark is deleted only after its flows were forgotten).
  await oneAtATime(`flush:${network}`, async () => {
    if ((await store.get(markKey(network, ip))) === undefined) return;
    await flushMarks(store, network, log);
  });
}

/** Forgets the flows of every address of `network` waiting for a flush (also: network rm). */
export async function flushMarks(store: Store, network: string, log: Logger): Promise<void> {
  const prefix = `ipam/${network}/`;
  const byNetns = new Map<string, { addresses: string[]; marks: { key: string; value: string }[] }>();
  const stale: { key: string; value: string }[] = [];
  for (const e of await store.list(prefix)) {
    const leaf = e.key.slice(prefix.length);
    if (!leaf.startsWith(MARK)) continue;
    const mark = parseMark(e.value);
    // From another boot, or unreadable (a volatile key torn by a power loss): conntrack is empty.
    if (!mark || !sameBoot(mark.boot)) {
      stale.push(e);
      continue;
    }
    const group = byNetns.get(mark.netns) ?? { addresses: [], marks: [] };
    group.addresses.push(leaf.slice(MARK.length));
    group.marks.push(e);
    byNetns.set(mark.netns, group);
  }
  for (const [netns, group] of byNetns) {
    // A namespace with no process left has no conntrack table left either.
    const path = findNetnsPath(netns);
    if (path !== undefined) await forgetFlows(group.addresses, log, path === THREAD_NETNS ? undefined : path);
    stale.push(...group.marks);
  }
  // deleteIf with the value read: a mark written again meanwhile (another detach) stays.
  for (const m of stale) await store.deleteIf(m.key, m.value);
}

function parseMark(value: string): Mark | undefined {
  try {
    const m = JSON.parse(value) as Partial<Mark> | null;
    return m !== null && typeof m === 'object' && typeof m.netns === 'string' && typeof m.boot === 'string' ? (m as Mark) : undefined;
  } catch {
    return undefined;
  }
}
