// The bridge driver: a Linux bridge per network, a veth pair per container whose peer is created
// directly inside the container's namespace (it never exists in the host namespace, so its name
// cannot collide there), addresses and routes set through the container's own netlink socket.
import { createHash } from 'node:crypto';
import { closeSync } from 'node:fs';
import { ConflictError, UserError } from '../../config/errors.js';
import type { NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { Rtnl } from '../netlink/rtnl.js';
import { getSysctlSync, setSysctlSync } from '../netlink/sysctl.js';
import { openNetnsFd, withNetnsSync } from '../netns/netns.js';
import type { Transaction } from '../tx.js';
import type { EndpointRecord } from '../records.js';
import type { Logger } from '../log.js';
import type { AttachContext, DriverEndpoint, NetworkDriver } from './driver.js';

/** Aliases tag what tsrun created, so gc can tell its links from everyone else's. */
export const BRIDGE_ALIAS_PREFIX = 'tsrun-net:';
export const VETH_ALIAS_PREFIX = 'tsrun-ep:';

/** "tsv" + 8 hex characters of (container, network): stable, so detach can recompute it. */
export function hostVethName(containerId: string, network: string): string {
  return `tsv${createHash('sha256').update(`${containerId}\0${network}`).digest('hex').slice(0, 8)}`;
}

export class BridgeDriver implements NetworkDriver {
  validate(net: NetworkDef): Issue[] {
    return net.subnet4 || net.subnet6 ? [] : [{ path: 'subnet', message: `network ${net.name} has no subnet` }];
  }

  async ensureNetwork(net: NetworkDef, host: Rtnl, tx: Transaction, log: Logger): Promise<void> {
    let bridge = await host.getLink(net.bridge);
    if (bridge && bridge.kind !== 'bridge') throw new UserError(`interface ${net.bridge} exists and is not a bridge: choose another --bridge for network ${net.name}`);
    if (!bridge) {
      await tx.step(`create bridge ${net.bridge}`, async () => {
        try {
          await host.createBridge({ name: net.bridge, mtu: net.mtu, alias: `${BRIDGE_ALIAS_PREFIX}${net.name}`, up: true });
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err; // another attach created it first: fine
        }
      });
      bridge = await host.getLink(net.bridge);
      if (!bridge || bridge.kind !== 'bridge') throw new UserError(`interface ${net.bridge} exists and is not a bridge`);
      log.info({ bridge: net.bridge, network: net.name }, 'bridge created');
    }
    const index = bridge.index;
    const have = new Set((await host.listAddresses(index)).map((a) => a.cidr));
    for (const [subnet, gateway] of [[net.subnet4, net.gateway4], [net.subnet6, net.gateway6]] as const) {
      if (!subnet || !gateway) continue;
      const cidr = `${gateway}/${subnet.split('/')[1]}`;
      if (have.has(cidr)) continue;
      await tx.step(`address ${cidr} on ${net.bridge}`, async () => {
        try {
          await host.addAddress(index, cidr);
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      });
    }
    if (!bridge.up) await host.setUp(index);
  }

  async attach(ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint> {
    const { net, host, container } = ctx;
    const bridge = await host.getLink(net.bridge);
    if (!bridge) throw new UserError(`bridge ${net.bridge} of network ${net.name} vanished during attach`);
    const hostIfname = hostVethName(ctx.containerId, net.name);

    await tx.step(
      `create veth ${hostIfname} with ${ctx.ifname} in the container`,
      () => {
        const fd = openNetnsFd(ctx.containerNetnsPath);
        return host
          .createVeth({
            name: hostIfname,
            peerName: ctx.ifname,
            peerNsFd: fd,
            mtu: net.mtu,
            ...(ctx.mac ? { peerMac: ctx.mac } : {}),
            master: bridge.index,
            up: true,
          })
          .finally(() => closeSync(fd));
      },
      // Deleting one end of a veth deletes both.
      async () => void (await host.deleteLink(hostIfname)),
    );
    const hostEnd = await host.getLink(hostIfname);
    if (!hostEnd) throw new UserError(`veth ${hostIfname} vanished during attach`);
    if (!net.icc) await tx.step(`isolate bridge port ${hostIfname} (icc=false)`, () => host.setBridgePortIsolated(hostEnd.index, true));

    const inner = await container.getLink(ctx.ifname);
    if (!inner) throw new UserError(`${ctx.ifname} did not appear in the container namespace`);
    await tx.step(`configure ${ctx.ifname} in the container`, async () => {
      if (ctx.ipv4) await container.addAddress(inner.index, `${ctx.ipv4.address}/${ctx.ipv4.prefixLength}`);
      if (ctx.ipv6) await container.addAddress(inner.index, `${ctx.ipv6.address}/${ctx.ipv6.prefixLength}`);
      await container.setUp(inner.index);
      await container.setUp('lo');
      if (ctx.ipv4?.gateway) await container.addRoute({ dst: 'default', gateway: ctx.ipv4.gateway, ifindex: inner.index });
      if (ctx.ipv6?.gateway) await container.addRoute({ dst: 'default', gateway: ctx.ipv6.gateway, ifindex: inner.index, family: 6 });
    });
    return { hostIfname, mac: inner.mac };
  }

  async detach(rec: EndpointRecord, host: Rtnl | undefined): Promise<void> {
    if (host) await host.deleteLink(rec.hostIfname); // false when already gone: that is done too
  }

  async removeNetwork(net: NetworkDef, host: Rtnl): Promise<void> {
    await host.deleteLink(net.bridge);
  }
}

/**
 * Host sysctls a bridge network needs, set inside the host-side namespace: forwarding, and
 * route_localnet on the bridge so 127.0.0.1:<published port> can be DNATed to a container.
 * Returns what was changed (key → previous value) so the caller can record it.
 */
export function ensureHostSysctls(hostNetnsPath: string, net: NetworkDef): Record<string, string> {
  const wanted: [string, string][] = [
    ['net.ipv4.ip_forward', '1'],
    [`net.ipv4.conf.${net.bridge}.route_localnet`, '1'],
  ];
  if (net.subnet6) wanted.push(['net.ipv6.conf.all.forwarding', '1']);
  const changed: Record<string, string> = {};
  withNetnsSync(hostNetnsPath, () => {
    for (const [key, value] of wanted) {
      const before = readSysctl(key);
      if (before === value) continue;
      setSysctlSync(key, value);
      changed[key] = before ?? '';
    }
  });
  return changed;
}

function readSysctl(key: string): string | undefined {
  try {
    return getSysctlSync(key).trim();
  } catch {
    return undefined;
  }
}
