// Host port reservations, one Store key per (protocol, port, address):
//   hostports/<proto>/<port>/<hostIp | any>   value: the container id
// Which reservations conflict is config/address.ts's wildcard rule: "any" conflicts with every
// address on that port, 0.0.0.0 with every IPv4 one and :: with every IPv6 one.
//
// Decided atomically in the Store without a lock: a reservation is CREATED first
// (createIfAbsent) and only then checked against the other keys of the port. Of two conflicting
// reservations the one created second always sees the first, so both can never hold the port;
// when both see each other (a true race) both back off, and a retry after a random pause lets
// one of them win.
import { hostIpsOverlap } from '../config/address.js';
import { ConflictError } from '../config/errors.js';
import { isContainerId } from '../config/ids.js';
import type { PortMapping } from '../config/ports.js';
import type { Store, StoreEntry } from './store/store.js';

const ANY = 'any';
const prefix = (p: PortMapping) => `hostports/${p.protocol}/${p.hostPort}/`;
const keyOf = (p: PortMapping) => `${prefix(p)}${p.hostIp ?? ANY}`;
/** The Store key of `p`'s reservation. */
export const portKey = keyOf;
const hostIpOf = (key: string): string | undefined => {
  const last = key.slice(key.lastIndexOf('/') + 1);
  return last === ANY ? undefined : last;
};

/**
 * The reservations of `p`'s port. One whose value is not a container id was torn by a power loss
 * (host ports are volatile keys: store/open.ts) and names no container: it is deleted, not obeyed.
 */
async function listPort(store: Store, p: PortMapping): Promise<StoreEntry[]> {
  const taken = await store.list(prefix(p));
  const torn = taken.filter((e) => !isContainerId(e.value));
  if (torn.length === 0) return taken;
  for (const e of torn) await store.deleteIf(e.key, e.value);
  return store.list(prefix(p));
}

/** Another container's reservation that overlaps `p` (its own key aside). */
function clashIn(taken: StoreEntry[], p: PortMapping, containerId: string): StoreEntry | undefined {
  return taken.find((e) => e.key !== keyOf(p) && e.value !== containerId && hostIpsOverlap(p.hostIp, hostIpOf(e.key)));
}

function conflict(p: PortMapping, owner: string): ConflictError {
  return new ConflictError(`host port ${p.hostIp ? `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:` : ''}${p.hostPort}/${p.protocol} is already published by container ${owner}`);
}

export async function reservePort(store: Store, p: PortMapping, containerId: string): Promise<void> {
  const key = keyOf(p);
  for (let attempt = 1; ; attempt++) {
    const before = clashIn(await listPort(store, p), p, containerId);
    if (before) throw conflict(p, before.value);
    if (!(await store.createIfAbsent(key, containerId))) {
      const owner = await store.get(key);
      if (owner === containerId) return;
      throw conflict(p, owner ?? 'another container');
    }
    const after = clashIn(await store.list(prefix(p)), p, containerId);
    if (!after) return;
    await store.deleteIf(key, containerId);
    if (attempt >= 3) throw conflict(p, after.value);
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 40));
  }
}

export async function releasePort(store: Store, p: PortMapping, containerId: string): Promise<void> {
  await store.deleteIf(keyOf(p), containerId);
}

/** True while `containerId` holds the reservation of `p`. */
export async function holdsPort(store: Store, p: PortMapping, containerId: string): Promise<boolean> {
  return (await store.get(keyOf(p))) === containerId;
}

/** The containers holding reservations that clash with `p` (any address on its port, or its own). */
export async function portHolders(store: Store, p: PortMapping): Promise<string[]> {
  const taken = await store.list(prefix(p));
  return [...new Set(taken.filter((e) => p.hostIp === undefined || e.key.endsWith(`/${ANY}`) || e.key === keyOf(p)).map((e) => e.value))];
}
