// What the netlink layer takes and returns. Addresses are text ("10.0.0.2/24", "aa:bb:…"),
// families are 4 or 6: callers never see AF_* numbers or byte buffers.
import type { IpvlanFlag, IpvlanMode, MacvlanMode } from './codec.js';

export type { IpvlanFlag, IpvlanMode, MacvlanMode };

/** A link named by its interface name or its index. */
export type LinkRef = string | number;

export type IpFamily = 4 | 6;

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: 'veth', 'bridge', 'macvlan', 'vxlan'…; absent for physical devices and lo. */
  kind?: string;
  mtu: number;
  /** "aa:bb:cc:dd:ee:ff"; "" for links without a hardware address. */
  mac: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Index of the bridge this link is a port of. */
  master?: number;
  alias?: string;
  /** IFLA_LINK: the parent (macvlan, vlan) or a veth's peer index (in `linkNetnsId` if set). */
  parentIndex?: number;
  /** Set when the peer/parent lives in another namespace (its id as seen from this one). */
  linkNetnsId?: number;
}

export interface VethOptions {
  name: string;
  peerName: string;
  /** A descriptor of the namespace the peer is created in (see openNetnsFd); default: here. */
  peerNsFd?: number;
  mtu?: number;
  mac?: string;
  peerMac?: string;
  /** IFLA_IFALIAS of this end (a tag for gc); costs a second request. */
  alias?: string;
  /** Bridge index to enslave this end to, in the same request. */
  master?: number;
  /** Bring this end up in the same request. (The peer cannot be: bring it up from its own namespace.) */
  up?: boolean;
}

export interface BridgeOptions {
  name: string;
  mtu?: number;
  mac?: string;
  alias?: string;
  up?: boolean;
}

export interface MacvlanOptions {
  name: string;
  /** The parent device, in the namespace of the Rtnl creating it. */
  parentIndex: number;
  mode: MacvlanMode;
  /** Created directly inside this namespace (descriptor); default: here. */
  nsFd?: number;
  mac?: string;
  mtu?: number;
  up?: boolean;
}

export interface IpvlanOptions {
  name: string;
  /** The parent device, in the namespace of the Rtnl creating it. */
  parentIndex: number;
  mode: IpvlanMode;
  /** Default bridge (slaves of one parent reach each other). */
  flags?: IpvlanFlag;
  /** Created directly inside this namespace (descriptor); default: here. */
  nsFd?: number;
  mtu?: number;
  up?: boolean;
}

export interface VxlanOptions {
  name: string;
  vni: number;
  /** Local VTEP address (v4 or v6). */
  local?: string;
  /** UDP destination port; default 4789 (IANA; the kernel's own default is 8472). */
  port?: number;
  /** Learn remote MACs from traffic; default false (the overlay agent programs the FDB). */
  learning?: boolean;
  /** Answer ARP requests from the device's neighbour table instead of sending them (ARP
   * suppression: with every remote address programmed, no broadcast has to cross hosts). */
  proxy?: boolean;
  mac?: string;
  /** Underlay device index. */
  parentIndex?: number;
  mtu?: number;
  alias?: string;
  master?: number;
  up?: boolean;
}

export interface Address {
  ifindex: number;
  family: IpFamily;
  /** The address alone ("10.0.0.2", "fd00::2"). */
  address: string;
  prefixLen: number;
  /** address/prefixLen. */
  cidr: string;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  scope: number;
}

export interface RouteSpec {
  /** 'default' or a CIDR (host bits are cleared). */
  dst: string;
  gateway?: string;
  ifindex?: number;
  /** Needed only for `dst: 'default'` without a gateway; otherwise inferred. */
  family?: IpFamily;
  mtu?: number;
  metric?: number;
}

export interface Route {
  family: IpFamily;
  dst: string;
  gateway?: string;
  ifindex?: number;
  mtu?: number;
  metric?: number;
  scope: number;
  protocol: number;
}

export interface NeighbourSpec {
  ifindex: number;
  ip: string;
  mac: string;
  /** NUD_PERMANENT (never expires) instead of NUD_REACHABLE. */
  permanent?: boolean;
}

export interface Neighbour {
  ifindex: number;
  ip: string;
  mac?: string;
  /** NUD_* bits. */
  state: number;
  permanent: boolean;
}

export interface FdbSpec {
  /** The VXLAN (or other) device owning the entry (NTF_SELF). */
  ifindex: number;
  mac: string;
  /** Remote VTEP address. */
  dst?: string;
}

export interface FdbEntry {
  ifindex: number;
  mac: string;
  dst?: string;
  /** NTF_SELF: the device's own table (VXLAN), as opposed to the bridge's (NTF_MASTER). */
  self: boolean;
  /** The bridge, for entries of a bridge port. */
  master?: number;
  permanent: boolean;
}
