// The pieces every driver built on a Linux bridge shares (bridge, overlay): the bridge itself
// with its gateway addresses, the veth pair per container whose peer is created directly inside
// the container's namespace (it never exists in the host namespace, so its name cannot collide
// there), the container side's addresses and routes, and the host sysctls such a network needs.
import { sha256Hex } from '../hash.js';
import { closeSync, readdirSync } from 'node:fs';
import { ConflictError, NotFoundError, UserError } from '../../config/errors.js';
import type { NetworkDef } from '../../config/networks.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Link } from '../netlink/types.js';
import { allEndpoints, type EndpointRecord, type HostLink } from '../records.js';
import { contains } from '../../config/address.js';
import { DEFAULT_NETWORK } from '../../config/net-mode.js';
import { getSysctlSync, setSysctlSync } from '../netlink/sysctl.js';
import { openNetnsFd, withNetnsSync } from '../netns/netns.js';
import { hasCode } from '../netns/errno.js';
import type { Transaction } from '../tx.js';
import type { Logger } from '../log.js';
import type { AttachContext, DetachOptions, DriverEndpoint } from './driver.js';
import { resolveBinary } from '../binaries.js';
import { spawnDetached } from '../spawn-detached.js';
import { containerMac, hostVethMac, randomLocalMac } from './mac.js';
import { announcementFrames, sendFrames } from './announce.js';
import { networkEndpointsPrefix, parseOverlayEndpoint } from '../overlay/keys.js';

/** Aliases tag what tsrun created, so gc can tell its links from everyone else's. */
export const BRIDGE_ALIAS_PREFIX = 'tsrun-net:';
export const VETH_ALIAS_PREFIX = 'tsrun-ep:';

/**
 * Which tsrun root (state directory) made a bridge: its alias is `tsrun-net:<network>@<root>`,
 * the root being the lib directory (or `sha256:<hash>` of it where the alias would pass the
 * kernel's 255 bytes). Several roots can share one network namespace (podman's hook with one
 * TSRUN_ROOT, the CLI with another, two users' roots), and each knows only its own networks: a
 * bridge named by network alone was another root's "bridge of a network that no longer exists",
 * which `network create` and gc removed (with its containers' veths and firewall elements), and a
 * bridge name both roots derived (`tsrun0` of both default networks) was adopted with a second
 * subnet. Set once per process from the settings (context.ts engineFor).
 */
let ownRoot = rootTag('/var/lib/tsrun');
export function setBridgeRoot(libDir: string): void {
  ownRoot = rootTag(libDir);
}

function rootTag(libDir: string): string {
  return Buffer.byteLength(`${BRIDGE_ALIAS_PREFIX}${'x'.repeat(64)}@${libDir}`) <= 255 ? libDir : `sha256:${sha256Hex(libDir).slice(0, 32)}`;
}

/** The alias of this root's bridge of `network`. */
export function bridgeAlias(network: string): string {
  return `${BRIDGE_ALIAS_PREFIX}${network}@${ownRoot}`;
}

export interface BridgeOwner {
  network: string;
  /** The root that made it; undefined for a bridge made before roots were told apart. */
  root?: string;
  /** Made by this process's root. */
  own: boolean;
}

/** Whose tsrun bridge `link` is, or undefined when it is no tsrun bridge. */
export function bridgeOwner(link: Link): BridgeOwner | undefined {
  if (link.kind !== 'bridge' || link.alias?.startsWith(BRIDGE_ALIAS_PREFIX) !== true) return undefined;
  const tag = link.alias.slice(BRIDGE_ALIAS_PREFIX.length);
  const at = tag.indexOf('@'); // network names have no '@'
  if (at < 0) return { network: tag, own: false };
  const root = tag.slice(at + 1);
  return { network: tag.slice(0, at), root, own: root === ownRoot };
}

/** Made by another root (one from before roots were told apart is nobody's in particular). */
export function foreign(owner: BridgeOwner): boolean {
  return !owner.own && owner.root !== undefined;
}

/**
 * For gc and the firewall repair: possibly another root's. A bridge made before roots were told
 * apart (every bridge of a host upgraded in place, until its root's next attach tags it) for a
 * network this root does not have may be another root's: its ports' veths and its containers'
 * firewall elements are not this root's to call orphans (its gc removed a running container's
 * veth of the other root, and its repair dropped that container's elements).
 */
export function maybeOthers(owner: BridgeOwner, networks: ReadonlySet<string>): boolean {
  return foreign(owner) || (owner.root === undefined && !networks.has(owner.network));
}

/** The bridge belongs to another tsrun root: one line naming it. */
export function foreignBridgeError(ifname: string, owner: BridgeOwner, network: string): ConflictError {
  // The default network is made on first use, with no options: --bridge is no advice for it.
  const instead = network === DEFAULT_NETWORK ? `run on a network of this root's own (tsrun network create --bridge NAME …)` : `give network ${network} another bridge (--bridge)`;
  return new ConflictError(`bridge ${ifname} belongs to network ${owner.network} of another tsrun root (${owner.root}): ${instead}, or use that root (TSRUN_ROOT)`);
}

/** The network of a bridge this root made for a network that no longer exists (removed on
 * another host of a cluster, or its rm killed after the definition went), else undefined. Only
 * under the host lock held exclusive (gc, network create): a create in progress makes its bridge
 * after its definition. Another root's bridges, and those made before roots were told apart, are
 * never called stale (their networks are in a Store this root does not read). */
export function staleBridgeNetwork(link: Link, networks: ReadonlySet<string>): string | undefined {
  const owner = bridgeOwner(link);
  if (owner?.own !== true) return undefined;
  return networks.has(owner.network) ? undefined : owner.network;
}

/** "tsv" + 8 hex characters of (container, network): stable, so detach can recompute it. */
export function hostVethName(containerId: string, network: string): string {
  return `tsv${sha256Hex(`${containerId}\0${network}`).slice(0, 8)}`;
}

export interface BridgeOptions {
  /** MTU the bridge is created with; undefined lets it follow its ports (the overlay's case). */
  mtu: number | undefined;
}

/** Creates (or finds, race-safely) the network's bridge, with its gateway addresses, up. */
export async function ensureBridge(net: NetworkDef, host: Rtnl, tx: Transaction, log: Logger, opts: BridgeOptions): Promise<void> {
  let bridge = await host.getLink(net.bridge);
  if (bridge && bridge.kind !== 'bridge') throw new UserError(`interface ${net.bridge} exists and is not a bridge: choose another --bridge for network ${net.name}`);
  if (!bridge) {
    await tx.step(`create bridge ${net.bridge}`, async () => {
      try {
        // A MAC of its own: a bridge without one takes the lowest of its ports' MACs, so it changed
        // as containers came and went, and containers' ARP entries for the gateway went stale
        // (lost packets to the gateway: DNS queries, egress) until they were probed again.
        await host.createBridge({ name: net.bridge, mac: randomLocalMac(), ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}), alias: bridgeAlias(net.name), up: true });
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err; // another attach created it first: fine
      }
    });
    bridge = await host.getLink(net.bridge);
    if (!bridge || bridge.kind !== 'bridge') throw new UserError(`interface ${net.bridge} exists and is not a bridge`);
    log.info({ bridge: net.bridge, network: net.name }, 'bridge created');
  }
  // Another root's bridge is never adopted: its addresses, ports and firewall elements are that
  // root's. (One made before roots were told apart is, for a network of its name, as before.)
  const owner = bridgeOwner(bridge);
  if (owner && foreign(owner)) throw foreignBridgeError(net.bridge, owner, net.name);
  const index = bridge.index;
  // Made before roots were told apart, for this network: tagged as this root's now, so that
  // another root's gc and repair leave it, its ports and their firewall elements alone.
  if (owner && owner.root === undefined && owner.network === net.name) {
    await host.setAlias(index, bridgeAlias(net.name)).catch((err: Error) => log.warn({ bridge: net.bridge, err: err.message }, 'could not tag a bridge made before roots were told apart'));
  }
  // Added outright, "exists" taken as done: one request per address, where listing the bridge's
  // addresses dumped every address of the namespace (the kernel filters an address dump by link
  // only on strict-checking sockets), including each container veth's IPv6 link-local one, so
  // every attach paid for all the containers before it.
  for (const [subnet, gateway] of [[net.subnet4, net.gateway4], [net.subnet6, net.gateway6]] as const) {
    if (!subnet || !gateway) continue;
    const cidr = `${gateway}/${subnet.split('/')[1]}`;
    await tx.step(`address ${cidr} on ${net.bridge}`, () => host.addAddressIfAbsent(index, cidr));
  }
  if (!bridge.up) await host.setUp(index);
  bridgeFound.set(host, { name: net.bridge, index });
}

/** `network rm`: the network's bridge, unless another root made it (it was never this network's:
 * ensureBridge refuses it). */
export async function removeOwnBridge(net: NetworkDef, host: Rtnl): Promise<void> {
  const link = await host.getLink(net.bridge);
  const owner = link && bridgeOwner(link);
  if (!link || (owner && foreign(owner))) return;
  await host.deleteLink(link.index);
}

/**
 * The bridge ensureBridge has just found or made, by the socket it used: attachVeth, next in the
 * same attach, enslaves to that index instead of asking for the bridge again, and takes the entry
 * (so an Rtnl kept for longer never hands out an index from an earlier attach). Should the
 * bridge vanish in between (network rm waits for attaches; only a hand-made `ip link del` could),
 * the veth's creation fails on the index as it would have on the name.
 */
const bridgeFound = new WeakMap<Rtnl, { name: string; index: number }>();

export interface VethOptions {
  /** MTU of both veth ends. */
  mtu: number;
}

/** A veth pair from the network's bridge into the container, addressed and routed there. */
export async function attachVeth(ctx: AttachContext, tx: Transaction, opts: VethOptions): Promise<DriverEndpoint> {
  const { net, host, container } = ctx;
  const found = bridgeFound.get(host);
  bridgeFound.delete(host);
  const bridge = found?.name === net.bridge ? found : await host.getLink(net.bridge);
  if (!bridge) throw new UserError(`bridge ${net.bridge} of network ${net.name} vanished during attach`);
  const hostIfname = hostVethName(ctx.containerId, net.name);
  // Chosen here, after IPAM gave the addresses (see containerMac: derived from the IPv4 address
  // unless the user gave one), rather than by the kernel: known without asking the container's
  // namespace for it.
  const peerMac = containerMac(ctx.mac, ctx.ipv4?.address);
  if (ctx.mac !== undefined) await refuseTakenMac(ctx, peerMac);
  // The guard's elements first: once the container's end exists, a running (hostile) container
  // can send through it, and the guard drops everything from a tsv port it does not know.
  if (ctx.guardPort) {
    // A live veth of this name (on a bridge: not one a detach set aside) is another endpoint's: a
    // container of the same name on a network of the same name in another tsrun root (the name
    // is derived from both). Refused before the guard's elements, whose undo took that port's
    // name out of guard_ports: the guard then dropped every frame of the other container.
    const taken = (await host.linkAbsent(hostIfname)) ? undefined : await host.getLink(hostIfname);
    if (taken?.kind === 'veth' && taken.master !== undefined) {
      throw new ConflictError(`interface ${hostIfname} of container ${ctx.containerId} on network ${net.name} is in use on another bridge port (a container of that name on a network of that name in another tsrun root?)`);
    }
    await ctx.guardPort({ ifname: hostIfname, mac: peerMac });
  }

  const create = () => {
    const fd = openNetnsFd(ctx.containerNetnsPath);
    return host
      .createVeth({
        name: hostIfname,
        peerName: ctx.ifname,
        peerNsFd: fd,
        mtu: opts.mtu,
        // Both ends' MACs given: see hostVethMac (udev rewrites a MAC the kernel chose).
        mac: hostVethMac(),
        peerMac,
        master: bridge.index,
        up: true,
      })
      .finally(() => closeSync(fd));
  };
  const made = await tx.step(
    `create veth ${hostIfname} with ${ctx.ifname} in the container`,
    async () => {
      try {
        return await create();
      } catch (err) {
        // The same container on the same network again, before the kernel has deleted the pair
        // an earlier detach retired (see retireVeth): delete that leftover now, then create.
        if (!(err instanceof ConflictError) || !(await deleteRetiredVeth(host, hostIfname))) throw err;
        return await create();
      }
    },
    // Deleting one end of a veth deletes both.
    async () => void (await host.deleteLink(hostIfname)),
  );
  // The kernel's echo of the creation, else one GETLINK: this end's index and its peer's.
  const hostEnd = made?.kind === 'veth' ? made : await host.getLink(hostIfname);
  if (!hostEnd) throw new UserError(`veth ${hostIfname} vanished during attach`);
  // Hairpin: with br_netfilter loaded, a container reaching its own published port through the
  // host address needs the bridge to send the DNATed frame back out the port it came in on.
  // Isolation is icc=false.
  await tx.step(`bridge port flags of ${hostIfname}`, () => host.setBridgePort(hostEnd.index, { hairpin: true, ...(net.icc ? {} : { isolated: true }) }));

  // The peer's index in the container's namespace is the host end's link (IFLA_LINK); only
  // without it is the container's namespace asked.
  const inner = hostEnd.parentIndex !== undefined ? { index: hostEnd.parentIndex, mac: peerMac } : await container.getLink(ctx.ifname);
  if (!inner) throw new UserError(`${ctx.ifname} did not appear in the container namespace`);
  await tx.step(`configure ${ctx.ifname} in the container`, async () => {
    refuseRouterAdverts(ctx.containerNetnsPath, ctx.ifname);
    if (ctx.ipv4) await container.addAddress(inner.index, `${ctx.ipv4.address}/${ctx.ipv4.prefixLength}`);
    if (ctx.ipv6) await container.addAddress(inner.index, `${ctx.ipv6.address}/${ctx.ipv6.prefixLength}`);
    await container.setUp(inner.index);
    await container.setUp('lo');
    // A container on several networks keeps the default route of the first one (docker's rule);
    // eth0 is always a container's first interface, so it pays for no route dump.
    const addDefault = async (family: 4 | 6) => ctx.ifname === 'eth0' || !(await container.listRoutes(family)).some((r) => r.dst === 'default');
    if (ctx.ipv4?.gateway && (await addDefault(4))) await container.addRoute({ dst: 'default', gateway: ctx.ipv4.gateway, ifindex: inner.index });
    if (ctx.ipv6?.gateway && (await addDefault(6))) await container.addRoute({ dst: 'default', gateway: ctx.ipv6.gateway, ifindex: inner.index, family: 6 });
  });
  await forgetNeighbours(host, bridge.index, ctx);
  await announce(ctx, host, hostEnd.index, inner.index, peerMac);
  // The host end's index (and its peer's, reported by the same request) tell this veth from a
  // newer one with the same name: see removeVeth.
  const hostLink: HostLink = { index: hostEnd.index };
  if (hostEnd.parentIndex !== undefined) hostLink.peer = hostEnd.parentIndex;
  if (hostEnd.mac) hostLink.mac = hostEnd.mac;
  if (hostEnd.linkNetnsId !== undefined) hostLink.peerNs = hostEnd.linkNetnsId;
  return { hostIfname, hostLink, mac: inner.mac };
}

/**
 * The host's neighbour entries for the new endpoint's addresses on the bridge are dropped: one
 * may still map a reused address to the MAC of the container that held it before (an IPv6-only
 * endpoint's MAC is random; a user's --mac, or an earlier holder's, may differ), and the host
 * would send that address's traffic (published ports' DNAT, the host's own) to a MAC no port has
 * until the entry aged out and was probed again (REACHABLE 15-45 s, then DELAY/PROBE). Without
 * the entry, the host's next packet asks afresh and the new holder answers. One request per
 * address (~35 µs measured on a loaded machine, "no such entry", the common answer, included:
 * see Rtnl.forgetNeighbour). Chosen over the kernel's own announcement (arp_notify /
 * ndisc_notify), which is sent as the container's end comes up, before the bridge has put the new
 * port in forwarding state, and so is dropped there: measured, never seen by the host nor by
 * other containers. Other containers' caches are right because the MAC follows from the IPv4
 * address (containerMac); where it does not, tsrun announces the endpoint (announce, below). A
 * cache hint: a refusal is logged, never fails the attach.
 */
async function forgetNeighbours(host: Rtnl, bridgeIndex: number, ctx: AttachContext): Promise<void> {
  for (const a of [ctx.ipv4, ctx.ipv6]) {
    if (!a) continue;
    try {
      await host.forgetNeighbour({ ifindex: bridgeIndex, ip: a.address });
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message, address: a.address }, 'could not drop the host neighbour entry of a reused address');
    }
  }
}

/**
 * A MAC the caller chose (--mac, the hook's io.tsrun.mac, CNI's mac) must not be one another
 * endpoint of the network has or will have: the bridge learns a MAC at the newest port that sent
 * from it (announce, below, sends at once), so the other container's frames would go to this one.
 * Refused: a live record of the network with that MAC, and the MAC derived from another address
 * of the network's subnet (macFromIpv4: whoever gets that address later would share it). Its own
 * address's MAC is what it would have had anyway. Only on this path: one listing of the records.
 */
async function refuseTakenMac(ctx: AttachContext, mac: string): Promise<void> {
  const m = /^02:42:([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/.exec(mac);
  const derivedFrom = m ? m.slice(1).map((h) => parseInt(h, 16)).join('.') : undefined;
  if (derivedFrom !== undefined && derivedFrom !== ctx.ipv4?.address && ctx.net.subnet4 && contains(ctx.net.subnet4, derivedFrom)) {
    throw new UserError(`--mac ${mac} is the MAC of ${derivedFrom} on network ${ctx.net.name}: the container given that address would share it (choose a MAC outside 02:42 + this network's addresses)`);
  }
  if (!ctx.store) return;
  const holder = (await allEndpoints(ctx.store)).find((r) => r.network === ctx.net.name && r.mac === mac && r.containerId !== ctx.containerId);
  if (holder) throw new UserError(`--mac ${mac} is already used on network ${ctx.net.name} by container ${holder.containerId}`);
  // An overlay network's other containers are on other hosts too: their endpoints are in the
  // cluster store, not in this host's records. A container there with this MAC would have its
  // frames from here go to this one (this host's bridge learns the MAC at the new port) and, once
  // this one sends through the overlay, that host's frames for it come here.
  if (ctx.net.driver !== 'overlay') return;
  const remote = (await ctx.store.list(networkEndpointsPrefix(ctx.net.name)))
    .map((e) => parseOverlayEndpoint(e.value))
    .find((e) => e !== undefined && e.mac.toLowerCase() === mac.toLowerCase() && e.containerId !== ctx.containerId);
  if (remote) throw new UserError(`--mac ${mac} is already used on network ${ctx.net.name} by container ${remote.containerId} (on host ${remote.hostId})`);
}

/**
 * The other containers' caches, where the new endpoint's MAC does not follow from its IPv4
 * address (a user's --mac, no IPv4: a random MAC) or it has an IPv6 address (whose previous
 * holder's MAC followed from another IPv4 address): a gratuitous ARP and an unsolicited
 * neighbour advertisement, sent from the container's end (see announce.ts). A default IPv4
 * endpoint sends nothing: every holder of its address has had its MAC. The port's hairpin is off
 * while they are sent (two requests, only for these endpoints): with it the bridge sends them
 * back into the container, whose kernel then logs "NA: … advertised our address" (measured: one
 * line per IPv6 attach).
 *
 * A cache hint, best-effort: when the hairpin cannot be turned off (a port-flags request is
 * applied whole or not at all, so the port keeps the hairpin attach gave it) nothing is sent, and
 * a failed send is logged; neither fails the attach. Once the hairpin is off it is turned back
 * on whatever the send did; should that request fail, the attach fails (its transaction removes
 * the veth) rather than leave a port without the hairpin its published ports need.
 */
export async function announce(ctx: AttachContext, host: Pick<Rtnl, 'setBridgePort'>, hostIndex: number, ifindex: number, mac: string): Promise<void> {
  if (ctx.mac === undefined && ctx.ipv4 && !ctx.ipv6) return;
  const frames = announcementFrames(mac, ctx.ipv4?.address, ctx.ipv6 ? [ctx.ipv6.address] : []);
  try {
    await host.setBridgePort(hostIndex, { hairpin: false });
  } catch (err) {
    ctx.log.debug({ err: (err as Error).message }, 'endpoint not announced: the bridge port\'s hairpin could not be turned off');
    return;
  }
  try {
    sendFrames(ctx.containerNetnsPath, ifindex, frames);
  } catch (err) {
    ctx.log.debug({ err: (err as Error).message }, 'could not announce the endpoint to its neighbours');
  } finally {
    await host.setBridgePort(hostIndex, { hairpin: true });
  }
}

/**
 * A container takes its IPv6 routes from tsrun, never from router advertisements: a neighbour
 * with NET_RAW could otherwise announce itself as the router (CVE-2020-13401). Set before the
 * interface comes up; a namespace without IPv6 has nothing to set.
 */
export function refuseRouterAdverts(containerNetnsPath: string, ifname: string): void {
  withNetnsSync(containerNetnsPath, () => {
    for (const dev of ['all', 'default', ifname]) {
      // Written without reading it first: no file (ENOENT) is the namespace without IPv6.
      try {
        setSysctlSync(`net/ipv6/conf/${dev}/accept_ra`, '0');
      } catch (err) {
        if (!hasCode((err as Error).cause, 'ENOENT')) throw err;
      }
    }
  });
}

/**
 * Removes a container's veth. With `netnsGoing` (the container's namespace dies right after), it
 * only retires it: see retireVeth. Already gone counts as done.
 *
 * The name is derived from (container id, network), so by the time a late detach runs (a poststop
 * or gc after the same id was wired again on the same network) it may name the NEWER container's
 * veth. A record that carries hostLink is acted on by index, and only after checking that the
 * link at that index is still the one attach made (see vethVerdict); the name is never trusted
 * alone. Deleting by index without that check is not safe either: an index can be taken again
 * (a link moved in from another namespace keeps its index; `ip link add … index N`). The check
 * costs one RTM_GETLINK (tens of µs) next to the delete's RCU grace period (~26 ms) or the
 * retire's single request; it cannot be folded into the delete, which honours the index and
 * ignores the name.
 *
 * Records without hostLink (made before it existed) keep the old behaviour: by name.
 */
export async function removeVeth(host: Rtnl, rec: Pick<EndpointRecord, 'hostIfname' | 'hostLink' | 'containerId' | 'network'>, opts: DetachOptions = {}): Promise<void> {
  let target: string | number = rec.hostIfname;
  let moved = false;
  if (rec.hostLink) {
    const live = await host.getLink(rec.hostLink.index);
    const verdict = vethVerdict(live, rec.hostIfname, rec.hostLink);
    if (verdict === 'gone') return;
    if (verdict === 'other') {
      opts.log?.warn(
        { containerId: rec.containerId, network: rec.network, hostIfname: rec.hostIfname, recorded: rec.hostLink, found: live && { index: live.index, name: live.name, kind: live.kind, peer: live.parentIndex } },
        'veth of the record is gone; the link at its index is not it: left alone',
      );
      return;
    }
    target = rec.hostLink.index;
    moved = peerMoved(live!, rec.hostLink);
  }
  // Retiring leaves the delete to the kernel when the container's namespace dies; a peer the
  // container moved into a namespace of its own may outlive it, and the host end with it.
  if (opts.netnsGoing && !moved) await retireVeth(host, target);
  else if (opts.deferLinkDelete && host.nsPath === undefined) await dismissVeth(host, target, opts.log);
  else await host.deleteLink(target);
}

/** What a veth is renamed to while a detached process deletes it (see dismissVeth): "tsvz" and
 * its own index, so no two links can want the same dying name, it is never a live veth's name
 * (tsv + 8 hex digits), and gc can tell one from any other link. */
export const DYING_VETH_PREFIX = 'tsvz';

export function dyingVethName(index: number): string {
  return `${DYING_VETH_PREFIX}${index}`;
}

/** A veth dismissVeth left for a deleter: its dying name, its own index, off any bridge, and down
 * (set down before its rename: a link someone brought up is in use, whatever its name). */
export function isDyingVeth(link: Pick<Link, 'name' | 'index' | 'kind' | 'master' | 'up'>): boolean {
  return link.kind === 'veth' && link.master === undefined && !link.up && link.name === dyingVethName(link.index);
}

/**
 * Deletes a container's veth without waiting for it, for a door that exits right after (the
 * hook's poststop, the CNI plugin's DEL) while the container's namespace may stay alive (a
 * runtime that pins it; the hook cannot tell). The delete waits for an RCU grace period inside
 * the kernel (~17 ms, most of a poststop's own work); here the caller waits for three fast
 * requests and a posix_spawn instead:
 *   1. down and off its bridge (one request): from here on nothing on the network reaches the
 *      old address (the container end's only way out is this end, which is down and bridge-less;
 *      the host end has no address of its own), so the caller goes on to release the lease;
 *   2. renamed to its dying name (dyingVethName; a link must be down to be renamed): the
 *      container's name on this network is free at once, so the same container id attaches again
 *      without meeting it, and the deleter's name can only ever mean this link;
 *   3. `ip link delete dev <dying name>` started detached (runtime/spawn-detached.ts: stdio on
 *      /dev/null, so a runtime waiting for the hook's pipes does not wait for it).
 * A deleter that never finishes (killed, the machine going down) leaves a link that is down,
 * bridge-less and named as dying: gc deletes it (isDyingVeth). If the container's namespace dies
 * first, the kernel deletes the pair itself and the deleter finds nothing. Whatever cannot be
 * done this way (no `ip`, the rename refused) is a plain delete, as without the option.
 */
export async function dismissVeth(host: Rtnl, target: string | number, log?: Logger): Promise<void> {
  const index = typeof target === 'number' ? target : (await host.getLink(target))?.index;
  if (index === undefined) return;
  try {
    await host.setDownUnslaved(index);
    await host.rename(index, dyingVethName(index));
  } catch (err) {
    if (err instanceof NotFoundError) return; // the kernel deleted the pair with its namespace
    log?.warn({ err: (err as Error).message, index }, 'could not set the veth aside for a detached delete: deleting it now');
    await host.deleteLink(index);
    return;
  }
  try {
    const ip = resolveBinary('ip');
    spawnDetached(ip, ['ip', 'link', 'delete', 'dev', dyingVethName(index)]);
  } catch (err) {
    log?.warn({ err: (err as Error).message, index }, 'could not start a detached delete of the veth: deleting it now');
    await host.deleteLink(index);
  }
}

/**
 * What the link now at the recorded index is: 'gone' (nothing there), 'ours' (the veth attach
 * made: same name, a veth, and its own MAC when recorded or else the same peer) or 'other' (anything else:
 * an index taken again by some other link, which must not be touched).
 */
export function vethVerdict(live: Link | undefined, hostIfname: string, recorded: HostLink): 'gone' | 'ours' | 'other' {
  if (!live) return 'gone';
  if (live.index !== recorded.index || live.name !== hostIfname || live.kind !== 'veth') return 'other';
  // The host end's own MAC, when recorded, is its identity: the peer may have been moved by the
  // container since (another index, another namespace). Older records have only the peer index.
  // The host may have changed that MAC since, though: systemd-udevd's default
  // MACAddressPolicy=persistent gives a new link whose MAC the kernel chose at random one derived
  // from its name, moments after creation. Then the peer, still at its recorded index and in its
  // recorded namespace, is the identity, as before the MAC was recorded (a peer both moved and
  // under a rewritten MAC is left alone, for gc).
  if (recorded.mac !== undefined) return live.mac === recorded.mac || (recorded.peer !== undefined && !peerMoved(live, recorded)) ? 'ours' : 'other';
  if (recorded.peer !== undefined && live.parentIndex !== recorded.peer) return 'other';
  return 'ours';
}

/** True when the peer of the host end `live` (a veth vethVerdict found 'ours') is no longer where
 * attach put it: another index, or another namespace, in the container's namespace's stead. */
export function peerMoved(live: Pick<Link, 'parentIndex' | 'linkNetnsId'>, recorded: HostLink): boolean {
  if (recorded.peer !== undefined && live.parentIndex !== recorded.peer) return true;
  return recorded.peerNs !== undefined && live.linkNetnsId !== recorded.peerNs;
}

/**
 * Takes a container's veth off its bridge, one request (~0.5 ms), instead of deleting it, which
 * waits for an RCU grace period (~26 ms). The kernel deletes the pair itself when the container's
 * namespace dies (the peer goes with its namespace, and the host end with its peer), off the
 * detach's path. Nothing half-removed can be seen in the meantime:
 *   - off the bridge, the old address answers nobody on the network (the host end has no
 *     address or route of its own), so its lease can be handed on at once;
 *   - the name stays taken until the kernel is done, and only by a link that is a veth with no
 *     master; an attach of the same container to the same network that meets it deletes it first
 *     (deleteRetiredVeth), so the name is never refused.
 */
export async function retireVeth(host: Rtnl, hostIfname: string | number): Promise<void> {
  try {
    await host.setMaster(hostIfname, 0);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
}

/**
 * Frees `hostIfname` when a retired veth (no master) holds it; true when the name is free now.
 * The kernel may finish deleting the pair (its namespace's cleanup) between our create's "exists"
 * and this look: a name no link holds any more is free as well, so the create is tried again.
 */
async function deleteRetiredVeth(host: Rtnl, hostIfname: string): Promise<boolean> {
  const old = await host.getLink(hostIfname);
  if (!old) return true;
  if (old.kind !== 'veth' || old.master !== undefined) return false;
  await host.deleteLink(old.index); // false when the kernel got there first: free either way
  return true;
}

/**
 * Host sysctls a bridge network needs, set inside the host-side namespace: forwarding, and
 * route_localnet on the bridge so 127.0.0.1:<published port> can be DNATed to a container.
 * Returns what was changed (key → previous value) so the caller can record it.
 */
export function ensureHostSysctls(hostNetnsPath: string, net: NetworkDef): Record<string, string> {
  const wanted: [string, string][] = [
    ['net.ipv4.ip_forward', '1'],
    // The slash form: a bridge name may contain '.', which the dotted form would split.
    [`net/ipv4/conf/${net.bridge}/route_localnet`, '1'],
  ];
  // The bridge itself never learns routes from what containers announce.
  wanted.push([`net/ipv6/conf/${net.bridge}/accept_ra`, '0']);
  if (net.subnet6) wanted.push(['net.ipv6.conf.all.forwarding', '1']);
  const changed: Record<string, string> = {};
  withNetnsSync(hostNetnsPath, () => {
    // With forwarding on, accept_ra=1 stops honouring RAs: a host that got its default route by
    // SLAAC would lose it at the next refresh. accept_ra=2 keeps it (what Docker and netavark do).
    if (net.subnet6 && readSysctl('net/ipv6/conf/all/forwarding') === '0') {
      for (const dev of listIpv6Devices()) {
        if (dev === 'all' || dev === 'default' || dev === 'lo' || dev.startsWith('tsv') || !/^[A-Za-z0-9_.-]+$/.test(dev)) continue;
        if (readSysctl(`net/ipv6/conf/${dev}/accept_ra`) === '1') wanted.push([`net/ipv6/conf/${dev}/accept_ra`, '2']);
      }
    }
    for (const [key, value] of wanted) {
      const before = readSysctl(key);
      if (before === value || (before === undefined && key.endsWith('/accept_ra'))) continue; // no IPv6: nothing to refuse
      setSysctlSync(key, value);
      changed[key] = before ?? '';
    }
  });
  return changed;
}

function listIpv6Devices(): string[] {
  try {
    return readdirSync('/proc/sys/net/ipv6/conf');
  } catch {
    return [];
  }
}

function readSysctl(key: string): string | undefined {
  try {
    return getSysctlSync(key).trim();
  } catch {
    return undefined;
  }
}
