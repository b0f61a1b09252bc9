// The CNI verbs over the engine. ADD and DEL map (CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME) onto
// engine.attach and engine.detachEndpoint exactly as the hook's stages do with a container's
// state; CHECK compares the kernel with prevResult; GC and STATUS look after the whole network.
//
// Endpoints made here carry `via: 'cni'` in the engine's record, so GC touches only what came in
// through this door: containers that `tsrun run` or the hook wired on the same network are not
// its to collect.
import { ConflictError, NotFoundError, UserError } from '../config/errors.js';
import type { NetworkDef } from '../config/networks.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import type { Engine } from '../runtime/engine.js';
import { listKeys, type Store } from '../runtime/store/store.js';
import { allEndpoints, endpointsOf, type EndpointRecord } from '../runtime/records.js';
import { THREAD_NETNS, netnsId } from '../runtime/netns/netns.js';
import { endpointAlive } from '../runtime/liveness.js';
import { formatAddress, parseInterfaceAddress, parseSubnet } from '../config/address.js';
import { openStore } from '../runtime/store/open.js';
import { decodeHolder } from '../runtime/ipam/holder.js';
import type { PluginConfig } from './config.js';
import { CODES, CniError, type CniEnv } from './protocol.js';
import { bookImport } from '../runtime/load-clock.js';
import { buildResult, expectedFor, type CniResult } from './result.js';

export interface VerbContext {
  env: CniEnv;
  conf: PluginConfig;
  settings: Settings;
  log: Logger;
}

interface Handle {
  engine: Engine;
  store: Store;
  close(): Promise<void>;
}

async function withEngine<T>(ctx: VerbContext, fn: (h: Handle) => Promise<T>): Promise<T> {
  const { openEngine } = await bookImport(() => import('../runtime/context.js'));
  const h = await openEngine(ctx.settings, ctx.log);
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

/** The engine over a store already open (the engine's modules loaded on first use). */
async function engineOver(ctx: VerbContext, store: Store): Promise<Engine> {
  const { engineFor } = await bookImport(() => import('../runtime/context.js'));
  return engineFor(store, ctx.settings, ctx.log);
}

async function withStore<T>(ctx: VerbContext, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ url: ctx.settings.store, libDir: ctx.settings.libDir, log: ctx.log });
  try {
    return await fn(store);
  } finally {
    await store.close?.();
  }
}

/** The identity of CNI_NETNS; a path that does not exist is code 3 (nothing to clean up). */
function netnsIdentity(netns: string): string {
  try {
    return netnsId(netns);
  } catch (err) {
    if (err instanceof NotFoundError) throw new CniError(CODES.unknownContainer, `network namespace ${netns} does not exist`);
    throw new CniError(CODES.invalidEnvironment, `invalid environment: CNI_NETNS ${netns} cannot be opened`, (err as Error).message);
  }
}

export async function add(ctx: VerbContext): Promise<CniResult> {
  const { env, conf, log } = ctx;
  const containerId = env.containerId!;
  const ifname = env.ifname!;
  const netns = env.netns!;
  const nsId = netnsIdentity(netns);
  if (nsId === netnsId(THREAD_NETNS)) throw new CniError(CODES.invalidEnvironment, `invalid environment: CNI_NETNS ${netns} is the plugin's own network namespace (the host's): refusing to wire it`);

  return withEngine(ctx, async ({ engine, store }) => {
    const net = await ensureNetwork(engine, conf);
    const existing = (await endpointsOf(store, containerId)).find((r) => r.network === net.name);
    if (existing) {
      if (existing.containerNetns === nsId && existing.ifname === ifname) {
        log.info('already attached: reporting the existing attachment');
        return resultOf(ctx, net, existing);
      }
      if (existing.containerNetns === nsId) throw new CniError(CODES.conflict, `container ${containerId} is already attached to network ${net.name} as ${existing.ifname}: tsrun gives a container one interface per network`);
      if (endpointAlive(existing)) throw new CniError(CODES.conflict, `container id ${containerId} is already attached to network ${net.name} in another live network namespace`);
      log.warn({ stale: existing }, 'removing the endpoint of an earlier container with this id (its DEL never came)');
      await engine.detachEndpoint(existing, log);
    }

    const rec = await engine.attach({ containerId, netnsPath: netns, network: net.name, ip: conf.ip, ip6: conf.ip6, mac: conf.mac, ports: conf.ports, ifname, aliases: conf.aliases, via: 'cni', cniNetwork: conf.name });
    if (conf.aliases.length > 0 && !rec.resolver) log.info({ aliases: conf.aliases }, `network ${net.name} has no name resolution: the aliases are recorded, not served`);
    if (conf.bandwidth) {
      const { applyBandwidth } = await bookImport(() => import('./bandwidth.js'));
      await applyBandwidth(rec, netns, conf.bandwidth, log).catch(async (err: unknown) => {
        await engine.detachEndpoint(rec, log);
        throw err;
      });
    }
    return resultOf(ctx, net, rec);
  });
}

async function resultOf(ctx: VerbContext, net: NetworkDef, rec: EndpointRecord): Promise<CniResult> {
  let host: { name: string; mac: string } | undefined;
  if (rec.hostIfname) {
    const { Rtnl } = await bookImport(() => import('../runtime/netlink/rtnl.js'));
    const nl = Rtnl.open();
    try {
      const link = await nl.getLink(rec.hostIfname);
      host = { name: rec.hostIfname, mac: link?.mac ?? '' };
    } finally {
      nl.close();
    }
  }
  return buildResult(
    ctx.conf.cniVersion,
    {
      ifname: rec.ifname,
      mac: rec.mac,
      sandbox: ctx.env.netns!,
      mtu: net.mtu,
      host,
      ipv4: rec.ipv4,
      ipv6: rec.ipv6,
      routeViaDevice: net.driver === 'ipvlan' && net.mode !== 'l2',
    },
    ctx.conf.dns ?? resolverDns(net, rec),
    ctx.conf.prevResult,
  );
}

/** With tsrun's resolver serving the network: its gateway addresses, and the network as search
 * domain (what `tsrun run` writes into a container's resolv.conf). */
function resolverDns(net: NetworkDef, rec: EndpointRecord): Record<string, unknown> | undefined {
  if (!rec.resolver) return undefined;
  const nameservers = [rec.ipv4?.gateway ?? net.gateway4, rec.ipv6?.gateway ?? net.gateway6].filter((g): g is string => g !== undefined);
  return nameservers.length > 0 ? { nameservers, search: [net.name] } : undefined;
}

/** The network the config names; an inline one is created on first use and checked after. */
async function ensureNetwork(engine: Engine, conf: PluginConfig): Promise<NetworkDef> {
  const found = await engine.networks.get(conf.network);
  if (found) {
    if (conf.inline) checkInline(found, conf);
    return found;
  }
  if (!conf.inline) throw new CniError(CODES.invalidConfig, `network ${conf.network} not found: create it with tsrun network create, or define it inline (driver, subnet…)`);
  try {
    return await engine.createNetwork(conf.inline);
  } catch (err) {
    // Two ADDs raced to create it: the loser uses the winner's, if it is the same network.
    const now = err instanceof ConflictError ? await engine.networks.get(conf.network) : undefined;
    if (!now) throw err;
    checkInline(now, conf);
    return now;
  }
}

/** An inline definition must still describe the network it created (config changed under it?). */
function checkInline(net: NetworkDef, conf: PluginConfig): void {
  const i = conf.inline!;
  const diff: string[] = [];
  const same = (a: string | undefined, b: string | undefined) => a === undefined || (b !== undefined && canonical(a) === canonical(b));
  if ((i.driver ?? 'bridge') !== net.driver) diff.push(`driver ${i.driver ?? 'bridge'} (it is ${net.driver})`);
  if (!same(i.subnet, net.subnet4)) diff.push(`subnet ${i.subnet} (it is ${net.subnet4 ?? 'none'})`);
  if (!same(i.ipv6Subnet, net.subnet6)) diff.push(`ipv6Subnet ${i.ipv6Subnet} (it is ${net.subnet6 ?? 'none'})`);
  if (i.parent !== undefined && i.parent !== net.parent) diff.push(`parent ${i.parent} (it is ${net.parent ?? 'none'})`);
  if (i.internal !== undefined && i.internal !== net.internal) diff.push(`internal ${i.internal} (it is ${net.internal})`);
  if (i.mtu !== undefined && Number(i.mtu) !== net.mtu) diff.push(`mtu ${i.mtu} (it is ${net.mtu})`);
  if (diff.length > 0) {
    throw new CniError(CODES.invalidConfig, `network ${net.name} exists with another definition: the config asks for ${diff.join(', ')}; remove it with tsrun network rm or change the config`);
  }
}

function canonical(cidr: string): string {
  try {
    return parseSubnet(cidr).cidr;
  } catch {
    return cidr;
  }
}

export async function del(ctx: VerbContext): Promise<void> {
  const { env, conf, log } = ctx;
  const containerId = env.containerId!;
  const ifname = env.ifname!;
  // Usually answered from the store alone: a second DEL, or a DEL after a failed ADD. The engine,
  // when there is something to detach, works over the same open store (one etcd client, not two).
  await withStore(ctx, async (store) => {
    const rec = (await endpointsOf(store, containerId)).find((e) => e.network === conf.network);
    if (!rec) {
      // An ADD killed before it saved its record leaves its lease, host ports, firewall elements
      // and veth: this DEL is the runtime's only call to release them (a re-ADD failed on them).
      const released = await (await engineOver(ctx, store)).releaseUnrecorded(containerId, log, conf.network);
      log.info({ released }, 'no attachment recorded: nothing else to delete');
      return;
    }
    if (rec.ifname !== ifname) {
      log.info({ recorded: rec.ifname }, 'the recorded attachment has another interface name: left alone');
      return;
    }
    // The plugin exits right after, and the runtime deletes the namespace only after DEL: the
    // veth's delete (an RCU grace period) is left to a detached process (dismissVeth).
    await (await engineOver(ctx, store)).detachEndpoint(rec, log, { deferLinkDelete: true });
    log.info('detached');
  });
}

export async function check(ctx: VerbContext): Promise<void> {
  const { env, conf } = ctx;
  const containerId = env.containerId!;
  const ifname = env.ifname!;
  const netns = env.netns!;
  const fail = (msg: string) => new CniError(CODES.checkFailed, `CHECK: ${msg}`);
  if (!conf.prevResult) throw new CniError(CODES.invalidConfig, 'invalid network config: CHECK needs prevResult');
  const expected = expectedFor(conf.prevResult, ifname, netns);
  if (!expected) throw fail(`prevResult lists no interface ${ifname} in ${netns}`);
  const nsId = netnsIdentity(netns);

  await withEngine(ctx, async ({ engine, store }) => {
    const net = await engine.networks.get(conf.network);
    if (!net) throw fail(`network ${conf.network} no longer exists`);
    const rec = (await endpointsOf(store, containerId)).find((r) => r.network === net.name);
    if (!rec || rec.ifname !== ifname) throw fail(`container ${containerId} has no attachment ${ifname} on network ${net.name}`);
    if (rec.containerNetns !== nsId) throw fail(`the attachment of ${containerId} is in another network namespace than ${netns}`);

    const { Rtnl } = await bookImport(() => import('../runtime/netlink/rtnl.js'));
    const inner = Rtnl.open(netns);
    try {
      const link = await inner.getLink(ifname);
      if (!link) throw fail(`${ifname} is missing in ${netns}`);
      if (!link.up) throw fail(`${ifname} is down`);
      if (expected.mac && link.mac.toLowerCase() !== expected.mac) throw fail(`${ifname} has MAC ${link.mac}, prevResult says ${expected.mac}`);
      // On a bridge, tsrun admits the container's frames only from the MAC it wired
      // (anti-spoofing): another one (a later plugin's) leaves the container unreachable.
      if (rec.hostIfname && link.mac.toLowerCase() !== rec.mac.toLowerCase()) {
        throw fail(`${ifname} has MAC ${link.mac}, not ${rec.mac} that tsrun wired: its bridge drops the container's frames (set the MAC through tsrun's mac capability, not a later plugin)`);
      }
      const have = new Set((await inner.listAddresses(link.index)).map((a) => a.cidr));
      for (const a of expected.addresses) if (!have.has(canonicalHost(a))) throw fail(`${ifname} lacks address ${a}`);
      for (const gw of expected.gateways) {
        const family = gw.includes(':') ? 6 : 4;
        const routes = await inner.listRoutes(family);
        if (!routes.some((r) => r.dst === 'default' && r.gateway === gw)) throw fail(`no default route via ${gw} in ${netns}`);
      }
    } finally {
      inner.close();
    }

    if (rec.hostIfname) {
      const host = Rtnl.open();
      try {
        const bridge = await host.getLink(net.bridge);
        const end = await host.getLink(rec.hostIfname);
        if (!end) throw fail(`host interface ${rec.hostIfname} is missing`);
        if (!bridge || end.master !== bridge.index) throw fail(`host interface ${rec.hostIfname} is not on bridge ${net.bridge}`);
      } finally {
        host.close();
      }
    }
    for (const a of [rec.ipv4, rec.ipv6]) {
      if (!a) continue;
      // A lease's value names its holder (runtime/ipam/holder.ts): the record's exact value, or
      // for a record from before holders were recorded, a value naming this container.
      const held = await store.get(`ipam/${net.name}/${a.address}`);
      const mine = held !== undefined && (a.lease !== undefined ? held === a.lease : decodeHolder(held).container === containerId);
      if (!mine) throw fail(`the lease of ${a.address} is not held by ${containerId}`);
    }
  });
}

/** "10.1.0.5/24" as the netlink layer prints it (IPv6 compressed, lower case). */
function canonicalHost(cidr: string): string {
  try {
    const ia = parseInterfaceAddress(cidr);
    return `${formatAddress(ia.address)}/${ia.prefixLength}`;
  } catch {
    return cidr;
  }
}

export async function gc(ctx: VerbContext): Promise<void> {
  const { conf, log } = ctx;
  const valid = new Set((conf.validAttachments ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
  const failures: string[] = [];
  let stale = 0;
  await withStore(ctx, async (store) => {
    // The attachments of this CNI network (the conflist's name): another conflist naming the same
    // tsrun network belongs to another runtime, whose valid list this is not (records made before
    // the name was kept are taken by their tsrun network, as before).
    const mine = (r: EndpointRecord) => r.via === 'cni' && r.network === conf.network && (r.cniNetwork === undefined || r.cniNetwork === conf.name);
    const recs = (await allEndpoints(store)).filter((r) => mine(r) && !valid.has(`${r.containerId}\0${r.ifname}`));
    stale = recs.length;
    if (stale === 0) return;
    const engine = await engineOver(ctx, store);
    for (const rec of recs) {
      try {
        await engine.detachEndpoint(rec, log);
        log.info({ containerId: rec.containerId, ifname: rec.ifname }, 'GC: removed a stale attachment');
      } catch (err) {
        failures.push(`${rec.containerId}/${rec.ifname}: ${(err as Error).message}`);
      }
    }
  });
  if (failures.length > 0) throw new CniError(CODES.tsrunFailed, `GC could not remove ${failures.length} of ${stale} stale attachments`, failures.join('; '));
}

export async function status(ctx: VerbContext): Promise<void> {
  const { conf, settings } = ctx;
  const unavailable = (msg: string, err?: unknown) => new CniError(CODES.notAvailable, msg, err === undefined ? '' : err instanceof UserError ? err.shortMessage : (err as Error).message);
  let endpoints = 0;
  try {
    await withStore(ctx, async (store) => {
      // A read of the network's definition (etcd when clustered) and a write where this host's
      // keys go; the endpoints counted by their keys, none of the records read.
      const net = await store.get(`networks/${conf.network}`);
      if (net === undefined && !conf.inline) throw new CniError(CODES.notAvailable, `network ${conf.network} does not exist: ADD would fail`);
      const probe = `cni/status/probe-${process.pid}`;
      await store.put(probe, new Date().toISOString());
      await store.deleteIf(probe);
      endpoints = (await listKeys(store, 'endpoints/')).length;
    });
  } catch (err) {
    if (err instanceof CniError) throw err;
    throw unavailable(`the store (${settings.store}) is not usable`, err);
  }
  const { listTsrunTable } = await bookImport(() => import('../runtime/firewall/nft.js'));
  let table;
  try {
    table = await listTsrunTable({ nftBinary: settings.nft, terse: true });
  } catch (err) {
    throw unavailable('nftables is not usable', err);
  }
  if (!table && endpoints > 0) throw new CniError(CODES.notAvailableLimited, `table inet tsrun is missing while ${endpoints} endpoint(s) are attached: their NAT and published ports are gone (tsrun gc or the next ADD rebuilds it)`);
}
