// The macvlan driver: each container gets a macvlan child of the network's parent interface, with
// a MAC of its own, an address from the network's IPAM and the segment's gateway as its default
// route. The container appears on the parent's segment like one more machine; there is no NAT.
//
// Modes (per child): bridge (children of one parent reach each other inside the host), private
// (they cannot, not even through the wire), vepa (child-to-child traffic goes out to the switch,
// which must hairpin it back), passthru (one child takes the parent whole: one container per
// passthru network at a time).
//
// The kernel's rule: the parent's own stack never talks to its macvlan children. Frames the host
// sends out of the parent go to the wire, and the wire does not send them back, so the host
// cannot reach its own macvlan containers (nor they the host's address on the parent). Everyone
// else on the segment can.
import type { NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { MacvlanMode } from '../netlink/types.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Transaction } from '../tx.js';
import type { EndpointRecord } from '../records.js';
import type { Logger } from '../log.js';
import type { AttachContext, DriverEndpoint, NetworkDriver } from './driver.js';
import { attachSubif, checkParent, detachSubif, validateSubifNetwork, type SubifSpec } from './subif.js';

export class MacvlanDriver implements NetworkDriver {
  readonly hostFirewall = false;

  validate(net: NetworkDef): Issue[] {
    return validateSubifNetwork(net);
  }

  /** Nothing is shared on the host: the parent is the user's and is only checked. */
  async ensureNetwork(net: NetworkDef, host: Rtnl, _tx: Transaction, _log: Logger): Promise<void> {
    await checkParent(net, host);
  }

  attach(ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint> {
    const mode = (ctx.net.mode ?? 'bridge') as MacvlanMode;
    const spec: SubifSpec = {
      kind: 'macvlan',
      routeViaDevice: false,
      create: (host, o) =>
        host.createMacvlan({ name: o.name, parentIndex: o.parentIndex, nsFd: o.nsFd, mode, ...(o.mtu !== undefined ? { mtu: o.mtu } : {}), ...(o.mac ? { mac: o.mac } : {}) }),
      explain: (code, net) => explainMacvlan(code, net, mode),
    };
    return attachSubif(spec, ctx, tx);
  }

  detach(rec: EndpointRecord, _host: Rtnl | undefined): Promise<void> {
    return detachSubif('macvlan', rec);
  }

  /** The parent is the user's: a removed network leaves it as it was. */
  async removeNetwork(_net: NetworkDef, _host: Rtnl): Promise<void> {}
}

/** Kernel refusals of a macvlan create, in words. */
export function explainMacvlan(code: string | undefined, net: NetworkDef, mode: MacvlanMode): string | undefined {
  switch (code) {
    case 'EBUSY':
      return `parent ${net.parent} is busy: it is a bridge port, or it already serves ipvlan children`;
    case 'EINVAL':
      return mode === 'passthru'
        ? `passthru gives parent ${net.parent} to one container, and it already has a macvlan child (another container, or another network on it)`
        : `parent ${net.parent} is held by a passthru macvlan, or refuses macvlan children`;
    case 'EADDRINUSE':
      return `the MAC address is already used by another child of ${net.parent}`;
    default:
      return undefined;
  }
}
