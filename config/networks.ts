// Network definitions: what `tsrun network create` records and every attach reads.
import { UserError } from './errors.js';
import { checkIfname, checkNetworkName } from './ids.js';

export const NETWORK_DRIVERS = ['bridge', 'macvlan', 'ipvlan', 'overlay'] as const;
export type NetworkDriverName = (typeof NETWORK_DRIVERS)[number];

export interface NetworkDef {
  name: string;
  driver: NetworkDriverName;
  /** The Linux bridge (bridge driver): tsrun0 for the default network, ts-<name> otherwise. */
  bridge: string;
  subnet4?: string | undefined;
  gateway4?: string | undefined;
  subnet6?: string | undefined;
  gateway6?: string | undefined;
  /** No way out: no NAT, no forwarding to other interfaces. */
  internal: boolean;
  /** Inter-container communication on this network (icc=false isolates the containers). */
  icc: boolean;
  mtu: number;
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
}

export const DEFAULT_MTU = 1500;
const KNOWN_OPTIONS = new Set(['icc']);

/** Name, driver, bridge name, MTU and options; the address semantics are checked by the engine. */
export function normalizeNetworkInput(i: NetworkCreateInput): Omit<NetworkDef, 'subnet4' | 'gateway4' | 'subnet6' | 'gateway6' | 'created'> & { subnet?: string; gateway?: string; ipv6Subnet?: string; ipv6Gateway?: string } {
  const name = checkNetworkName(i.name);
  const driver = (i.driver ?? 'bridge') as NetworkDriverName;
  if (!NETWORK_DRIVERS.includes(driver)) throw new UserError(`invalid --driver ${JSON.stringify(i.driver)}: use ${NETWORK_DRIVERS.join(', ')}`);
  if (driver !== 'bridge') throw new UserError(`--driver ${driver} is not available yet`);
  const bridge = checkIfname(i.bridge ?? defaultBridgeName(name), '--bridge name');
  if (i.bridge === undefined && bridge.length > 15) throw new UserError(`network name ${name} is too long to derive a bridge name: pass --bridge`);
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
