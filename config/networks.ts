// Network definitions: what `tsrun network create` records and every attach reads.
import { ConflictError, UserError } from './errors.js';
import { IFNAME_MAX, checkIfname, checkNetworkName } from './ids.js';

export const NETWORK_DRIVERS = ['bridge', 'macvlan', 'ipvlan', 'overlay'] as const;
export type NetworkDriverName = (typeof NETWORK_DRIVERS)[number];

/** Drivers whose container interfaces hang off a host interface (--parent) instead of a bridge. */
export type SubifDriverName = 'macvlan' | 'ipvlan';
export const MACVLAN_MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;
export const IPVLAN_MODES = ['l2', 'l3', 'l3s'] as const;
const MODES: Record<SubifDriverName, readonly string[]> = { macvlan: MACVLAN_MODES, ipvlan: IPVLAN_MODES };

export function isSubifDriver(d: string): d is SubifDriverName {
  return d === 'macvlan' || d === 'ipvlan';
}

export interface NetworkDef {
  name: string;
  driver: NetworkDriverName;
  /** The Linux bridge (bridge driver): tsrun0 for the default network, ts-<name> otherwise;
   * "" for macvlan and ipvlan, which have none. */
  bridge: string;
  /** macvlan/ipvlan: the host interface (NIC, VLAN, bond) the containers' interfaces hang off. */
  parent?: string | undefined;
  /** macvlan: bridge | private | vepa | passthru; ipvlan: l2 | l3 | l3s. */
  mode?: string | undefined;
  /** overlay: the VXLAN network identifier, unique in the cluster. */
  vni?: number | undefined;
  subnet4?: string | undefined;
  gateway4?: string | undefined;
  subnet6?: string | undefined;
  gateway6?: string | undefined;
  /** No way out: no NAT, no forwarding to other interfaces. */
  internal: boolean;
  /** Inter-container communication on this network (icc=false isolates the containers). */
  icc: boolean;
  mtu: number;
  /** Containers resolve each other by name through tsrun's resolver. Absent: on, except on the
   * default network (docker's behaviour there: the host's resolvers, no names). */
  dns?: boolean | undefined;
  /** Driver options as given (`--opt k=v`), kept for inspect. */
  options: Record<string, string>;
  created: string;
}

export interface NetworkCreateInput {
  name: string;
  driver?: string | undefined;
  subnet?: string | undefined;
  gateway?: string | undefined;
  ipv6Subnet?: string | undefined;
  ipv6Gateway?: string | undefined;
  internal?: boolean | undefined;
  mtu?: string | undefined;
  bridge?: string | undefined;
  opts?: string[] | undefined;
  parent?: string | undefined;
  mode?: string | undefined;
  /** overlay: --vni (default: the lowest free one from OVERLAY_VNI_FIRST). */
  vni?: string | undefined;
  /** --disable-dns (false) / --enable-dns (true); absent: the default for the network. */
  dns?: boolean | undefined;
}

export const DEFAULT_MTU = 1500;
const KNOWN_OPTIONS = new Set(['icc']);

/** Name, driver, bridge name, MTU and options; the address semantics are checked by the engine. */
export function normalizeNetworkInput(i: NetworkCreateInput): Omit<NetworkDef, 'subnet4' | 'gateway4' | 'subnet6' | 'gateway6' | 'created'> & { subnet?: string; gateway?: string; ipv6Subnet?: string; ipv6Gateway?: string } {
  const name = checkNetworkName(i.name);
  const driver = (i.driver ?? 'bridge') as NetworkDriverName;
  if (!NETWORK_DRIVERS.includes(driver)) throw new UserError(`invalid --driver ${JSON.stringify(i.driver)}: use ${NETWORK_DRIVERS.join(', ')}`);
  const vni = normalizeVni(driver, i);
  const subif = isSubifDriver(driver) ? normalizeSubif(driver, i) : undefined;
  if (!subif && i.parent !== undefined) throw new UserError('--parent is for --driver macvlan or ipvlan');
  if (!subif && i.mode !== undefined) throw new UserError('--mode is for --driver macvlan or ipvlan');
  if (!subif && i.bridge === undefined && Buffer.byteLength(defaultBridgeName(name)) > IFNAME_MAX) {
    throw new UserError(`network name ${name} is too long to derive a bridge name: pass --bridge`);
  }
  const bridge = subif ? '' : checkIfname(i.bridge ?? defaultBridgeName(name), '--bridge name');
  let mtu = DEFAULT_MTU;
  if (i.mtu !== undefined) {
    if (!/^\d+$/.test(i.mtu) || Number(i.mtu) < 1280 || Number(i.mtu) > 9000) throw new UserError(`invalid --mtu ${JSON.stringify(i.mtu)}: use a number from 1280 to 9000`);
    mtu = Number(i.mtu);
  }
  const options: Record<string, string> = {};
  for (const o of i.opts ?? []) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new UserError(`invalid --opt ${JSON.stringify(o)}: expected KEY=VALUE`);
    const key = o.slice(0, eq);
    const value = o.slice(eq + 1);
    if (!KNOWN_OPTIONS.has(key)) throw new UserError(`invalid --opt ${JSON.stringify(o)}: unknown option ${key} (known: ${[...KNOWN_OPTIONS].join(', ')})`);
    if (key === 'icc' && value !== 'true' && value !== 'false') throw new UserError(`invalid --opt ${JSON.stringify(o)}: icc is true or false`);
    options[key] = value;
  }
  if (subif && options.icc !== undefined) throw new UserError(`--opt icc is for --driver bridge${driver === 'macvlan' ? ': --mode private keeps macvlan containers apart' : ''}`);
  if (i.gateway !== undefined && i.subnet === undefined) throw new UserError('--gateway needs --subnet');
  if (i.ipv6Gateway !== undefined && i.ipv6Subnet === undefined) throw new UserError('--ipv6-gateway needs --ipv6-subnet');
  return {
    name,
    driver,
    bridge,
    internal: i.internal ?? false,
    icc: options.icc !== 'false',
    mtu,
    options,
    ...(subif ?? {}),
    ...(vni !== undefined ? { vni } : {}),
    ...(i.dns !== undefined ? { dns: i.dns } : {}),
    ...(i.subnet !== undefined ? { subnet: i.subnet } : {}),
    ...(i.gateway !== undefined ? { gateway: i.gateway } : {}),
    ...(i.ipv6Subnet !== undefined ? { ipv6Subnet: i.ipv6Subnet } : {}),
    ...(i.ipv6Gateway !== undefined ? { ipv6Gateway: i.ipv6Gateway } : {}),
  };
}

export const DEFAULT_BRIDGE = 'tsrun0';

/** ts-<name> fits the 15-byte interface name limit for names up to 12 characters. */
export function defaultBridgeName(network: string): string {
  return network === 'tsrun' ? DEFAULT_BRIDGE : `ts-${network}`;
}

/** VXLAN ids tsrun picks from when --vni is absent (low ids are often taken by hand-made tunnels). */
export const OVERLAY_VNI_FIRST = 4096;
export const VNI_MAX = 16777215;

/** --vni of an overlay network, and what an overlay refuses: IPv6 (the agent programs IPv4
 * neighbours only) and icc=false (port isolation would hold on one host, not across hosts). */
function normalizeVni(driver: NetworkDriverName, i: NetworkCreateInput): number | undefined {
  if (driver !== 'overlay') {
    if (i.vni !== undefined) throw new UserError('--vni is for --driver overlay');
    return undefined;
  }
  if (i.ipv6Subnet !== undefined) throw new UserError('--ipv6-subnet is not supported by --driver overlay: overlay networks are IPv4-only');
  if ((i.opts ?? []).includes('icc=false')) throw new UserError('--opt icc=false is not supported by --driver overlay: isolation would stop at the host boundary');
  if (i.vni === undefined) return undefined;
  if (!/^\d+$/.test(i.vni) || Number(i.vni) < 1 || Number(i.vni) > VNI_MAX) throw new UserError(`invalid --vni ${JSON.stringify(i.vni)}: use a number from 1 to ${VNI_MAX}`);
  return Number(i.vni);
}

/** --parent and --mode of a macvlan/ipvlan network, and the bridge-only flags it refuses. */
function normalizeSubif(driver: SubifDriverName, i: NetworkCreateInput): { parent: string; mode: string } {
  if (i.parent === undefined) throw new UserError(`--driver ${driver} needs --parent IFACE: the host interface whose segment the containers join`);
  const parent = checkIfname(i.parent, '--parent interface name');
  const modes = MODES[driver];
  const mode = i.mode ?? modes[0]!;
  if (!modes.includes(mode)) throw new UserError(`invalid --mode ${JSON.stringify(i.mode)}: ${driver} modes are ${modes.join(', ')}`);
  if (i.bridge !== undefined) throw new UserError(`--bridge is for --driver bridge: ${driver} containers sit directly on --parent ${parent}`);
  if (i.internal) throw new UserError(`--internal is not supported by --driver ${driver}: its containers sit directly on the segment of ${parent}`);
  // The subnet is the parent's segment (or, for ipvlan L3, one the LAN routes to this host):
  // only the user knows it, so no free subnet is picked.
  if (i.subnet === undefined && i.ipv6Subnet === undefined) throw new UserError(`--driver ${driver} needs --subnet (or --ipv6-subnet): the addresses of the segment behind ${parent}`);
  return { parent, mode };
}

/**
 * A new macvlan/ipvlan network against the networks already defined: the kernel lets a parent
 * serve either macvlan or ipvlan children (not both), a passthru macvlan takes its parent whole,
 * all ipvlan children of one parent share one mode (a new mode would silently switch the others),
 * and a tsrun bridge is no parent. Pure: the kernel-side checks (exists, up) are the driver's.
 */
export function checkParentClaim(n: Pick<NetworkDef, 'name' | 'driver' | 'parent' | 'mode'>, others: readonly NetworkDef[]): void {
  if (!isSubifDriver(n.driver) || n.parent === undefined) return;
  const parent = n.parent;
  const bridgeOf = others.find((o) => o.bridge !== '' && o.bridge === parent);
  if (bridgeOf) throw new UserError(`--parent ${parent} is the bridge of tsrun network ${bridgeOf.name}: ${n.driver} needs a host interface (NIC, VLAN or bond)`);
  for (const o of others) {
    if (o.parent !== parent || !isSubifDriver(o.driver)) continue;
    if (o.driver !== n.driver) throw new ConflictError(`parent ${parent} already serves ${o.driver} network ${o.name}: one parent serves macvlan or ipvlan networks, not both`);
    if (o.driver === 'macvlan' && o.mode === 'passthru') throw new ConflictError(`parent ${parent} is already claimed by network ${o.name} in passthru mode`);
    if (n.driver === 'macvlan' && n.mode === 'passthru') throw new ConflictError(`--mode passthru needs parent ${parent} to itself, but network ${o.name} already uses it`);
    if (o.driver === 'ipvlan' && o.mode !== n.mode) throw new ConflictError(`parent ${parent} already serves ipvlan network ${o.name} in mode ${o.mode}: all ipvlan networks on one parent share one mode`);
  }
}
