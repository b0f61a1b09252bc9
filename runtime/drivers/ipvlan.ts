// The ipvlan driver: each container gets an ipvlan child of the network's parent. Children share
// the parent's MAC and are told apart by their addresses. Modes (one per parent: the kernel
// applies a new child's mode to all children of that parent, which is why `network create`
// refuses a second mode on one parent):
//   l2   the child does its own ARP; the container's default route is the network's gateway.
//   l3   the child is routed: the container's default route points at the device itself, and
//        after the container's stack the parent's namespace (the host's routing table) decides
//        where packets go. No broadcast or multicast reaches the children, so the segment does
//        not learn their addresses by ARP: the LAN reaches them through a route to the subnet
//        via the host's address on the parent. Children of one parent reach each other
//        directly, whatever their subnets.
//   l3s  l3, with incoming traffic also passing the host's netfilter (conntrack, iptables).
// As with macvlan, the host's own stack cannot reach its ipvlan children through the parent.
//
// Kernels without CONFIG_IPVLAN (or without the module) refuse the link kind: network create
// and attach check for it first and say so in one line.
import { UserError } from '../../config/errors.js';
import type { NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { IpvlanMode } from '../netlink/types.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Transaction } from '../tx.js';
import type { EndpointRecord } from '../records.js';
import type { Logger } from '../log.js';
import type { AttachContext, DriverEndpoint, NetworkDriver } from './driver.js';
import { attachSubif, checkParent, detachSubif, validateSubifNetwork } from './subif.js';

export const IPVLAN_MISSING = 'this kernel has no ipvlan support (CONFIG_IPVLAN: modprobe ipvlan failed / link type ipvlan unknown)';

export class IpvlanDriver implements NetworkDriver {
  readonly hostFirewall = false;
  /** The kernel's answer does not change while this process lives. */
  private supported: boolean | undefined;

  validate(net: NetworkDef): Issue[] {
    return validateSubifNetwork(net);
  }

  async ensureNetwork(net: NetworkDef, host: Rtnl, _tx: Transaction, _log: Logger): Promise<void> {
    this.supported ??= await host.linkKindSupported('ipvlan');
    if (!this.supported) throw new UserError(`--driver ipvlan: ${IPVLAN_MISSING}`);
    await checkParent(net, host);
  }

  attach(ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint> {
    if (ctx.mac !== undefined) throw new UserError(`--mac cannot be set on ipvlan network ${ctx.net.name}: ipvlan interfaces share the MAC of their parent`);
    const mode = (ctx.net.mode ?? 'l2') as IpvlanMode;
    return attachSubif(
      {
        kind: 'ipvlan',
        routeViaDevice: mode !== 'l2',
        create: (host, o) => host.createIpvlan({ name: o.name, parentIndex: o.parentIndex, nsFd: o.nsFd, mode, ...(o.mtu !== undefined ? { mtu: o.mtu } : {}) }),
        explain: (code, net) => explainIpvlan(code, net),
      },
      ctx,
      tx,
    );
  }

  detach(rec: EndpointRecord, _host: Rtnl | undefined): Promise<void> {
    return detachSubif('ipvlan', rec);
  }

  async removeNetwork(_net: NetworkDef, _host: Rtnl): Promise<void> {}
}

export function explainIpvlan(code: string | undefined, net: NetworkDef): string | undefined {
  switch (code) {
    case 'EOPNOTSUPP':
      return IPVLAN_MISSING;
    case 'EBUSY':
      return `parent ${net.parent} is busy: it is a bridge port, or it already serves macvlan children`;
    case 'EADDRINUSE':
      return `an address of this container is already used by another ipvlan child of ${net.parent}`;
    default:
      return undefined;
  }
}
