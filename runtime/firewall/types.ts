// What the firewall layer needs to know about networks and containers: plain data, built by the
// engine from its network definitions and endpoint records, so detach can run from a record alone.
import type { PortMapping } from '../../config/ports.js';

export type { PortMapping, Protocol } from '../../config/ports.js';

/** One tsrun network as the firewall sees it. */
export interface FirewallNetwork {
  /** Network name (tags the set elements, so gc can find orphans). */
  name: string;
  /** Host-side bridge interface of the network. */
  bridge: string;
  /** CIDRs, e.g. "10.88.0.0/16"; host bits are masked off. */
  subnets4: string[];
  subnets6: string[];
  /** No traffic forwarded into or out of the network, and no outbound NAT. */
  internal: boolean;
  /**
   * Inter-container communication. Not enforced here: icc=false is bridge port isolation,
   * set by the netlink layer. Carried so one record describes the network completely.
   */
  icc: boolean;
}

/** One container's published ports on one network. */
export interface FirewallEndpoint {
  containerId: string;
  /** The container's address on the network that carries the published ports. */
  ipv4?: string | undefined;
  ipv6?: string | undefined;
  ports: PortMapping[];
}
