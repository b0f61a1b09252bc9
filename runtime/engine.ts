// The engine: the one entry both front doors use. attach wires one container into one network as
// a single Transaction (validate → shared host pieces → addresses → host ports → links → firewall
// elements → record); any failure unwinds every earlier step. detach works from the persisted
// record alone, from any process and any namespace, tries every step, and treats "already gone"
// as done, so calling it twice is fine.
import { canonicalAddress, contains, isUnspecified, parseAddress, parseSubnet } from '../config/address.js';
import { ConflictError, UserError } from '../config/errors.js';
import { DEFAULT_NETWORK } from '../config/net-mode.js';
import { normalizeNetworkInput, type NetworkCreateInput, type NetworkDef, type NetworkDriverName } from '../config/networks.js';
import type { PortMapping } from '../config/ports.js';
import { checkIfname } from '../config/ids.js';
import type { Logger } from './log.js';
import type { Store } from './store/store.js';
import { Transaction, runAll } from './tx.js';
import { StoreLock, type ReadWriteLock, type Release } from './locks.js';
import { oneAtATime } from './one-at-a-time.js';
import { Ipam, keyLayout, parseLeaseKey, type Allocation } from './ipam/ipam.js';
import { decodeHolder } from './ipam/holder.js';
import { LOCAL_HOST_ID_KEY } from './overlay/keys.js';
import { NetworkRegistry } from './networks.js';
import { Rtnl } from './netlink/rtnl.js';
import type { Link } from './netlink/types.js';
import { THREAD_NETNS, netnsId } from './netns/netns.js';
import { findNetnsPath, safeId } from './netns/find.js';
import { attachInFlight, type FirewallBackend, type FirewallEndpoint, type FirewallNetwork, type FirewallState } from './firewall/backend.js';
import { ensureHostSysctls } from './drivers/bridge.js';
import { driverFor } from './drivers/registry.js';
import { bridgeOwner, foreign, hostVethName, maybeOthers, setBridgeRoot, staleBridgeNetwork, vethVerdict } from './drivers/linux-bridge.js';
import type { DetachOptions, NetworkDriver } from './drivers/driver.js';
import { allEndpoints, deleteEndpoint, endpointsOf, holderOf, saveEndpoint, type EndpointAddress, type EndpointRecord } from './records.js';
import { isoNow, processStartTime } from './containers.js';
import { holdsPort, portHolders, portKey, releasePort, reservePort } from './hostports.js';
import { clashingListener, hostListenersFor, listenerText } from './host-listeners.js';
import { bootId, sameBoot } from './boot.js';
import { endpointAlive } from './liveness.js';
import { dnsEnabled, resolverServes } from './dns/table.js';
import { forgetFlows, forgetPortFlows } from './conntrack.js';
import { flushAtReuse, flushIfMarked, flushMarks, markForFlush } from './conntrack-reuse.js';
import { underlayFilter } from './overlay/host.js';
import { attachOrPurge } from './firewall/owned-attach.js';
import { clusterOf } from './store/scoped.js';

export interface AttachRequest {
  containerId: string;
  /** The container's network namespace: a tsrun pin, or /proc/<pid>/ns/net from a hook. */
  netnsPath: string;
  network: string;
  ip?: string | undefined;
  ip6?: string | undefined;
  mac?: string | undefined;
  ports: PortMapping[];
  ifname?: string | undefined;
  /** DNS names on this network besides the container id (--network-alias). */
  aliases?: string[] | undefined;
  /** --dns: upstreams for this container's other queries. */
  dnsServers?: string[] | undefined;
  /** The container's resolv.conf points at the resolver (default: when the network has DNS on). */
  resolver?: boolean | undefined;
  /** The front door that attaches, when it must find its own endpoints again ('cni': CNI GC). */
  via?: 'cni' | undefined;
  /** For 'cni': the CNI network (the conflist's name) it was made for; GC collects its own only. */
  cniNetwork?: string | undefined;
}

/** Keeps the DNS resolver's table in step with the endpoint records. */
export interface DnsSync {
  /** After records changed; `start`: an attach that needs the resolver running; `containers`:
   * the records changed are these containers' only (the resolver re-reads just theirs). */
  sync(start: boolean, containers?: readonly string[]): Promise<void>;
}

export interface EngineDeps {
  store: Store;
  /** The firewall acting in the namespace `netnsPath` (undefined: the current one). */
  firewall: (netnsPath?: string) => FirewallBackend;
  log: Logger;
  dns?: DnsSync | undefined;
  /** Held shared by attach/detach and exclusive by network create/rm and gc (runtime/locks.ts);
   * absent: no coordination (one process, as in unit tests). */
  hostLock?: ReadWriteLock | undefined;
  /** This tsrun root's lib directory: the bridges it makes are tagged with it (linux-bridge.ts
   * bridgeAlias), and another root's are never adopted, removed or swept. */
  root?: string | undefined;
}

/** This root's bridge of `network` (or one from before roots were told apart, of that name). */
function isBridgeOf(link: Link, network: string): boolean {
  const owner = bridgeOwner(link);
  return owner?.network === network && !foreign(owner);
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** The cluster-wide lock of network create/rm, in the cluster store (outside overlay/, which the
 * agents watch). */
export const CLUSTER_NETWORK_LOCK = 'locks/networks';

export class Engine {
  readonly networks: NetworkRegistry;
  readonly ipam: Ipam;

  constructor(private readonly deps: EngineDeps) {
    if (deps.root !== undefined) setBridgeRoot(deps.root); // the root this process's bridges name
    this.networks = new NetworkRegistry(deps.store);
    this.ipam = new Ipam(deps.store);
  }

  driverFor(name: NetworkDriverName): NetworkDriver {
    const d = driverFor(name);
    if (!d) throw new UserError(`network driver ${name} is not available yet`);
    return d;
  }

  /** The network by name; the default network is created on first use. */
  async resolveNetwork(name: string, host: Rtnl): Promise<NetworkDef> {
    if (name !== DEFAULT_NETWORK) return this.networks.require(name);
    // Only the first use pays for the route dump that picks a free subnet.
    return (await this.networks.get(name)) ?? this.networks.ensureDefault(await hostRouteCidrs(host));
  }

  async attach(req: AttachRequest): Promise<EndpointRecord> {
    const done = attachInFlight(); // from before the lock: attaches waiting for it may join a burst
    try {
      return await this.withHostLock('shared', () => this.attachHeld(req));
    } finally {
      done();
    }
  }

  private async attachHeld(req: AttachRequest): Promise<EndpointRecord> {
    const log = this.deps.log.child({ containerId: req.containerId, network: req.network });
    const started = performance.now();
    const ifname = checkIfname(req.ifname ?? 'eth0', 'container interface name');
    if (req.mac !== undefined && (!MAC.test(req.mac) || (parseInt(req.mac.slice(0, 2), 16) & 1) === 1)) {
      throw new UserError(`invalid --mac ${JSON.stringify(req.mac)}: expected a unicast address like 02:42:ac:11:00:02`);
    }
    const existing = (await endpointsOf(this.deps.store, req.containerId)).find((e) => e.network === req.network);

    const host = Rtnl.open();
    let container: Rtnl | undefined;
    try {
      container = Rtnl.open(req.netnsPath);
    } catch (err) {
      host.close();
      throw new UserError(`container network namespace ${req.netnsPath} cannot be entered: ${(err as Error).message}`);
    }
    try {
      if (existing) {
        if (await this.isLiveEndpoint(existing, req.netnsPath, container, host)) {
          log.info('already attached: nothing to do');
          return existing;
        }
        // A record from another boot, or of a namespace that is not this one (the run directory
        // was lost, the container died): it describes nothing live, so it must not stop the attach.
        log.warn({ stale: { bootId: existing.bootId, containerNetns: existing.containerNetns, hostIfname: existing.hostIfname } }, 'stale endpoint record: tearing it down');
        await this.detachEndpoint(existing, log);
      }
      const net = await this.resolveNetwork(req.network, host);
      const driver = this.driverFor(net.driver);
      const issues = driver.validate(net);
      if (issues.length > 0) throw new UserError(`network ${net.name}: ${issues[0]!.message}`);
      if (req.ip !== undefined && !net.subnet4) throw new UserError(`--ip ${req.ip}: network ${net.name} has no IPv4 subnet`);
      if (req.ip6 !== undefined && !net.subnet6) throw new UserError(`--ip6 ${req.ip6}: network ${net.name} has no IPv6 subnet`);
      const viaHost = driver.hostFirewall !== false;
      if (!viaHost && req.ports.length > 0) throw new UserError(`-p cannot publish ports on ${net.driver} network ${net.name}: its containers are reachable at their own addresses`);
      await checkLocalHostIps(req.ports, host);
      await this.checkHostListeners(req.ports);
      const firewall = this.deps.firewall();
      const useResolver = resolverServes(net) && (req.resolver ?? dnsEnabled(net));

      const record = await this.withChosenMacLock(req.mac, net.name, () => Transaction.run(log, async (tx) => {
        await driver.ensureNetwork(net, host, tx, log);
        if (viaHost) {
          const changed = await tx.step('host sysctls', () => ensureHostSysctls(THREAD_NETNS, net));
          if (Object.keys(changed).length > 0) await this.recordSysctls(changed, log);
        }

        const alloc = async (family: 4 | 6): Promise<EndpointAddress | undefined> => {
          const subnet = family === 4 ? net.subnet4 : net.subnet6;
          if (!subnet) return undefined;
          const gateway = family === 4 ? net.gateway4 : net.gateway6;
          const a: Allocation = await tx.step(
            `lease an IPv${family} address on ${net.name}`,
            () => this.ipam.allocate({ name: net.name, subnet, gateway }, req.containerId, { staticIp: family === 4 ? req.ip : req.ip6 }),
            async (got) => void (await this.ipam.release(net.name, got.ip, req.containerId, got.lease)),
          );
          // An address used before: its old flows go before anything can reach the new holder.
          if (viaHost && flushAtReuse(this.deps.store)) await tx.step(`forget old flows of ${a.ip}`, () => flushIfMarked(this.deps.store, net.name, a.ip, log));
          return { address: a.ip, prefixLength: a.prefixLength, gateway: a.gateway, lease: a.lease };
        };
        const ipv4 = await alloc(4);
        const ipv6 = await alloc(6);

        for (const p of req.ports) {
          await tx.step(`reserve host port ${p.hostPort}/${p.protocol}`, () => this.reservePortReclaiming(p, req.containerId, log), () => releasePort(this.deps.store, p, req.containerId));
        }

        // One nft batch: the network's elements (idempotent to re-add), the published ports and
        // the port guard's elements. Added from inside the driver before it makes the bridge port
        // (the guard drops a container port it does not know: `network connect` to a running
        // container), or after it for a driver without one.
        let guarded: FirewallEndpoint['port'];
        const addFirewall = async (port: FirewallEndpoint['port']): Promise<void> => {
          const fwEndpoint: FirewallEndpoint = { containerId: req.containerId, ipv4: ipv4?.address, ipv6: ipv6?.address, ports: req.ports, port };
          const others = async () => (await endpointsOf(this.deps.store, req.containerId)).filter((r) => r.network !== net.name).map(firewallEndpointOf);
          await tx.step('firewall elements', () => attachOrPurge(firewall, firewallNetwork(net), fwEndpoint, log, others), () => firewall.removeEndpoint(fwEndpoint, { exclusive: true }));
          guarded = port ?? { ifname: '', mac: '' };
        };
        const ep = await driver.attach(
          { containerId: req.containerId, net, host, container: container!, containerNetnsPath: req.netnsPath, ifname, mac: req.mac, ipv4, ipv6, log, store: this.deps.store, aliases: req.aliases, ...(viaHost ? { guardPort: addFirewall } : {}) },
          tx,
        );
        if (viaHost && !guarded) await addFirewall(guardPort(ep));
        else if (viaHost && (guarded!.ifname !== ep.hostIfname || guarded!.mac.toLowerCase() !== ep.mac.toLowerCase())) {
          // The port the driver made is not the one guarded: its frames would all be dropped.
          throw new Error(`attach of ${req.containerId}: bridge port ${ep.hostIfname} (${ep.mac}) is not the guarded ${guarded!.ifname} (${guarded!.mac})`);
        }
        if (viaHost) await forgetPortFlows(req.ports, log); // old un-DNATed UDP flows to these ports

        const rec: EndpointRecord = {
          containerId: req.containerId,
          network: net.name,
          driver: net.driver,
          ifname,
          hostIfname: ep.hostIfname,
          ...(ep.hostLink ? { hostLink: ep.hostLink } : {}),
          mac: ep.mac,
          ipv4,
          ipv6,
          ports: req.ports,
          hostNetns: netnsId(THREAD_NETNS),
          containerNetns: netnsId(req.netnsPath),
          netnsPath: req.netnsPath,
          netnsHolder: holderOf(req.netnsPath, processStartTime),
          bootId: bootId(),
          ...(req.aliases && req.aliases.length > 0 ? { aliases: req.aliases } : {}),
          ...(req.dnsServers && req.dnsServers.length > 0 ? { dnsServers: req.dnsServers } : {}),
          ...(useResolver ? { resolver: true } : {}),
          ...(req.via ? { via: req.via } : {}),
          ...(req.cniNetwork !== undefined ? { cniNetwork: req.cniNetwork } : {}),
          wiringMs: +(performance.now() - started).toFixed(2),
          created: isoNow(), // not toISOString: its first call costs a cold attach ~0.2 ms
        };
        await tx.step('save endpoint record', () => saveEndpoint(this.deps.store, rec), () => deleteEndpoint(this.deps.store, rec.containerId, rec.network));
        return rec;
      }));
      log.info({ ipv4: record.ipv4?.address, ipv6: record.ipv6?.address, hostIfname: record.hostIfname, wiringMs: record.wiringMs }, 'attached');
      if (record.resolver) await this.syncDns(true, log, [req.containerId]);
      return record;
    } finally {
      host.close();
      container.close();
    }
  }

  /**
   * What tsrun's firewall table should hold, from the Store: every network whose driver uses the
   * host firewall, and every endpoint of those networks attached in this namespace. A definition
   * that does not parse refuses it (one line naming the network and `network rm`): a table rebuilt
   * without that network would fail open (no internal-network drop, no port guards for its
   * containers), while the table left as it is keeps them.
   */
  async firewallState(): Promise<FirewallState> {
    const here = netnsId(THREAD_NETNS);
    const nets = (await this.networks.listEvery()).filter((n) => driverFor(n.driver)?.hostFirewall !== false);
    const names = new Set(nets.map((n) => n.name));
    const endpoints = (await allEndpoints(this.deps.store))
      .filter((r) => names.has(r.network) && r.hostNetns === here)
      .map((r): FirewallEndpoint => ({ containerId: r.containerId, ipv4: r.ipv4?.address, ipv6: r.ipv6?.address, ports: r.ports, port: guardPort(r) }));
    const underlay = nets.some((n) => n.driver === 'overlay') ? await underlayFilter(this.deps.store, clusterOf(this.deps.store)) : undefined;
    return { networks: nets.map(firewallNetwork), endpoints, ...(underlay ? { underlay } : {}) };
  }

  /**
   * The firewall self-check every command runs: a table found missing or different from this
   * version's fingerprint is rebuilt from the Store in one batch. `force` (tsrun network reload)
   * rebuilds it whatever it looks like. Returns what was rebuilt, or undefined when it was intact.
   */
  async repairFirewall(opts: { force?: boolean } = {}): Promise<{ networks: number; endpoints: number } | undefined> {
    const firewall = this.deps.firewall();
    if (firewall.kind === 'none') return undefined;
    if (!opts.force && (await firewall.intact())) return undefined;
    // Missing, different, or its port-guard table gone: rebuilt whole, in one batch.
    const state = await this.firewallState();
    // Nothing of tsrun's to protect here: a read-only command (`network ls`, gc on a host with no
    // networks) must not create tsrun's tables on a machine that never used a tsrun network.
    if (!opts.force && state.networks.length === 0) return undefined;
    const others = await this.otherRoots();
    if (others.length > 0) {
      // Another tsrun root uses this namespace: its containers' elements are in the table, and a
      // rebuild from this root's Store dropped them (their published ports, their port guards, so
      // every frame of their containers). This root's elements are added to the table as it is.
      await firewall.ensureBase();
      for (const n of state.networks) await firewall.addNetwork(n);
      const nets = new Map(state.networks.map((n) => [n.name, n]));
      const here = netnsId(THREAD_NETNS);
      for (const r of await allEndpoints(this.deps.store)) {
        const net = nets.get(r.network);
        if (net !== undefined && r.hostNetns === here) await firewall.attach(net, firewallEndpointOf(r));
      }
      // ensureBase replaces a changed inet table (and the nd table), not a changed port guard: a
      // guard rule deleted by hand (its IPv6 source check) stayed deleted, every check failing
      // and "repairing" (the agent twice a second). The rules come first: rebuilt whole from this
      // root's Store, as without another root (the other root's elements go until its reload).
      if (!(await firewall.intact())) {
        this.deps.log.warn({ roots: others }, 'firewall tables still differ from this version after adding this root\'s elements: rebuilt from this root\'s store (the other root\'s elements come back with its `network reload`)');
        await firewall.restore(state);
        return { networks: state.networks.length, endpoints: state.endpoints.length };
      }
      this.deps.log.warn({ roots: others, networks: state.networks.length, endpoints: state.endpoints.length }, 'another tsrun root uses this network namespace: its firewall elements kept, this root\'s added');
      return { networks: state.networks.length, endpoints: state.endpoints.length };
    }
    await firewall.restore(state);
    this.deps.log.info({ networks: state.networks.length, endpoints: state.endpoints.length, force: opts.force === true }, 'firewall table rebuilt');
    return { networks: state.networks.length, endpoints: state.endpoints.length };
  }

  /** Lib directories of the other tsrun roots whose bridges are in this namespace (linux-bridge.ts
   * bridgeOwner). */
  private async otherRoots(): Promise<string[]> {
    const host = Rtnl.open();
    try {
      const roots = new Set<string>();
      const mine = new Set(await this.networks.names());
      for (const link of await host.listLinks()) {
        const owner = bridgeOwner(link);
        if (owner && maybeOthers(owner, mine)) roots.add(owner.root ?? `(a bridge made before roots were told apart: network ${owner.network})`);
      }
      return [...roots];
    } finally {
      host.close();
    }
  }

  /** The firewall of tsrun's own namespace. */
  firewall(): FirewallBackend {
    return this.deps.firewall();
  }

  /**
   * Tears down every endpoint of the container; idempotent. `netnsGoing`: see DetachOptions.
   * `unrecorded`: the caller knows no setup of this container runs (a stale claim reclaimed): what
   * an attach killed before its record holds goes too (releaseUnrecorded); 'if-none' only when the
   * container has no record (a teardown's usual path, with records, pays nothing for it).
   */
  /** `network`: only the container's endpoint on that network (`network disconnect`, a connect's
   * undo); its other networks stay wired. */
  async detach(containerId: string, opts: DetachOptions & { unrecorded?: boolean | 'if-none'; network?: string } = {}): Promise<number> {
    return this.withHostLock('shared', () => this.detachHeld(containerId, opts));
  }

  private async detachHeld(containerId: string, opts: DetachOptions & { unrecorded?: boolean | 'if-none'; network?: string }): Promise<number> {
    const log = this.deps.log.child({ containerId });
    const records = (await endpointsOf(this.deps.store, containerId)).filter((r) => opts.network === undefined || r.network === opts.network);
    // Only where the endpoints were built: a poststop run from another namespace builds nothing there.
    const here = netnsId(THREAD_NETNS);
    if (records.some((r) => r.hostNetns === here)) await this.repairFirewall().catch((err: Error) => log.warn({ err: err.message }, 'firewall self-check failed'));
    for (const rec of records) await this.detachEndpoint(rec, log, opts);
    if (records.length > 0) log.info({ endpoints: records.length }, 'detached');
    if (opts.unrecorded === true || (opts.unrecorded === 'if-none' && records.length === 0)) await this.releaseUnrecordedHeld(containerId, log, opts.network);
    if (records.some((r) => r.resolver)) await this.syncDns(false, log, [containerId]);
    return records.length;
  }

  /**
   * Releases what an attach of `containerId` killed before it saved its endpoint record still holds
   * (a record is what a detach works from, and an attach saves it last): address leases naming the
   * container (on `network`, or on any), then, when no record of the container is left, its host
   * port reservations and firewall elements, and the veth named for it on those networks. What
   * `tsrun gc` collects, for callers that know no setup of the container runs: a reclaimed stale
   * claim (the same `run --name` again: without this its old firewall elements failed it once, and
   * its lease stayed until gc), a CNI DEL (a runtime never runs one beside an ADD of the container).
   * In a cluster store only this host's leases. Returns how many leases and ports it released.
   */
  async releaseUnrecorded(containerId: string, log: Logger, network?: string): Promise<number> {
    return this.withHostLock('shared', () => this.releaseUnrecordedHeld(containerId, log, network));
  }

  private async releaseUnrecordedHeld(containerId: string, log: Logger, network?: string): Promise<number> {
    const store = this.deps.store;
    const records = await endpointsOf(store, containerId);
    const named = new Set(records.flatMap((r) => [r.ipv4, r.ipv6].flatMap((a) => (a ? [keyLayout.lease(r.network, canonicalAddress(a.address))] : []))));
    const cluster = clusterOf(store) !== undefined;
    const hostId = cluster ? await store.get(LOCAL_HOST_ID_KEY) : undefined;
    const released: string[] = [];
    const networks = new Set<string>();
    for (const e of cluster && hostId === undefined ? [] : await store.list(network === undefined ? 'ipam/' : `ipam/${network}/`)) {
      const lease = parseLeaseKey(e.key);
      if (!lease || named.has(e.key)) continue;
      const h = decodeHolder(e.value);
      if (h.container !== containerId || (cluster && h.host !== hostId)) continue;
      if (await store.deleteIf(e.key, e.value)) {
        released.push(e.key);
        networks.add(lease.network);
      }
    }
    // The container may still be attached elsewhere (another network's record: a CNI ADD to a
    // second network killed, a DEL of that one): its reservations, firewall elements and veths
    // other than those records name go, theirs stay. Before, with any record left, all of them
    // stayed, and gc keeps them too (the container is alive).
    const recordedPorts = new Set(records.flatMap((r) => r.ports.map(portKey)));
    const ports = await store.list('hostports/');
    for (const e of ports) if (e.value === containerId && !recordedPorts.has(e.key) && (await store.deleteIf(e.key, e.value))) released.push(e.key);
    if (released.length > 0) {
      // With another tsrun root in this namespace, a container of the same name there tags its
      // firewall elements alike and its veth has the same name on a network of the same name:
      // its elements are not purged (this root's leftovers stay, as gc leaves them), nor is a
      // veth deleted that is a port of another root's bridge.
      const others = await this.otherRoots();
      if (others.length === 0) await this.deps.firewall().purge({ container: containerId, keep: records.map(firewallEndpointOf) });
      else log.warn({ roots: others }, 'another tsrun root uses this network namespace: the firewall elements of a killed attach are left');
      const host = Rtnl.open();
      try {
        for (const net of networks) {
          if (records.some((r) => r.network === net)) continue;
          const link = await host.getLink(hostVethName(containerId, net));
          if (link?.kind !== 'veth') continue;
          const master = link.master === undefined ? undefined : await host.getLink(link.master);
          const owner = master && bridgeOwner(master);
          if (owner && foreign(owner)) continue;
          await host.deleteLink(link.index);
        }
      } finally {
        host.close();
      }
    }
    if (released.length > 0) log.warn({ released }, 'released what an attach killed before its record held');
    return released.length;
  }

  /** The resolver learns of a change before the caller goes on; DNS never fails a container. A
   * resolver that cannot start (a full run directory) is said in one line on stderr too: the
   * container runs, but its names do not resolve until a later command (gc) starts one. */
  async syncDns(start: boolean, log: Logger = this.deps.log, containers?: readonly string[]): Promise<void> {
    try {
      await this.deps.dns?.sync(start, containers);
    } catch (err) {
      log.warn({ err }, 'could not update the DNS resolver');
      if ((err as Error).name === 'ResolverStartError') process.stderr.write(`tsrun: warning: ${(err as Error).message} (names will resolve once it runs: tsrun gc starts it)\n`);
    }
  }

  async detachEndpoint(rec: EndpointRecord, log: Logger, opts: DetachOptions = {}): Promise<void> {
    // The host side lives where attach ran, which may not be where we are now. A namespace
    // identity from another boot names nothing: what is left of it can only be here.
    const hostPath = sameBoot(rec.bootId) ? findNetnsPath(rec.hostNetns) : THREAD_NETNS;
    const here = hostPath === THREAD_NETNS;
    const host = hostPath ? Rtnl.open(here ? undefined : hostPath) : undefined;
    const firewall = hostPath ? this.deps.firewall(here ? undefined : hostPath) : undefined;
    const fwEndpoint = firewallEndpointOf(rec);
    try {
      await runAll(
        [
          {
            description: 'unpublish ports',
            run: async () => {
              // A port guard's elements (every bridge port has them) go even without a published port.
              if (!firewall || (rec.ports.length === 0 && !fwEndpoint.port)) return;
              // Still holding every port's reservation means no one else can hold its element.
              const exclusive = (await Promise.all(rec.ports.map((p) => holdsPort(this.deps.store, p, rec.containerId)))).every(Boolean);
              await firewall.removeEndpoint(fwEndpoint, { exclusive });
            },
          },
          { description: `delete ${rec.hostIfname || `${rec.ifname} in the container`}`, run: () => this.driverFor(rec.driver).detach(rec, host, this.deps.store, { ...opts, log }) },
          {
            // After the ports are unpublished, so no new packet re-creates a DNATed flow; before
            // the leases are released, so the next holder of an address finds its mark.
            description: 'forget conntrack flows',
            run: async () => {
              if (!hostPath || this.driverFor(rec.driver).hostFirewall === false) return;
              // Not an address leased to someone else since (a stale record's late teardown): its
              // flows are now the new holder's, whose allocation was the time to forget the old.
              const addrs = (
                await Promise.all(
                  [rec.ipv4, rec.ipv6].map(async (a) => (a !== undefined && !(await this.ipam.leasedToAnother(rec.network, a.address, rec.containerId, a.lease)) ? [a.address] : [])),
                )
              ).flat();
              if (addrs.length === 0) return;
              const hostId = safeId(hostPath);
              // Flushed when an address is handed out again (conntrack-reuse.ts), not now.
              if (flushAtReuse(this.deps.store) && hostId !== undefined) await markForFlush(this.deps.store, rec.network, addrs, hostId);
              else await forgetFlows(addrs, log, here ? undefined : hostPath);
            },
          },
          ...rec.ports.map((p) => ({ description: `release host port ${p.hostPort}/${p.protocol}`, run: () => releasePort(this.deps.store, p, rec.containerId) })),
          ...[rec.ipv4, rec.ipv6]
            .filter((a): a is EndpointAddress => a !== undefined)
            .map((a) => ({ description: `release ${a.address}`, run: async () => void (await this.ipam.release(rec.network, a.address, rec.containerId, a.lease)) })),
          { description: 'delete endpoint record', run: () => deleteEndpoint(this.deps.store, rec.containerId, rec.network) },
          ...(this.driverFor(rec.driver).afterRecordDeleted ? [{ description: 'withdraw what the record re-published meanwhile', run: () => this.driverFor(rec.driver).afterRecordDeleted!(rec, this.deps.store) }] : []),
        ],
        log,
      );
    } finally {
      host?.close();
    }
  }

  /** Records a network and builds its host-side pieces (bridge, addresses, firewall elements)
   * in one transaction: a failure leaves no definition and no bridge behind. */
  async createNetwork(input: NetworkCreateInput): Promise<NetworkDef> {
    return this.withClusterLock(() => this.withHostLock('exclusive', () => this.createNetworkHeld(input)));
  }

  private async createNetworkHeld(input: NetworkCreateInput): Promise<NetworkDef> {
    const log = this.deps.log.child({ network: input.name });
    const host = Rtnl.open();
    try {
      const bridge = normalizeNetworkInput(input).bridge; // validates names first
      // The bridge of a network removed elsewhere (another host of the cluster) stays here until
      // gc, and its subnet's route refused that subnet to every new network: gone first, as gc
      // would (the host lock is held exclusive, as gc holds it).
      const names = new Set(await this.networks.names());
      for (const link of await host.listLinks()) {
        const gone = staleBridgeNetwork(link, names);
        if (gone === undefined) continue;
        await host.deleteLink(link.index);
        await this.deps.firewall().purge({ network: gone });
        log.info({ bridge: link.name, of: gone }, 'removed the bridge of a network that no longer exists');
      }
      const routes = await hostRouteCidrs(host);
      const occupied = bridge !== '' && (await host.getLink(bridge)) !== undefined; // "": macvlan, ipvlan
      return await Transaction.run(log, async (tx) => {
        const net = await tx.step(`record network ${input.name}`, () => this.networks.create(input, routes), async (n) => void (await this.networks.remove(n.name)));
        if (occupied) throw new ConflictError(`interface ${net.bridge} already exists: choose another --bridge`);
        const driver = this.driverFor(net.driver);
        tx.onRollback(`remove the host side of ${net.name}`, () => driver.removeNetwork(net, host));
        await driver.ensureNetwork(net, host, tx, log);
        if (driver.hostFirewall !== false) {
          const changed = ensureHostSysctls(THREAD_NETNS, net);
          if (Object.keys(changed).length > 0) await this.recordSysctls(changed, log);
          const firewall = this.deps.firewall();
          await tx.step('firewall base and network', async () => {
            await firewall.ensureBase();
            await firewall.addNetwork(firewallNetwork(net));
          }, () => firewall.removeNetwork(firewallNetwork(net)));
        }
        log.info({ def: net }, 'network created');
        return net;
      });
    } finally {
      host.close();
    }
  }

  /** Removes a network: refused while containers are attached, unless `force` detaches them. */
  async removeNetwork(name: string, force: boolean): Promise<void> {
    return this.withClusterLock(() => this.withHostLock('exclusive', () => this.removeNetworkHeld(name, force)));
  }

  private async removeNetworkHeld(name: string, force: boolean): Promise<void> {
    if (await this.networks.unreadable(name)) return this.removeUnreadableNetwork(name, force);
    const net = await this.networks.require(name);
    const remote = (await this.driverFor(net.driver).remoteEndpoints?.(net, this.deps.store)) ?? [];
    if (remote.length > 0) throw new ConflictError(`network ${name} has ${remote.length} container(s) on other hosts (${remote.slice(0, 3).join(', ')}): stop them there first`);
    const attached = (await allEndpoints(this.deps.store)).filter((e) => e.network === net.name);
    if (attached.length > 0 && !force) {
      throw new ConflictError(`network ${name} has ${attached.length} attached container(s) (${attached.map((e) => e.containerId).slice(0, 3).join(', ')}): stop them or use --force`);
    }
    const log = this.deps.log.child({ network: name });
    for (const ep of attached) await this.detachEndpoint(ep, log);
    const host = Rtnl.open();
    try {
      const firewall = this.deps.firewall();
      const viaHost = this.driverFor(net.driver).hostFirewall !== false;
      await runAll(
        [
          { description: 'remove firewall elements', run: async () => void (viaHost && (await firewall.removeNetwork(firewallNetwork(net)))) },
          { description: `remove the host side (${net.bridge || net.parent})`, run: () => this.driverFor(net.driver).removeNetwork(net, host) },
          { description: 'forget the flows of released addresses', run: async () => void (flushAtReuse(this.deps.store) && (await flushMarks(this.deps.store, net.name, log))) },
          { description: 'remove address hints', run: async () => void (await Promise.all((await this.deps.store.list(`ipam/${net.name}/`)).map((e) => this.deps.store.deleteIf(e.key)))) },
          { description: 'remove the definition', run: async () => void (await this.networks.remove(net.name)) },
        ],
        log,
      );
      log.info('network removed');
    } finally {
      host.close();
      // Whether or not containers were attached: a running resolver may still listen on the
      // gateway (it keeps a network's listener while its bridge holds the address, docs/dns.md),
      // and it learns here that the network and its bridge are gone. Never fails the removal.
      await this.syncDns(false, log);
    }
  }

  /** The network's definition, its bridge as the kernel sees it, and its endpoints. */
  /**
   * `network rm` of a network whose definition does not parse: its containers' records still say
   * how to detach them, its bridge is found by its alias and its firewall elements by their owner
   * tag; then the definition goes. (An overlay's VNI reservation, named only by the definition,
   * stays.)
   */
  private async removeUnreadableNetwork(name: string, force: boolean): Promise<void> {
    const log = this.deps.log.child({ network: name });
    const attached = (await allEndpoints(this.deps.store)).filter((e) => e.network === name);
    if (attached.length > 0 && !force) {
      throw new ConflictError(`network ${name} has ${attached.length} attached container(s) (${attached.map((e) => e.containerId).slice(0, 3).join(', ')}): stop them or use --force`);
    }
    for (const ep of attached) await this.detachEndpoint(ep, log);
    const host = Rtnl.open();
    try {
      await runAll(
        [
          { description: 'remove firewall elements', run: async () => void (await this.deps.firewall().purge({ network: name })) },
          {
            description: 'remove its bridge',
            run: async () => {
              for (const link of await host.listLinks()) if (isBridgeOf(link, name)) await host.deleteLink(link.index);
            },
          },
          { description: 'remove address hints', run: async () => void (await Promise.all((await this.deps.store.list(`ipam/${name}/`)).map((e) => this.deps.store.deleteIf(e.key)))) },
          { description: 'remove the definition', run: async () => void (await this.networks.remove(name)) },
        ],
        log,
      );
      log.warn('network with an unreadable definition removed');
    } finally {
      host.close();
    }
  }

  async inspectNetwork(name: string): Promise<Record<string, unknown>> {
    const net = await this.networks.require(name);
    const host = Rtnl.open();
    try {
      // macvlan/ipvlan networks have no bridge: their parent is what the kernel can show.
      const link = await host.getLink(net.bridge || net.parent!);
      const endpoints = (await allEndpoints(this.deps.store)).filter((e) => e.network === net.name);
      return {
        ...net,
        [net.bridge ? 'bridgeState' : 'parentState']: link ? { exists: true, index: link.index, up: link.up, mtu: link.mtu, mac: link.mac } : { exists: false },
        endpoints: endpoints.map((e) => ({
          containerId: e.containerId,
          ifname: e.ifname,
          hostIfname: e.hostIfname,
          mac: e.mac,
          ipv4: e.ipv4?.address,
          ipv6: e.ipv6?.address,
          ports: e.ports,
        })),
        ...((await this.driverFor(net.driver).inspect?.(net, this.deps.store)) ?? {}),
      };
    } finally {
      host.close();
    }
  }

  /** True when `rec` describes the namespace at `netnsPath` as it is now: same boot, same
   * namespace identity, the same holder process (hook), and its interface still there (a freed
   * namespace's inode can be reused by a new pin within one boot). The interface's MAC alone does
   * not tell: it follows from the address (drivers/mac.ts), so the address's previous holder had
   * the same, and a container that can add links can make one. Where the record names its veth
   * pair, the pair must be the one attach made: the container end at the recorded peer index,
   * and the host end still there (it goes with its peer when the old namespace dies). */
  private async isLiveEndpoint(rec: EndpointRecord, netnsPath: string, container: Rtnl, host: Rtnl): Promise<boolean> {
    if (!sameBoot(rec.bootId) || !endpointAlive(rec, new Set([rec.containerNetns]))) return false;
    if (rec.containerNetns !== netnsId(netnsPath)) return false;
    const link = await container.getLink(rec.ifname);
    if (link === undefined || link.mac !== rec.mac) return false;
    if (rec.hostLink) {
      if (rec.hostLink.peer !== undefined && link.index !== rec.hostLink.peer) return false;
      if (rec.hostNetns === netnsId(THREAD_NETNS) && vethVerdict(await host.getLink(rec.hostLink.index), rec.hostIfname, rec.hostLink) !== 'ours') return false;
    }
    return true;
  }

  /**
   * Reserves a host port; when another container holds it and every endpoint record of that
   * container is from another boot (it cannot be running), its endpoints are torn down first.
   */
  /**
   * Refuses a mapping whose host port a process of the host listens on (runtime/host-listeners.ts):
   * the DNAT would take that service's connections. Listeners on port 53 at an address inside a
   * tsrun subnet (the resolvers on the gateways) are left out: the publish chain never DNATs
   * those (nft-rules.ts, rule j), so nothing of theirs is taken.
   */
  private async checkHostListeners(ports: PortMapping[]): Promise<void> {
    if (ports.length === 0) return;
    let listeners = hostListenersFor(ports);
    if (listeners.length === 0) return;
    if (listeners.some((l) => l.port === 53)) {
      const subnets = (await this.networks.list()).flatMap((n) => [n.subnet4, n.subnet6]).filter((c): c is string => !!c).map((c) => parseSubnet(c));
      listeners = listeners.filter((l) => l.port !== 53 || isUnspecified(parseAddress(l.address)) || !subnets.some((s) => contains(s, parseAddress(l.address))));
    }
    for (const p of ports) {
      const l = clashingListener(p, listeners);
      if (!l) continue;
      const at = p.hostIp === undefined ? '' : p.hostIp.includes(':') ? `[${p.hostIp}]:` : `${p.hostIp}:`;
      throw new ConflictError(`cannot publish ${at}${p.hostPort}/${p.protocol}: a process of the host listens on ${listenerText(l)}, and publishing would take its connections (stop it, or publish another host port)`);
    }
  }

  private async reservePortReclaiming(p: PortMapping, containerId: string, log: Logger): Promise<void> {
    try {
      await reservePort(this.deps.store, p, containerId);
      return;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      const holders = await portHolders(this.deps.store, p);
      let reclaimed = false;
      for (const holder of holders) {
        if (holder === containerId) continue;
        const recs = await endpointsOf(this.deps.store, holder);
        if (recs.length === 0 || recs.some((r) => sameBoot(r.bootId))) continue;
        log.warn({ holder, port: p.hostPort }, 'host port held by a container from another boot: tearing its endpoints down');
        for (const r of recs) await this.detachEndpoint(r, log);
        reclaimed = true;
      }
      if (!reclaimed) throw err;
    }
    await reservePort(this.deps.store, p, containerId);
  }

  /**
   * An attach with a MAC its caller chose runs `fn` (its wiring, up to the saved record) alone
   * among such attaches of the network: the driver's duplicate-MAC check (refuseTakenMac in
   * linux-bridge.ts) reads the records, and a record is saved only at the end, so two attaches
   * with the same chosen MAC could both pass it. IPAM takes no lock (leases are create-if-absent
   * keys), so this is a lock of its own: a StoreLock across processes (a dead holder's key is
   * broken), a per-key queue within one (StoreLock lets its own process through). Other attaches,
   * whose MAC follows from their leased address, never wait for it.
   */
  private async withChosenMacLock<T>(mac: string | undefined, network: string, fn: () => Promise<T>): Promise<T> {
    if (mac === undefined) return fn();
    return oneAtATime(`chosen-mac:${network}`, async () => {
      const release = await new StoreLock(this.deps.store, `locks/chosen-mac/${network}`).exclusive();
      try {
        return await fn();
      } finally {
        await release();
      }
    });
  }

  /**
   * Runs `fn` holding this host's lock: shared for attach and detach (they never wait for each
   * other), exclusive for network create/rm and gc (so they never see an attach half done).
   */
  async withHostLock<T>(mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
    const lock = this.deps.hostLock;
    if (!lock) return fn();
    const release: Release = mode === 'shared' ? await lock.shared() : await lock.exclusive();
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /**
   * Runs `fn` holding the cluster's network lock, when definitions live in a cluster store (etcd):
   * network create and rm on any two hosts are then serialized (a VXLAN id, the subnet checks
   * against the other networks, a definition removed under a create). Taken before the host lock,
   * always in that order. Without a cluster store: nothing (no store round trip either).
   */
  async withClusterLock<T>(fn: () => Promise<T>): Promise<T> {
    const cluster = clusterOf(this.deps.store);
    if (!cluster) return fn();
    const lock = new StoreLock(cluster, CLUSTER_NETWORK_LOCK, {
      // A holder that vanished on another host (whose process this host cannot check) is broken
      // after a minute: create and rm take seconds.
      leaseMs: 60_000,
      timeoutMs: 90_000,
      onWait: (heldBy) => this.deps.log.info({ heldBy, cluster: cluster.name }, 'waiting for the cluster network lock'),
    });
    const release = await lock.exclusive();
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  private async recordSysctls(changed: Record<string, string>, log: Logger): Promise<void> {
    log.info({ changed }, 'host sysctls set');
    for (const [key, before] of Object.entries(changed)) {
      // The first value seen is the host's own: keep it, never overwrite it with ours.
      // Keys in the slash form (names with '.') are recorded in the dotted form: one key segment.
      await this.deps.store.createIfAbsent(`host/sysctls/${key.replaceAll('/', '.')}`, before);
    }
  }
}

/** The bridge port the anti-spoofing guard checks: the host end of the veth and the container's MAC. */
/** The firewall's view of a recorded endpoint: its published ports and its port guard. */
function firewallEndpointOf(rec: EndpointRecord): FirewallEndpoint {
  return { containerId: rec.containerId, ipv4: rec.ipv4?.address, ipv6: rec.ipv6?.address, ports: rec.ports, port: guardPort(rec) };
}

function guardPort(ep: { hostIfname: string; mac: string }): FirewallEndpoint['port'] {
  return ep.hostIfname && ep.mac ? { ifname: ep.hostIfname, mac: ep.mac } : undefined;
}

export function firewallNetwork(net: NetworkDef): FirewallNetwork {
  return {
    name: net.name,
    bridge: net.bridge,
    subnets4: net.subnet4 ? [net.subnet4] : [],
    subnets6: net.subnet6 ? [net.subnet6] : [],
    internal: net.internal,
    icc: net.icc,
  };
}

/**
 * Published host addresses must be the wildcard or an address of this host (the namespace tsrun
 * runs in): otherwise the host's own traffic to that address, meant for another machine, would
 * land in the container. 127.0.0.0/8 is local as a whole (the kernel's local route on lo).
 */
export async function checkLocalHostIps(ports: PortMapping[], host: Rtnl): Promise<void> {
  const wanted = ports.filter((p) => p.hostIp !== undefined && !isUnspecified(parseAddress(p.hostIp)));
  if (wanted.length === 0) return;
  // Only the families asked for: the IPv6 dump holds a link-local address per container veth, so
  // dumping both grew with the containers on the host (44 us with one, 1 ms with 200).
  const families = [...new Set(wanted.map((p) => parseAddress(p.hostIp!).family))];
  const dumped = families.length === 1 ? await host.listAddresses(undefined, families[0]) : await host.listAddresses();
  const local = new Set(dumped.map((a) => canonicalAddress(a.address)));
  for (const p of wanted) {
    const ip = canonicalAddress(p.hostIp!);
    if (local.has(ip) || contains((LOOPBACK4 ??= parseSubnet('127.0.0.0/8')), parseAddress(ip))) continue;
    throw new UserError(`cannot publish ${ip.includes(':') ? `[${ip}]` : ip}:${p.hostPort}: ${ip} is not an address of this host (use one of its addresses, or none for all)`);
  }
}

// Parsed on first use: parsing at load evaluated ipaddr.js (~1 ms) in every process loading the
// engine, also in those (a CNI DEL, a poststop) that parse no address.
let LOOPBACK4: ReturnType<typeof parseSubnet> | undefined;

/**
 * Destinations of the host's routes, except default, IPv6 link-local and multicast, and ::1. The
 * routes of tsrun's own bridges are among them; networks are checked before routes, so a clash
 * with one names the network rather than its route.
 */
export async function hostRouteCidrs(host: Rtnl): Promise<string[]> {
  const routes = [...(await host.listRoutes(4)), ...(await host.listRoutes(6))];
  return routes.map((r) => r.dst).filter((d) => d !== 'default' && !d.startsWith('fe80:') && !d.startsWith('ff00:') && d !== '::1/128');
}
