// The host side of an overlay network: the network's bridge (shared with the bridge driver's
// code) with a VXLAN device as one of its ports. The device learns nothing and floods nothing:
// the agent programs its FDB (remote MAC → remote host) and neighbour table (remote IP → MAC),
// and with ARP proxy on, ARP requests are answered from that table on the spot.
import { ConflictError, UserError } from '../../config/errors.js';
import type { NetworkDef } from '../../config/networks.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Link } from '../netlink/types.js';
import type { Transaction } from '../tx.js';
import type { Logger } from '../log.js';
import { vxlanName } from './keys.js';

/** VXLAN over IPv4 adds 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50;
export const VXLAN_PORT = 4789;
export const VXLAN_ALIAS_PREFIX = 'tsrun-ovl:';

export interface Vtep {
  address: string;
  /** The underlay interface holding `address`. */
  underlayIndex: number;
  underlayMtu: number;
  mac: string;
}

/** The containers' MTU: the network's, lowered so the encapsulated frame fits the underlay. */
export function overlayMtu(net: NetworkDef, underlayMtu: number): number {
  return Math.min(net.mtu, underlayMtu - VXLAN_OVERHEAD);
}

/** Creates (or finds, race-safely) the network's VXLAN device, a port of its bridge, up. */
export async function ensureVxlan(net: NetworkDef, host: Rtnl, vtep: Vtep, tx: Transaction, log: Logger): Promise<Link> {
  if (net.vni === undefined) throw new UserError(`overlay network ${net.name} has no VXLAN id`);
  const name = vxlanName(net.vni);
  const bridge = await host.getLink(net.bridge);
  if (!bridge) throw new UserError(`bridge ${net.bridge} of network ${net.name} is missing`);
  let dev = await host.getLink(name);
  if (dev && dev.kind !== 'vxlan') throw new UserError(`interface ${name} exists and is not a VXLAN device`);
  if (!dev) {
    await tx.step(
      `create vxlan ${name} (id ${net.vni}) on ${net.bridge}`,
      async () => {
        try {
          await host.createVxlan({
            name,
            vni: net.vni!,
            local: vtep.address,
            port: VXLAN_PORT,
            learning: false,
            proxy: true,
            parentIndex: vtep.underlayIndex,
            mtu: overlayMtu(net, vtep.underlayMtu),
            mac: vtep.mac,
            alias: `${VXLAN_ALIAS_PREFIX}${net.name}`,
            master: bridge.index,
            up: true,
          });
          log.info({ vxlan: name, vni: net.vni, local: vtep.address, network: net.name }, 'vxlan device created');
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err; // created by a concurrent attach
        }
      },
      // The device is shared by every container of the network on this host: a failed attach
      // leaves it (as it leaves the bridge); network rm removes both.
    );
    dev = await host.getLink(name);
    if (!dev || dev.kind !== 'vxlan') throw new UserError(`vxlan device ${name} vanished during attach`);
  }
  if (dev.master !== bridge.index) await host.setMaster(dev.index, bridge.index);
  if (!dev.up) await host.setUp(dev.index);
  return dev;
}

/** Removes the network's VXLAN device (idempotent). */
export async function removeVxlan(net: NetworkDef, host: Rtnl): Promise<void> {
  if (net.vni !== undefined) await host.deleteLink(vxlanName(net.vni));
}
