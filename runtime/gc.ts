// Garbage collection: removes what a crash left behind. Everything tsrun creates is findable:
// endpoint records and leases in the Store, tsv* veth ends (live and dying) and tagged bridges in the host
// namespace, firewall elements tagged with their owner, namespace pins and container state
// directories under the run directory. What is in use is never touched: a container counts as
// alive while its supervising tsrun process lives or any process or pin still holds its
// network namespace.
import { readdirSync, rmSync, statSync } from 'node:fs';
import { pidfilePath, resolverState } from './dns/paths.js';
import path from 'node:path';
import type { Settings } from '../config/settings.js';
import type { Logger } from './log.js';
import type { Engine } from './engine.js';
import type { Store } from './store/store.js';
import { allEndpoints, tornRecordKeys, type EndpointRecord } from './records.js';
import { claimInProgress, containersDir, isAlive, readRecord, removeContainerDir } from './containers.js';
import { endpointAlive } from './liveness.js';
import { deletePinnedNetns } from './netns/netns.js';
import { safeId } from './netns/find.js';
import { Rtnl } from './netlink/rtnl.js';
import { bridgeOwner, isDyingVeth, maybeOthers, staleBridgeNetwork } from './drivers/linux-bridge.js';
import { settleRestartAsides } from './restart-aside.js';
import { removeCgroup } from './cgroups/cleanup.js';
import { cgroupsPathFor } from './cgroups/resources.js';
import type { FirewallBackend } from './firewall/backend.js';
import { ownerComment } from './firewall/nft-rules.js';
import { LocalStore } from './store/local.js';
import { sweepDeadUsers } from './netns-users.js';
import { clusterOf } from './store/scoped.js';
import { keyLayout, parseLeaseKey } from './ipam/ipam.js';
import { decodeHolder } from './ipam/holder.js';
import { canonicalAddress } from '../config/address.js';
import { isContainerId } from '../config/ids.js';
import { sameBoot } from './boot.js';
import { ENDPOINTS_PREFIX, LOCAL_HOST_ID_KEY, parseOverlayEndpoint, parseOverlayKey } from './overlay/keys.js';
import { publishedBy } from './drivers/overlay.js';

export interface GcReport {
  containers: string[];
  endpoints: string[];
  leases: string[];
  hostPorts: string[];
  links: string[];
  bridges: string[];
  firewallOwners: string[];
  pins: string[];
  /** Directories of restarts that died half-way (runtime/restart-aside.ts): put back as the
   * container ("restored <id>"), or removed where the id holds a container again. */
  restarts?: string[] | undefined;
  /** The DNS resolver: running (needed and alive), restarted (needed, was dead), stopping (no
   * longer needed: told to re-read and exit), absent. */
  resolver?: 'running' | 'restarted' | 'stopping' | 'absent' | undefined;
}

export interface GcDeps {
  engine: Engine;
  store: Store;
  firewall: FirewallBackend;
  /** Stops and deletes the runtime's container `id` if it still exists (the shim: runc delete --force). */
  deleteRuntimeContainer(id: string): Promise<void>;
  /** Detached containers (kept until `tsrun rm`): 'live' while their monitor or process runs,
   * 'kept' once cleaned up (by this call if their monitor died without doing it); undefined for
   * any other container. */
  detachedContainer?(id: string): Promise<'live' | 'kept' | undefined>;
  log: Logger;
}

/** Holds the host lock exclusive throughout: gc never sees an attach, a detach or a network
 * create/rm half done (a lease before its record, a veth being wired, a new bridge). */
export async function collectGarbage(settings: Settings, deps: GcDeps): Promise<GcReport> {
  return deps.engine.withHostLock('exclusive', () => collectHeld(settings, deps));
}

async function collectHeld(settings: Settings, deps: GcDeps): Promise<GcReport> {
  const { engine, store, firewall, log } = deps;
  const report: GcReport = { containers: [], endpoints: [], leases: [], hostPorts: [], links: [], bridges: [], firewallOwners: [], pins: [] };
  const netnsDir = path.join(settings.runDir, 'netns');

  // 1. Shim containers whose tsrun process died: runc state, pins, cgroups, state directories.
  const liveShim = new Set<string>();
  // Not a dot name: a restart's old state directory, set aside while it runs (step 1b).
  for (const id of listDir(containersDir(settings.runDir)).filter((n) => !n.startsWith('.'))) {
    const rec = readRecord(settings.runDir, id);
    // A claim between its mkdir and its record's rename (claimContainer leaves it alone too).
    // Removed, the claimer's record write failed and its run ended with 'create state directory'.
    if (!rec && claimInProgress(settings.runDir, id)) {
      liveShim.add(id);
      continue;
    }
    const detached = rec?.detached === 'monitored' ? await deps.detachedContainer?.(id) : undefined;
    if (detached === 'live') {
      liveShim.add(id);
      continue;
    }
    if (detached === 'kept') continue;
    if (rec && isAlive(rec.ownerPid, rec.ownerStart)) {
      liveShim.add(id);
      continue;
    }
    await deps.deleteRuntimeContainer(id);
    deletePinnedNetns(path.join(netnsDir, id));
    removeCgroup(cgroupsPathFor(id));
    removeContainerDir(settings.runDir, id);
    report.containers.push(id);
  }

  // 1b. A restart's set-aside directory whose restart died (after step 1, which removed a new
  // container that restart had half made): put back while the id is free, else removed.
  const asides = settleRestartAsides(settings.runDir);
  if (asides.restored.length + asides.removed.length > 0) report.restarts = [...asides.restored.map((id) => `restored ${id}`), ...asides.removed.map((id) => `removed ${id}`)];

  // 2. Pins nobody owns any more.
  for (const id of listDir(netnsDir)) {
    if (liveShim.has(id)) continue;
    deletePinnedNetns(path.join(netnsDir, id));
    report.pins.push(id);
  }

  // 3. Endpoints whose container namespace is gone.
  const pinned = new Set(listDir(netnsDir).map((id) => safeId(path.join(netnsDir, id))));
  const records = await allEndpoints(store);
  // endpointAlive also says no to records from another boot (runtime/boot.ts).
  const alive = (e: EndpointRecord) => liveShim.has(e.containerId) || endpointAlive(e, pinned);
  const keep: EndpointRecord[] = [];
  for (const e of records) {
    if (alive(e)) {
      keep.push(e);
      continue;
    }
    await engine.detachEndpoint(e, log);
    report.endpoints.push(`${e.containerId}/${e.network}`);
  }
  // Records torn by a power loss (volatile keys, store/open.ts): nothing to detach from them.
  for (const key of await tornRecordKeys(store)) {
    if (await store.deleteIf(key)) report.endpoints.push(key.slice('endpoints/'.length));
  }
  const owners = new Set([...keep.map((e) => e.containerId), ...liveShim]);

  // 4. Leases and host ports without an endpoint (an attach that crashed before its record).
  // A lease is kept when a live endpoint record names it (exact value: records carry their
  // lease's holder) or its container's tsrun process lives; a lease from another boot never is.
  // With a cluster store the leases are every host's: only this host's own are judged (their
  // holder names this host), never another host's, nor a bare pre-holder value (holder.ts).
  const expected = new Map<string, string>();
  for (const e of keep) for (const a of [e.ipv4, e.ipv6]) if (a) expected.set(keyLayout.lease(e.network, canonicalAddress(a.address)), a.lease ?? e.containerId);
  const cluster = clusterOf(store);
  const hostId = cluster ? await store.get(LOCAL_HOST_ID_KEY) : undefined;
  for (const entry of cluster && hostId === undefined ? [] : await store.list('ipam/')) {
    if (!parseLeaseKey(entry.key)) continue; // allocation hints
    const h = decodeHolder(entry.value);
    if (cluster && (h.host === undefined || h.host !== hostId)) continue;
    // A torn value (a truncated file: empty, half a holder) under a key a live record names is
    // still that container's address: collected, the next container was given it while the first
    // still used it (a duplicate address on the network).
    const torn = expected.has(entry.key) && !isContainerId(h.container);
    const live = expected.get(entry.key) === entry.value || torn || (liveShim.has(h.container) && sameBoot(h.boot));
    if (!live && (await store.deleteIf(entry.key, entry.value))) report.leases.push(entry.key);
  }
  // This host's published overlay endpoints whose container has no live record here.
  if (cluster && hostId !== undefined) {
    for (const entry of await cluster.list(ENDPOINTS_PREFIX)) {
      const k = parseOverlayKey(entry.key);
      if (k?.kind !== 'endpoint' || k.hostId !== hostId) continue;
      const ep = parseOverlayEndpoint(entry.value);
      const rec = keep.find((r) => r.containerId === k.containerId && r.network === k.network);
      const live = (rec !== undefined && (!ep || publishedBy(ep, rec))) || liveShim.has(k.containerId);
      if (!live && (await cluster.deleteIf(entry.key, entry.value))) report.endpoints.push(entry.key);
    }
  }
  for (const entry of await store.list('hostports/')) {
    if (!owners.has(entry.value) && (await store.deleteIf(entry.key, entry.value))) report.hostPorts.push(entry.key);
  }

  // 5. Links: tsv* veth ends no record knows, bridges of networks that no longer exist.
  const networks = new Set(await engine.networks.names());
  const knownVeths = new Set(keep.map((e) => e.hostIfname));
  const host = Rtnl.open();
  // Another tsrun root's bridges in this namespace (linux-bridge.ts bridgeOwner): their ports,
  // networks and containers are in a Store this gc does not read, so they are not this gc's to
  // call orphans. Before, a gc of one root removed every container veth, bridge and firewall
  // element of the other's running containers.
  const foreignRoots = new Map<number, string>();
  try {
    const links = await host.listLinks();
    for (const link of links) {
      const owner = bridgeOwner(link);
      if (owner && maybeOthers(owner, networks)) foreignRoots.set(link.index, owner.root ?? `(a bridge made before roots were told apart: network ${owner.network})`);
    }
    for (const link of links) {
      if (link.master !== undefined && foreignRoots.has(link.master)) continue;
      if (link.kind === 'veth' && /^tsv[0-9a-f]{8}$/.test(link.name) && !knownVeths.has(link.name)) {
        if (await host.deleteLink(link.index)) report.links.push(link.name);
      }
      // A detached delete that never finished (dismissVeth): the link is already set aside, no
      // record names it. A deleter still at work meanwhile finds it gone, which is as good.
      if (isDyingVeth(link)) {
        if (await host.deleteLink(link.index)) report.links.push(link.name);
      }
      const gone = staleBridgeNetwork(link, networks);
      if (gone !== undefined) {
        if (await host.deleteLink(link.index)) report.bridges.push(link.name);
        await firewall.purge({ network: gone });
      }
    }
  } finally {
    host.close();
  }

  // 6. Firewall elements whose owner is gone. With another root in this namespace, an owner this
  // Store does not know may be that root's: left alone (its own gc collects its orphans).
  if (foreignRoots.size > 0) log.warn({ roots: [...new Set(foreignRoots.values())] }, 'another tsrun root uses this network namespace: firewall elements of containers and networks unknown here are left to it');
  const fwOwners = foreignRoots.size > 0 ? { containers: [], networks: [] } : await firewall.listOwners();
  for (const c of fwOwners.containers) {
    if (ownsElementsOf([...owners], c)) continue;
    await firewall.purge({ container: c });
    report.firewallOwners.push(`container ${c}`);
  }
  for (const n of fwOwners.networks) {
    if (networks.has(n)) continue;
    await firewall.purge({ network: n });
    report.firewallOwners.push(`network ${n}`);
  }

  // 7. Registrations of container:<id> users whose processes are gone.
  report.pins.push(...sweepDeadUsers(settings.runDir).map((root) => `users of ${root}`));

  // 8. Temp files and tombstones of the local store; exit codes kept for waits of removed
  // containers (shim/lifecycle/record.ts keepExitCode) once no wait can still want them.
  if (store instanceof LocalStore) await store.sweep();
  const exited = path.join(settings.runDir, 'exited');
  for (const f of listDir(exited)) {
    const file = path.join(exited, f);
    try {
      if (Date.now() - statSync(file).mtimeMs > 10 * 60_000) rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }

  // 9. The DNS resolver: restarted when endpoints need it and it died, told to re-read (and so
  // to exit) when none does.
  const dnsState = resolverState(settings.runDir);
  if (dnsState === 'dead') rmSync(pidfilePath(settings.runDir), { force: true });
  if (keep.some((e) => e.resolver)) {
    await engine.syncDns(true, log);
    report.resolver = dnsState === 'running' ? 'running' : 'restarted';
  } else if (dnsState === 'running') {
    await engine.syncDns(false, log);
    report.resolver = 'stopping';
  } else {
    report.resolver = 'absent';
  }
  log.info({ report }, 'gc done');
  return report;
}

/**
 * True when one of `owners` (container ids) tags its firewall elements with `commentOwner` (an
 * element comment without its "ctr:" prefix). Long ids are shortened in comments to a prefix and a
 * hash of the whole id, so the comment is computed for each owner and compared whole: a prefix
 * match could never match the hashed form and would purge live containers' published ports.
 */
export function ownsElementsOf(owners: readonly string[], commentOwner: string): boolean {
  return owners.some((o) => ownerComment('ctr', o) === `ctr:${commentOwner}`);
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
