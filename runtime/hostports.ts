// Host port reservations, one Store key per (protocol, port, address), created with
// createIfAbsent so two containers racing for the same host port cannot both get it:
//   hostports/<proto>/<port>/<hostIp | any>   value: the container id
// Which reservations conflict is config/address.ts's wildcard rule: "any" conflicts with every
// address on that port, 0.0.0.0 with every IPv4 one and :: with every IPv6 one.
import { hostIpsOverlap } from '../config/address.js';
import { ConflictError } from '../config/errors.js';
import type { PortMapping } from '../config/ports.js';
import type { Store } from './store/store.js';

const ANY = 'any';
const prefix = (p: PortMapping) => `hostports/${p.protocol}/${p.hostPort}/`;
const keyOf = (p: PortMapping) => `${prefix(p)}${p.hostIp ?? ANY}`;
const hostIpOf = (key: string): string | undefined => {
  const last = key.slice(key.lastIndexOf('/') + 1);
  return last === ANY ? undefined : last;
};

export async function reservePort(store: Store, p: PortMapping, containerId: string): Promise<void> {
  const taken = await store.list(prefix(p));
  const clash = taken.find((e) => hostIpsOverlap(p.hostIp, hostIpOf(e.key)));
  if (clash || !(await store.createIfAbsent(keyOf(p), containerId))) {
    const owner = clash?.value ?? (await store.get(keyOf(p))) ?? 'another container';
    throw new ConflictError(`host port ${p.hostIp ? `${p.hostIp}:` : ''}${p.hostPort}/${p.protocol} is already published by container ${owner}`);
  }
}

export async function releasePort(store: Store, p: PortMapping, containerId: string): Promise<void> {
  await store.deleteIf(keyOf(p), containerId);
}

/** True while `containerId` holds the reservation of `p`. */
export async function holdsPort(store: Store, p: PortMapping, containerId: string): Promise<boolean> {
  return (await store.get(keyOf(p))) === containerId;
}
