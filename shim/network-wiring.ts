// How `tsrun run` gets its network namespace: none and host are namespace choices made in the
// spec; a network means a namespace tsrun creates and pins, wired by the engine in this process
// before runc starts; container:<id> joins another container's namespace.
//
// Sharing (container:<id>): every container with a namespace of its own registers as a user of
// it, and joiners register as users of the namespace they join (runtime/netns-users.ts has the
// rule and why it is race-free). The owner's endpoint is torn down by the last user to leave, so
// an owner that exits first leaves its endpoint to its joiners and returns at once.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { containerDir } from '../runtime/containers.js';
import { dnsEnabled } from '../runtime/dns/table.js';
import { RESOLV_CONF_NAME, needsResolverToForward, type DnsPlan } from './resolv-conf.js';
import type { NetworkWiring } from './run.js';
import { leaveNamespace as leaveWith, wireWithoutNetwork } from './network-plain.js';
import { UserError } from '../config/errors.js';
import { DEFAULT_NETWORK } from '../config/net-mode.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../runtime/log.js';
import type { Engine } from '../runtime/engine.js';
import type { DetachOptions } from '../runtime/drivers/driver.js';

/** Where a wired container's network namespace is pinned (network connect enters it there too). */
export function pinPath(runDir: string, containerId: string): string {
  return path.join(runDir, 'netns', containerId);
}

export const shimNetworkWiring: NetworkWiring = {
  async wire(o, containerId, settings, tx, log, opts) {
    const plain = await wireWithoutNetwork(o, containerId, settings, tx, log, opts);
    if (plain !== undefined) return plain;
    switch (o.net.kind) {
      case 'container': {
        const target = o.net.containerId;
        if (o.publish.length > 0) throw new UserError(`-p cannot be used with --net container:${target}: publish the ports on container ${target}`);
        for (const [flag, value] of [['--ip', o.ip], ['--ip6', o.ip6], ['--mac', o.mac]] as const) {
          if (value !== undefined) throw new UserError(`${flag} cannot be used with --net container:${target}: the container uses the interfaces of ${target}`);
        }
        if (target === containerId) throw new UserError(`--net container:${target}: a container cannot join itself`);
        const users = await import('../runtime/netns-users.js');
        const { deletePinnedNetns, netnsId } = await import('../runtime/netns/netns.js');
        const t = await users.findJoinTarget(settings.runDir, target);
        await tx.step(`join the network namespace of ${target}`, () => users.registerJoiner(settings.runDir, t.root, containerId, process.pid), () => leaveNamespace(settings, t.root, containerId, log));
        const pin = pinPath(settings.runDir, containerId);
        await tx.step('pin the shared network namespace', () => users.pinExistingNetns(t.nsPath, pin), () => deletePinnedNetns(pin));
        // Checked after registering: had the target left in between, it may not have seen us.
        if (!users.isLiveUser(settings.runDir, t.root, target) || netnsId(pin) !== t.nsId) throw new UserError(`--net container:${target}: container ${target} is not running`);
        log.info({ joined: target, owner: t.root }, 'sharing the network namespace of another container');
        const ownerResolv = path.join(containerDir(settings.runDir, t.root), RESOLV_CONF_NAME);
        return { kind: 'path', path: pin, ...(existsSync(ownerResolv) ? { dns: { kind: 'shared', file: ownerResolv } } : {}) };
      }
      case 'network': {
        const { createPinnedNetns, deletePinnedNetns } = await import('../runtime/netns/netns.js');
        const { openEngine } = await import('../runtime/context.js');
        const users = await import('../runtime/netns-users.js');
        const pin = pinPath(settings.runDir, containerId);
        await tx.step('create the container network namespace', () => createPinnedNetns(pin), () => deletePinnedNetns(pin));
        const network = o.net.network;
        const dnsServers = o.dns ?? [];
        // A network without names still uses the resolver when the host's resolvers are all on its
        // loopback (systemd-resolved): a copied resolv.conf would have no server left.
        const resolver = needsResolverToForward(settings, dnsServers) ? true : undefined;
        let attachDone!: (ok: boolean) => void;
        attached = new Promise<boolean>((resolve) => (attachDone = resolve));
        const attach = async (): Promise<DnsPlan> => {
          let ok = false;
          try {
            const plan = await attachNow();
            ok = true;
            return plan;
          } finally {
            attachDone(ok);
          }
        };
        // The engine (the store), the registration and the attach: with runc started first (the
        // foreground run, shim/runc-gate.ts), all of it while runc starts up; only the pinned
        // namespace (the spec's path) comes before.
        const attachNow = async (): Promise<DnsPlan> => {
          const handle = await openEngine(settings, log);
          tx.onRollback('close the store', () => handle.close());
          wired = handle.engine;
          // Before the attach: an earlier namespace wired under this id may still have users.
          const { reclaimed } = await tx.step(
            'register as the owner of its network namespace',
            () => users.registerOwner(settings.runDir, containerId, process.pid, { wired: true }),
            // The endpoint goes with the last user of the namespace: this one, or a joiner later.
            // This one: the pin goes next (the step before), so the veth can go with the namespace.
            () => leaveNamespace(settings, containerId, containerId, log, handle.engine, { netnsGoing: true }),
          );
          if (reclaimed) await handle.engine.detach(containerId, { unrecorded: true }); // left by users that all died
          if ((o.networkAliases ?? []).length > 0) {
            const def = await handle.engine.networks.get(network);
            if (!(def ? dnsEnabled(def) : network !== DEFAULT_NETWORK)) throw new UserError(`--network-alias: network ${network} has no name resolution (aliases need a network with DNS on)`);
          }
          const rec = await tx.step(`attach to network ${network}`, () =>
            handle.engine.attach({ containerId, netnsPath: pin, network, ip: o.ip, ip6: o.ip6, mac: o.mac, ports: o.publish, aliases: o.networkAliases, dnsServers, resolver }),
          );
          // `tsrun network connect`s of a detached container being created again (restart): part
          // of its configuration, attached in their order as eth1, eth2…; torn down with the rest
          // (the owner's teardown detaches every endpoint of the container).
          let named = rec;
          for (const [i, c] of (o.connections ?? []).entries()) {
            const more = await tx.step(`attach to network ${c.network}`, () =>
              handle.engine.attach({ containerId, netnsPath: pin, network: c.network, ip: c.ip, ip6: c.ip6, mac: c.mac, ports: [], aliases: c.aliases, dnsServers, ifname: `eth${i + 1}` }),
            );
            // The resolver of the first network that has one, as network connect set it.
            if (!named.resolver && more.resolver) named = more;
          }
          // The network's definition only for a resolver's search domain: a copied resolv.conf needs
          // none, and reading it again cost every other run a store read.
          const def = named.resolver ? await handle.engine.networks.get(named.network) : undefined;
          return named.resolver
            ? { kind: 'resolver', addresses: [named.ipv4?.gateway, named.ipv6?.gateway].filter((g): g is string => Boolean(g)), searchDomain: def && dnsEnabled(def) ? def.name : undefined }
            : { kind: 'copy', dns: dnsServers, hostNetwork: false };
        };
        // The foreground run attaches while runc starts (shim/runc-gate.ts): the namespace is
        // pinned, the rest (and with it the resolv.conf's content) comes later.
        if (opts?.deferAttach === true) return { kind: 'path', path: pin, dns: { kind: 'copy', dns: dnsServers, hostNetwork: false }, attach };
        return { kind: 'path', path: pin, dns: await attach() };
      }
      default:
        throw new Error(`--net ${o.net.kind}: not a network to wire`); // none and host returned above
    }
  },

  async release(containerId, _stale, settings, log) {
    const { deletePinnedNetns } = await import('../runtime/netns/netns.js');
    const { rootOf } = await import('../runtime/netns-users.js');
    const root = rootOf(settings.runDir, containerId);
    if (root !== undefined) {
      // Its own namespace, left by its last user, whose pin goes next: the kernel can take the
      // veth with it (DetachOptions.netnsGoing). A joiner leaving last: the owner's pin is not
      // ours to judge, so its veth is deleted outright.
      // Its attach may have died before its record: what it held then goes too (unrecorded).
      await leaveNamespace(settings, root, containerId, log, undefined, { netnsGoing: root === containerId, unrecorded: true });
    } else {
      // Never registered (it died during setup): whatever it attached is its own.
      await withEngine(settings, log, (engine) => engine.detach(containerId, { unrecorded: true }));
    }
    // No pin (--net none, host): nothing can be mounted there, and unmounting would load libc's
    // bindings (~10 ms) for nothing.
    const pin = pinPath(settings.runDir, containerId);
    if (existsSync(pin)) deletePinnedNetns(pin);
  },
};

/** The engine of the network this process wired (run.cjs's foreground door), for checkAhead. */
let wired: Engine | undefined;
/** Settles when this process's attach is done (true) or failed (false): with runc started first
 * (shim/runc-gate.ts) the check waits for it, or it would read the ruleset mid-attach, and the
 * attach's own commit would then send the detach to the full check anyway. */
let attached: Promise<boolean> | undefined;

/**
 * While the container runs (tsrun only waits for runc meanwhile), the firewall self-check its
 * detach will make: found intact, it is remembered with the ruleset's generation, and the detach
 * then reads only that generation (runtime/firewall/backend.ts intactOverNetlink), unless
 * anything was committed since, by anyone, in which case it checks again in full and repairs.
 * Never throws: the detach's own check is what repairs.
 */
export async function checkAhead(): Promise<void> {
  try {
    if ((await attached) === false) return;
    await wired?.firewall().intact();
  } catch {
    // the detach checks (and says why) again
  }
}

/** `id` stops using `root`'s namespace; the last user out detaches the owner's endpoint, with the
 * engine given or one opened for it. */
function leaveNamespace(settings: Settings, root: string, id: string, log: Logger, engine?: Engine, opts: DetachOptions & { unrecorded?: boolean } = {}): Promise<void> {
  return leaveWith(settings, root, id, log, async (r) => {
    if (engine) await engine.detach(r, opts);
    else await withEngine(settings, log, (e) => e.detach(r, opts));
  });
}

/** The engine is loaded only on the paths that wire something (not for --net none or host). */
async function withEngine<T>(settings: Settings, log: Logger, fn: (engine: Engine) => Promise<T>): Promise<T> {
  return (await import('../runtime/context.js')).withEngine(settings, log, fn);
}
