// `tsrun network connect` and `tsrun network disconnect`: one more network for a container that
// runs (detached or in the foreground), or one less, as docker's verbs do. The engine's attach
// wires it (the same transaction as run's: lease, veth into the container's namespace as eth1,
// eth2…, host port guard and firewall elements, record, the resolver told of its names), so a
// failure leaves nothing; the teardown of the container (stop, rm, gc, conmon's exit command, the
// foreground run's own end) detaches every endpoint it has, this one included. A detached
// container's connections are part of its configuration (lifecycle.json's options): restart
// attaches them again, as docker's start does. See docs/cli.md and docs/detached.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConflictError, SystemError, UserError } from '../config/errors.js';
import { DEFAULT_NETWORK, type NetMode } from '../config/net-mode.js';
import { checkDnsName, renderContainerResolvConf } from '../config/resolv-conf.js';
import { parseAddressOf } from '../config/address.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import type { Engine } from '../runtime/engine.js';
import type { Store } from '../runtime/store/store.js';
import { endpointsOf, type EndpointRecord } from '../runtime/records.js';
import { containerDir } from '../runtime/containers.js';
import { dnsEnabled } from '../runtime/dns/table.js';
import { isLiveUser, rootOf } from '../runtime/netns-users.js';
import { Rtnl } from '../runtime/netlink/rtnl.js';
import { faultPause, Transaction } from '../runtime/tx.js';
import { configuredNetworks, modeRefusal, nextIfname, withConnection, withoutNetwork } from './connect-plan.js';
import { pathsOf, readLifecycle, writeLifecycle } from './lifecycle/record.js';
import { pinPath } from './network-wiring.js';
import { resolveId } from './lifecycle/resolve.js';
import { currentView, isLive } from './lifecycle/signals.js';
import { RESOLV_CONF_NAME, readHostResolvConf } from './resolv-conf.js';
import type { RunOptions } from './run.js';
import { pollSignals, SETUP_INTERRUPTS } from './supervise.js';

export interface ConnectRequest {
  network: string;
  container: string;
  ip?: string | undefined;
  ip6?: string | undefined;
  mac?: string | undefined;
  aliases: string[];
}

/** Flags as typed, checked before anything is looked up (one line, 125). */
export function checkConnectRequest(r: ConnectRequest): ConnectRequest {
  if (r.ip !== undefined) parseAddressOf(4, r.ip, `invalid --ip ${JSON.stringify(r.ip)}`);
  if (r.ip6 !== undefined) parseAddressOf(6, r.ip6, `invalid --ip6 ${JSON.stringify(r.ip6)}`);
  return { ...r, aliases: [...new Set(r.aliases.map((a) => checkDnsName(a, '--alias')))] };
}

/** The network mode of a live container: its record's options (detached), else what its
 * namespace registration says (netns-users.ts: an owner with a pin is wired; a joiner names its
 * owner; --net host registers nothing). */
function netModeOf(runDir: string, id: string, options: { net: NetMode } | undefined): NetMode {
  if (options !== undefined) return options.net;
  const root = rootOf(runDir, id);
  if (root === undefined) return { kind: 'host' };
  if (root !== id) return { kind: 'container', containerId: root };
  return existsSync(pinPath(runDir, id)) ? { kind: 'network', network: DEFAULT_NETWORK } : { kind: 'none' };
}

interface Target {
  id: string;
  /** Run -d or create: its connections are kept in its configuration. */
  detached: boolean;
  /** Created, running or paused: its namespace is there to be wired. */
  live: boolean;
  options: RunOptions | undefined;
}

async function target(settings: Settings, name: string, verb: 'connect' | 'disconnect'): Promise<Target> {
  const id = resolveId(settings.runDir, name);
  const v = await currentView(settings, id);
  if (v.record.detached === 'setup' || v.status === 'creating') throw new UserError(`container ${id} is still being created`);
  const t: Target = { id, detached: v.record.detached !== undefined, live: isLive(v), options: v.lifecycle?.options };
  const refusal = modeRefusal(netModeOf(settings.runDir, id, t.options), id, verb);
  if (refusal !== undefined) throw new UserError(refusal);
  return t;
}

/** One container's connects and disconnects, one at a time (a lock file in its state directory,
 * released by the kernel should this process die). */
async function oneAtATime<T>(settings: Settings, id: string, fn: () => Promise<T>): Promise<T> {
  const { FileLock } = await import('../runtime/host-lock.js');
  const release = await new FileLock(path.join(containerDir(settings.runDir, id), 'network.lock'), `network of container ${id}`, { timeoutMs: 30_000 }).exclusive();
  try {
    return await fn();
  } finally {
    await release();
  }
}

function openIn(netnsPath: string): Rtnl {
  try {
    return Rtnl.open(netnsPath);
  } catch (err) {
    throw new UserError(`the network namespace of the container cannot be entered: ${(err as Error).message}`);
  }
}

/** The namespace's link names (a user's own eth1 inside must not be taken for free). */
async function linksIn(netnsPath: string): Promise<string[]> {
  const rt = openIn(netnsPath);
  try {
    return (await rt.listLinks()).map((l) => l.name);
  } finally {
    rt.close();
  }
}

/** The container's endpoints in interface order (eth0 first): the first network decides its
 * default route and its resolver, as at its creation. */
function inOrder(records: EndpointRecord[]): EndpointRecord[] {
  const n = (r: EndpointRecord) => Number(/^eth(\d+)$/.exec(r.ifname)?.[1] ?? 1e9);
  return [...records].sort((a, b) => n(a) - n(b));
}

/**
 * The container's resolv.conf (tsrun's file in its state directory, bind-mounted over its own;
 * rewritten in place, so the mount sees it) after its networks changed: the resolver of the first
 * network that has one, else the host's servers, as at its creation (network-wiring.ts). docker
 * does the same when a container on the default bridge joins a user network (its embedded DNS
 * starts and resolv.conf is rebuilt). Unchanged content is not written again.
 */
async function refreshResolvConf(settings: Settings, engine: Engine, id: string, records: EndpointRecord[]): Promise<void> {
  const file = path.join(containerDir(settings.runDir, id), RESOLV_CONF_NAME);
  if (!existsSync(file)) return; // none of ours: the bundle's own, or the rootfs has none
  const named = inOrder(records).find((r) => r.resolver);
  const host = readHostResolvConf(settings);
  let text: string;
  if (named) {
    const def = await engine.networks.get(named.network);
    text = renderContainerResolvConf({ host, resolver: [named.ipv4?.gateway, named.ipv6?.gateway].filter((g): g is string => Boolean(g)), searchDomain: def && dnsEnabled(def) ? def.name : undefined });
  } else {
    text = renderContainerResolvConf({ host, dns: records.find((r) => r.dnsServers !== undefined)?.dnsServers ?? [], hostNetwork: false });
  }
  if (readFileSync(file, 'utf8') === text) return;
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new SystemError(`write the container's resolv.conf ${file}`, err);
  }
}

/**
 * A default route again once the network that had it is gone (the container's first): through the
 * gateway of the first network left that has one of that family, as docker moves its gateway
 * endpoint. Best effort: the container runs on either way.
 */
async function restoreDefaultRoutes(netnsPath: string, left: EndpointRecord[], log: Logger): Promise<void> {
  const rt = openIn(netnsPath);
  try {
    for (const family of [4, 6] as const) {
      if ((await rt.listRoutes(family)).some((r) => r.dst === 'default')) continue;
      const via = inOrder(left).find((r) => (family === 4 ? r.ipv4 : r.ipv6)?.gateway !== undefined);
      if (!via) continue;
      const link = await rt.getLink(via.ifname);
      if (!link) continue;
      const gateway = (family === 4 ? via.ipv4 : via.ipv6)!.gateway!;
      await rt.addRoute({ dst: 'default', gateway, ifindex: link.index, ...(family === 6 ? { family: 6 as const } : {}) }).catch((err: Error) => log.warn({ err: err.message, gateway }, 'no default route after disconnect'));
    }
  } finally {
    rt.close();
  }
}

export async function connectContainer(settings: Settings, log: Logger, req: ConnectRequest): Promise<void> {
  const r = checkConnectRequest(req);
  const t = await target(settings, r.container, 'connect');
  if (!t.live) throw new UserError(`container ${t.id} is not running: tsrun network connect works on running (or created) containers`);
  const id = t.id;
  const clog = log.child({ containerId: id, network: r.network });
  // A signal while connecting undoes the connection, as one during run's setup does.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => void (interrupted ??= sig);
  for (const sig of SETUP_INTERRUPTS) process.on(sig, onSignal);
  const checkInterrupted = () => {
    if (interrupted) throw new UserError(`interrupted by ${interrupted}: not connected`);
  };
  try {
    await oneAtATime(settings, id, () =>
      withEngine(settings, clog, async (engine, store) => {
        await engine.repairFirewall();
        const net = await engine.networks.require(r.network);
        const mine = await endpointsOf(store, id);
        const keep = () => changeOptions(settings, id, (o) => withConnection(o, { network: net.name, ip: r.ip, ip6: r.ip6, mac: r.mac, ...(r.aliases.length > 0 ? { aliases: r.aliases } : {}) }));
        if (mine.some((e) => e.network === net.name)) {
          // Attached but not in the configuration: a connect killed between the two (its record is
          // saved, its configuration not yet written). This one finishes it.
          if (t.detached && t.options !== undefined && !configuredNetworks(t.options).includes(net.name)) {
            keep();
            clog.warn('finished a connect that was killed after its attach');
            return;
          }
          throw new ConflictError(`container ${id} is already connected to network ${net.name}`);
        }
        if (mine.length === 0) throw new UserError(`container ${id} has no network endpoint (it is being set up or torn down)`);
        if (r.aliases.length > 0 && !dnsEnabled(net)) throw new UserError(`--alias: network ${net.name} has no name resolution (aliases need a network with DNS on)`);
        const pin = pinPath(settings.runDir, id);
        // What a connect killed half-way left on this network (a lease, a veth, firewall elements:
        // what an attach makes before its record), released before it is made again.
        await engine.releaseUnrecorded(id, clog, net.name);
        const ifname = nextIfname([...mine.map((e) => e.ifname), ...(await linksIn(pin))]);
        checkInterrupted();
        const tx = new Transaction(clog);
        try {
          const dnsServers = mine.find((e) => e.dnsServers !== undefined)?.dnsServers;
          const rec = await tx.step(
            `connect to network ${net.name}`,
            () => engine.attach({ containerId: id, netnsPath: pin, network: net.name, ip: r.ip, ip6: r.ip6, mac: r.mac, ports: [], aliases: r.aliases, dnsServers, ifname }),
            async () => void (await engine.detach(id, { network: net.name })),
          );
          await tx.step('point resolv.conf at the resolver', () => refreshResolvConf(settings, engine, id, [...mine, rec]), () => refreshResolvConf(settings, engine, id, mine));
          await faultPause('connected'); // tests: a signal (or a kill) once attached, before it is kept
          await pollSignals();
          checkInterrupted();
          // The container may have ended while it was being connected, and its teardown read its
          // records before this one was saved. Still running now, its teardown comes later and
          // finds this record with the others.
          if (!isLive(await currentView(settings, id)) || !isLiveUser(settings.runDir, id, id)) throw new UserError(`container ${id} ended while it was being connected`);
          if (t.detached) keep();
          tx.commit();
          clog.info({ ifname, ipv4: rec.ipv4?.address, ipv6: rec.ipv6?.address }, 'connected');
        } catch (err) {
          await tx.rollback();
          throw err;
        }
      }),
    );
  } finally {
    for (const sig of SETUP_INTERRUPTS) process.off(sig, onSignal);
  }
}

/** A detached container's configuration changed (restart creates it from this). */
function changeOptions(settings: Settings, id: string, change: (o: RunOptions) => RunOptions): void {
  const rec = readLifecycle(settings.runDir, id);
  if (!rec) throw new UserError(`container ${id} has no record to keep its networks in`);
  try {
    writeLifecycle(settings.runDir, { ...rec, options: change(rec.options) });
  } catch (err) {
    throw new SystemError(`write the container's record ${pathsOf(settings.runDir, id).record}`, err);
  }
}

export async function disconnectContainer(settings: Settings, log: Logger, network: string, container: string, force: boolean): Promise<void> {
  const t = await target(settings, container, 'disconnect');
  const id = t.id;
  const clog = log.child({ containerId: id, network });
  const only = () => new UserError(`container ${id}: network ${network} is its only network (connect it to another first, or stop it)`);
  await oneAtATime(settings, id, () =>
    withEngine(settings, clog, async (engine, store) => {
      const mine = t.live ? await endpointsOf(store, id) : [];
      const rec = mine.find((e) => e.network === network);
      const o = t.options;
      const configured = o !== undefined && configuredNetworks(o).includes(network);
      if (!rec && !configured && !force) throw new UserError(`container ${id} is not connected to network ${network}`);
      // The new configuration first: refused (its last network), nothing is torn down.
      const next = o !== undefined && configured ? withoutNetwork(o, network, id) : undefined;
      if (rec) {
        if (mine.length === 1) throw only();
        const left = mine.filter((e) => e !== rec);
        await engine.detach(id, { network });
        await restoreDefaultRoutes(rec.netnsPath, left, clog);
        await refreshResolvConf(settings, engine, id, left);
      }
      if (next !== undefined) changeOptions(settings, id, () => next);
      // -f: what a connect killed half-way left on that network goes too.
      if (t.live && force) await engine.releaseUnrecorded(id, clog, network);
      clog.info('disconnected');
    }),
  );
}

/** The engine loads when a connect or disconnect runs, not when the CLI starts. */
async function withEngine<T>(settings: Settings, log: Logger, fn: (engine: Engine, store: Store) => Promise<T>): Promise<T> {
  return (await import('../runtime/context.js')).withEngine(settings, log, fn);
}
