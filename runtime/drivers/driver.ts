// The driver seam: one file per network mode, one interface. The engine owns the transaction,
// IPAM, host ports, the firewall and the records; a driver owns the links.
import type { NetworkDef } from '../../config/networks.js';
import type { Issue } from '../../config/validate.js';
import type { Rtnl } from '../netlink/rtnl.js';
import type { Transaction } from '../tx.js';
import type { EndpointAddress, EndpointRecord, HostLink } from '../records.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface AttachContext {
  containerId: string;
  net: NetworkDef;
  /** Netlink in the namespace holding the host side (bridge, veth end). */
  host: Rtnl;
  /** Netlink inside the container's namespace. */
  container: Rtnl;
  /** Path of the container's namespace (to create links directly inside it). */
  containerNetnsPath: string;
  ifname: string;
  mac?: string | undefined;
  ipv4?: EndpointAddress | undefined;
  ipv6?: EndpointAddress | undefined;
  log: Logger;
  /** The engine's store, for drivers that keep cluster-wide facts (overlay). */
  store?: Store | undefined;
  /** DNS names besides the container id (the overlay publishes them for other hosts' resolvers). */
  aliases?: string[] | undefined;
  /** Installs the firewall elements of the bridge port the driver is about to make (its host end's
   * name, the container's MAC), BEFORE the link exists: called once by drivers with a bridge
   * port, so the port guard knows the port from its first frame. Absent: nothing to call. */
  guardPort?: ((port: { ifname: string; mac: string }) => Promise<void>) | undefined;
}

/** What a driver reports about the interfaces it made. */
export interface DriverEndpoint {
  hostIfname: string;
  /** Which link hostIfname is (recorded, so a late detach can tell it from a newer one). */
  hostLink?: HostLink | undefined;
  mac: string;
}

export interface DetachOptions {
  /**
   * The container's network namespace goes away right after this detach (its processes are gone
   * and the caller deletes its pin next). A veth is then only taken off its bridge (one fast
   * request) and the kernel deletes the pair with the namespace, asynchronously, instead of the
   * detach waiting for the delete's RCU grace period (~26 ms). See retireVeth.
   */
  netnsGoing?: boolean;
  /**
   * The caller exits right after this detach (the hook's poststop, the CNI plugin's DEL) and the
   * container's namespace may live on. A veth is then set down, off its bridge and renamed to a
   * dying name, and a detached process deletes it, instead of the detach waiting for the
   * delete's RCU grace period. See dismissVeth. Only where the host side is the caller's own
   * namespace; ignored with netnsGoing (retiring is cheaper still).
   */
  deferLinkDelete?: boolean;
  /** Where a detach says what it left alone (a link by the recorded name that is not the one it made). */
  log?: Logger | undefined;
}

export interface NetworkDriver {
  /**
   * false: the containers' traffic never passes the host's IP stack (macvlan, ipvlan), so the
   * engine sets no host sysctls, adds no firewall elements (no NAT) and refuses published ports.
   * Absent means true.
   */
  readonly hostFirewall?: boolean;
  /** Problems with the request, found before anything is touched. */
  validate(net: NetworkDef): Issue[];
  /** Creates (or finds) the host-side shared pieces once: bridge, addresses, sysctls. */
  ensureNetwork(net: NetworkDef, host: Rtnl, tx: Transaction, log: Logger): Promise<void>;
  /** The container's interface, addressed and routed; every step registers its undo on tx. */
  attach(ctx: AttachContext, tx: Transaction): Promise<DriverEndpoint>;
  /** Idempotent; works from the record alone. `host` is undefined when the host-side namespace
   * is gone (its links went with it). */
  detach(rec: EndpointRecord, host: Rtnl | undefined, store?: Store, opts?: DetachOptions): Promise<void>;
  /** After the endpoint record is deleted: what another process may have re-created from the
   * record while the detach ran (the overlay agent re-publishing an endpoint) goes too. */
  afterRecordDeleted?(rec: EndpointRecord, store: Store): Promise<void>;
  /** Removes the host-side shared pieces of a deleted network (idempotent). */
  removeNetwork(net: NetworkDef, host: Rtnl): Promise<void>;
  /** Cluster-wide drivers: containers attached on other hosts ("host: id"), which refuse rm. */
  remoteEndpoints?(net: NetworkDef, store: Store): Promise<string[]>;
  /** Cluster-wide drivers: extra facts for inspect (the overlay's hosts and their endpoints). */
  inspect?(net: NetworkDef, store: Store): Promise<Record<string, unknown>>;
}
