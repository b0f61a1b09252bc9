// What macvlan and ipvlan share: a container interface that hangs off a host interface (the
// network's --parent) instead of a bridge, so the container sits directly on the parent's segment
// and its traffic never crosses the host's IP stack (no NAT, no published ports, no host sysctls).
//
// The interface is created under a random temporary name directly inside the container's
// namespace (IFLA_NET_NS_FD; IFLA_LINK still names the parent in the host namespace), then renamed
// there. It never exists in the host namespace, so it cannot collide with a host interface, and
// the temporary name cannot collide with an interface the container already has (the CNI plugins
// and netavark do the same, for the same reasons).
//
// Nothing of an endpoint lives on the host: when the container's namespace goes, the kernel
// deletes the interface with it. Detach still deletes it explicitly while the namespace lives, so
// the parent is free again at once (passthru admits one child) and a detach from a record means
// the same thing for every driver.
import { randomBytesSync } from '../hash.js';
import { closeSync } from 'node:fs';
import { ConflictError, NotFoundError, UserError } from '../../config/errors.js';
import { DEFAULT_MTU, type NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { Link } from '../netlink/types.js';
import { Rtnl } from '../netlink/rtnl.js';
import { errnoCode } from '../netlink/errors.js';
import { setSysctlSync } from '../netlink/sysctl.js';
import { safeId } from '../netns/find.js';
import { isAlive } from '../containers.js';
import { openNetnsFd, withNetnsSync } from '../netns/netns.js';
import type { EndpointRecord } from '../records.js';
import type { Transaction } from '../tx.js';
import { bridgeOwner } from './linux-bridge.js';
import type { AttachContext, DriverEndpoint } from './driver.js';

export type SubifKind = 'macvlan' | 'ipvlan';

export interface SubifCreate {
  name: string;
  parentIndex: number;
  nsFd: number;
  mtu?: number | undefined;
  mac?: string | undefined;
}

export interface SubifSpec {
  kind: SubifKind;
  /** Sends the create request (the driver's own link kind and mode). */
  create(host: Rtnl, o: SubifCreate): Promise<void>;
  /** Rewords a kernel refusal of the create into what the user can act on (or undefined). */
  explain?(code: string | undefined, net: NetworkDef): string | undefined;
  /** ipvlan L3/L3S: the default route points at the device itself; the parent's host routes. */
  routeViaDevice: boolean;
}

/** Static problems of a macvlan/ipvlan network definition (the engine asks before any step). */
export function validateSubifNetwork(net: NetworkDef): Issue[] {
  const issues: Issue[] = [];
  if (!net.parent) issues.push({ path: 'parent', message: `network ${net.name} has no parent interface` });
  if (!net.subnet4 && !net.subnet6) issues.push({ path: 'subnet', message: `network ${net.name} has no subnet` });
  return issues;
}

/**
 * The parent as the kernel sees it now: present, administratively up and not a tsrun bridge.
 * Checked at `network create` and again at every attach (a parent can vanish or go down later).
 */
export async function checkParent(net: NetworkDef, host: Rtnl): Promise<Link> {
  const name = net.parent;
  if (!name) throw new UserError(`network ${net.name} has no parent interface`);
  const parent = await host.getLink(name);
  if (!parent) throw new UserError(`parent interface ${name} of network ${net.name} not found`);
  const owner = bridgeOwner({ ...parent, kind: 'bridge' });
  if (owner) {
    throw new UserError(`parent interface ${name} is the bridge of tsrun network ${owner.network}${owner.own || owner.root === undefined ? '' : ` (tsrun root ${owner.root})`}: ${net.driver} needs a host interface (NIC, VLAN or bond)`);
  }
  if (!parent.up) throw new UserError(`parent interface ${name} of network ${net.name} is down: bring it up first (ip link set ${name} up)`);
  return parent;
}

/**
 * The MTU to create the child with: the network's, unless that is the default and the parent's
 * is smaller (a child cannot exceed its parent, and a 1450-byte cloud NIC should just work).
 * undefined: inherit the parent's.
 */
export function childMtu(netMtu: number, parentMtu: number, network: string): number | undefined {
  if (netMtu === parentMtu) return undefined;
  if (netMtu < parentMtu) return netMtu;
  if (netMtu === DEFAULT_MTU) return undefined;
  throw new UserError(`network ${network}: --mtu ${netMtu} exceeds the MTU ${parentMtu} of its parent`);
}

/** "tsm" / "tsi" + 8 random hex characters: unique per attach, 11 bytes. */
export function tempName(kind: SubifKind): string {
  return `ts${kind === 'macvlan' ? 'm' : 'i'}${randomBytesSync(4).toString('hex')}`;
}

export async function attachSubif(spec: SubifSpec, ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint> {
  const { net, host, container } = ctx;
  const parent = await checkParent(net, host);
  if (await container.getLink(ctx.ifname)) throw new ConflictError(`interface ${ctx.ifname} already exists in the container: choose another interface name`);
  // IPAM knows the containers, not the segment: at least never hand out the host's own address.
  const hostAddrs = new Set((await host.listAddresses(parent.index)).map((a) => a.address));
  for (const a of [ctx.ipv4, ctx.ipv6]) {
    if (a && hostAddrs.has(a.address)) throw new ConflictError(`address ${a.address} on network ${net.name} is the host's own address on ${parent.name}: pass another --ip`);
  }
  const mtu = childMtu(net.mtu, parent.mtu, net.name);
  const tmp = tempName(spec.kind);

  const index = await tx.step(
    `create ${spec.kind} ${tmp} on ${parent.name} in the container`,
    async () => {
      const fd = openNetnsFd(ctx.containerNetnsPath);
      try {
        await spec.create(host, { name: tmp, parentIndex: parent.index, nsFd: fd, mtu, mac: ctx.mac });
      } catch (err) {
        const why = spec.explain?.(errnoCode(err), net);
        throw why ? new UserError(`create ${spec.kind} on ${parent.name} for network ${net.name}: ${why}`, { cause: err }) : err;
      } finally {
        closeSync(fd);
      }
      const link = await container.getLink(tmp);
      if (!link) throw new UserError(`${spec.kind} ${tmp} did not appear in the container namespace`);
      return link.index;
    },
    // By index: it stays the same through the rename.
    async (ix) => void (await container.deleteLink(ix)),
  );
  await tx.step(`rename ${tmp} to ${ctx.ifname} in the container`, () => container.rename(index, ctx.ifname));

  await tx.step(`configure ${ctx.ifname} in the container`, async () => {
    // A gratuitous ARP when the interface comes up: the segment's caches may still map a reused
    // address to the MAC of the container that had it before (as the CNI plugins do).
    withNetnsSync(ctx.containerNetnsPath, () => {
      setSysctlSync(`net/ipv4/conf/${ctx.ifname}/arp_notify`, '1');
    });
    if (ctx.ipv4) await container.addAddress(index, `${ctx.ipv4.address}/${ctx.ipv4.prefixLength}`);
    if (ctx.ipv6) await container.addAddress(index, `${ctx.ipv6.address}/${ctx.ipv6.prefixLength}`);
    await container.setUp(index);
    await container.setUp('lo');
    if (spec.routeViaDevice) {
      if (ctx.ipv4) await container.addRoute({ dst: 'default', ifindex: index, family: 4 });
      if (ctx.ipv6) await container.addRoute({ dst: 'default', ifindex: index, family: 6 });
    } else {
      if (ctx.ipv4?.gateway) await container.addRoute({ dst: 'default', gateway: ctx.ipv4.gateway, ifindex: index });
      if (ctx.ipv6?.gateway) await container.addRoute({ dst: 'default', gateway: ctx.ipv6.gateway, ifindex: index, family: 6 });
    }
  });
  const link = await container.getLink(index);
  return { hostIfname: '', mac: link?.mac ?? '' };
}

/**
 * Deletes the container's interface if its namespace provably still exists (containerNetnsPath);
 * a namespace that is gone took the interface with it. Only a link of the recorded kind is
 * deleted: the name alone could by now belong to something else.
 */
export async function detachSubif(kind: SubifKind, rec: EndpointRecord): Promise<void> {
  const nsPath = containerNetnsPath(rec);
  if (!nsPath) return;
  let nl: Rtnl;
  try {
    nl = Rtnl.open(nsPath);
  } catch (err) {
    if (err instanceof NotFoundError) return; // the last process or pin went meanwhile
    throw err;
  }
  try {
    const link = await nl.getLink(rec.ifname);
    if (link && link.kind === kind) await nl.deleteLink(link.index);
  } finally {
    nl.close();
  }
}

/**
 * A path to the recorded container namespace that is PROVABLY that namespace, or undefined.
 * dev:inode alone proves nothing once the namespace was freed: the kernel reuses the inode, and a
 * late detach would delete a newer container's eth0. So:
 * - a record made from /proc/PID/ns/net (the hook) carries its holder (pid and start time, which
 *   never repeat): the path is used only while that very process lives and is still inside;
 * - a record of a pinned namespace (tsrun run) is used through its pin only: a bind mount keeps
 *   the namespace, and so its inode, alive while it exists.
 * Anything else is left alone: when the holder and the pin are gone, so normally is the
 * namespace, and the kernel deleted the interface with it.
 */
export function containerNetnsPath(rec: EndpointRecord, alive: (pid: number, start: string) => boolean = isAlive): string | undefined {
  if (rec.netnsHolder) {
    const { pid, start } = rec.netnsHolder;
    if (!alive(pid, start)) return undefined;
    const path = `/proc/${pid}/ns/net`;
    return safeId(path) === rec.containerNetns ? path : undefined;
  }
  if (/^\/proc\//.test(rec.netnsPath)) return undefined; // a process path without a holder proves nothing
  return safeId(rec.netnsPath) === rec.containerNetns ? rec.netnsPath : undefined;
}
