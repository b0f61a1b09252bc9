// The ADD result in the shape of the config's cniVersion (SPEC.md section 5): 1.x without the
// per-address `version`, 0.3.x/0.4.0 with it; 1.1.0 adds the interface MTU. A chained call
// (prevResult given) keeps what earlier plugins reported and appends tsrun's part. Pure.
import { compareVersions, type CniVersion } from './protocol.js';

export interface AttachmentFacts {
  /** The container's interface: CNI_IFNAME, its MAC, and CNI_NETNS as its sandbox. */
  ifname: string;
  mac: string;
  sandbox: string;
  mtu: number;
  /** The host end (a veth on the bridge); absent for macvlan and ipvlan. */
  host?: { name: string; mac: string } | undefined;
  ipv4?: { address: string; prefixLength: number; gateway?: string | undefined } | undefined;
  ipv6?: { address: string; prefixLength: number; gateway?: string | undefined } | undefined;
  /** Default routes through the device rather than a gateway (ipvlan l3). */
  routeViaDevice?: boolean;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}
export interface CniIp {
  version?: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
}
export interface CniRoute {
  dst: string;
  gw?: string;
}
export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: Record<string, unknown>;
}

export function buildResult(version: CniVersion, facts: AttachmentFacts, dns: Record<string, unknown> | undefined, prev?: Record<string, unknown>): CniResult {
  const legacy = compareVersions(version, '1.0.0') < 0;
  const withMtu = compareVersions(version, '1.1.0') >= 0;
  const before = prev ? asResult(prev) : undefined;
  const interfaces: CniInterface[] = [...(before?.interfaces ?? [])];
  if (facts.host) interfaces.push({ name: facts.host.name, mac: facts.host.mac, ...(withMtu ? { mtu: facts.mtu } : {}) });
  const index = interfaces.push({ name: facts.ifname, mac: facts.mac, ...(withMtu ? { mtu: facts.mtu } : {}), sandbox: facts.sandbox }) - 1;

  const ips: CniIp[] = [...(before?.ips ?? [])];
  const routes: CniRoute[] = [...(before?.routes ?? [])];
  for (const [family, a] of [['4', facts.ipv4], ['6', facts.ipv6]] as const) {
    if (!a) continue;
    ips.push({ ...(legacy ? { version: family } : {}), address: `${a.address}/${a.prefixLength}`, ...(a.gateway ? { gateway: a.gateway } : {}), interface: index });
    const dst = family === '4' ? '0.0.0.0/0' : '::/0';
    if (a.gateway) routes.push({ dst, gw: a.gateway });
    else if (facts.routeViaDevice) routes.push({ dst });
  }
  const ownDns = dns && Object.keys(dns).length > 0 ? dns : undefined;
  return { cniVersion: version, interfaces, ips, routes, dns: ownDns ?? before?.dns ?? {} };
}

/** A prevResult read leniently: what CHECK and a chained ADD need of it. */
export function asResult(prev: Record<string, unknown>): Omit<CniResult, 'cniVersion'> {
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
  return {
    interfaces: list<CniInterface>(prev.interfaces),
    ips: list<CniIp>(prev.ips),
    routes: list<CniRoute>(prev.routes),
    dns: typeof prev.dns === 'object' && prev.dns !== null ? (prev.dns as Record<string, unknown>) : {},
  };
}

/** What prevResult says about the container's interface CNI_IFNAME: its MAC, addresses, routes. */
export function expectedFor(prev: Record<string, unknown>, ifname: string, sandbox: string): { mac?: string; addresses: string[]; gateways: string[] } | undefined {
  const r = asResult(prev);
  const index = r.interfaces.findIndex((i) => i.name === ifname && (i.sandbox ?? '') !== '' && (i.sandbox === sandbox || sandbox === ''));
  if (index < 0) return undefined;
  const mine = r.ips.filter((ip) => ip.interface === index);
  return {
    ...(r.interfaces[index]!.mac ? { mac: r.interfaces[index]!.mac!.toLowerCase() } : {}),
    addresses: mine.map((ip) => ip.address),
    gateways: mine.map((ip) => ip.gateway).filter((g): g is string => typeof g === 'string'),
  };
}
