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
   * Inter-container communication. icc=false is bridge port isolation (netlink layer) for
   * bridged traffic, and here: no (br . br) pair, so traffic routed back into the same bridge
   * through the gateway is dropped too.
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
  /** The container's bridge port (host end of its veth) and MAC: what it may send is checked
   * there (anti-spoofing). Absent for drivers without one (macvlan, ipvlan). */
  port?: { ifname: string; mac: string } | undefined;
}
