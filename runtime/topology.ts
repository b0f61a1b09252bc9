// What tsrun has built on this host, as one typed model for `tsrun topology` and `tsrun network
// inspect --format text|dot|svg`: every network with its host-side device (bridge, macvlan/ipvlan
// parent, VXLAN device), the containers attached here with their addresses and published ports,
// and, for overlay networks, the other hosts of the cluster and their containers. Built from the
// same data `network inspect` prints as JSON, so the picture and the JSON never disagree.
import os from 'node:os';
import type { NetworkDef } from '../config/networks.js';
import type { PortMapping } from '../config/ports.js';
import type { Engine } from './engine.js';

export interface DeviceView {
  kind: 'bridge' | 'parent';
  name: string;
  /** The kernel has it (false: the network's device is gone, e.g. after a reboot before gc). */
  exists: boolean;
  up?: boolean | undefined;
}

export interface EndpointView {
  containerId: string;
  ifname: string;
  /** The host end (the veth on the bridge); macvlan/ipvlan have none. */
  hostIfname?: string | undefined;
  mac?: string | undefined;
  ipv4?: string | undefined;
  ipv6?: string | undefined;
  ports: PortMapping[];
}

export interface OverlayHostView {
  hostId: string;
  hostname?: string | undefined;
  /** Underlay address. */
  address?: string | undefined;
  local: boolean;
  registered: boolean;
  endpoints: { containerId: string; ipv4?: string | undefined; mac?: string | undefined }[];
}

/** A network as its definition says (config/networks.ts), plus what this host has of it. */
export interface NetworkView extends Pick<NetworkDef, 'name' | 'driver' | 'mode' | 'subnet4' | 'gateway4' | 'subnet6' | 'gateway6' | 'internal' | 'icc'> {
  device?: DeviceView | undefined;
  /** overlay: the VXLAN device that is one of the bridge's ports. */
  vxlan?: { name: string; vni?: number | undefined } | undefined;
  endpoints: EndpointView[];
  /** overlay: every host of the cluster on this network, this one included. */
  hosts?: OverlayHostView[] | undefined;
}

export interface Topology {
  host: string;
  networks: NetworkView[];
}

/** The topology of the named networks, or of all of them. */
export async function collectTopology(engine: Engine, names?: string[]): Promise<Topology> {
  const wanted = names && names.length > 0 ? names : (await engine.networks.list()).map((n) => n.name);
  const networks: NetworkView[] = [];
  for (const name of wanted) networks.push(networkView(await engine.inspectNetwork(name)));
  return { host: os.hostname(), networks };
}

/** The typed view of one `network inspect` document. */
export function networkView(doc: Record<string, unknown>): NetworkView {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const d = doc as {
    name: string; driver: NetworkDef['driver']; bridge?: string; parent?: string; mode?: string; vni?: number;
    subnet4?: string; gateway4?: string; subnet6?: string; gateway6?: string; internal?: boolean; icc?: boolean;
    bridgeState?: { exists: boolean; up?: boolean }; parentState?: { exists: boolean; up?: boolean };
    endpoints?: EndpointView[]; vxlan?: string; hosts?: OverlayHostView[];
  };
  const bridge = str(d.bridge);
  const parent = str(d.parent);
  const state = bridge ? d.bridgeState : d.parentState;
  const device: DeviceView | undefined = bridge || parent ? { kind: bridge ? 'bridge' : 'parent', name: (bridge ?? parent)!, exists: state?.exists ?? false, up: state?.up } : undefined;
  return {
    name: d.name,
    driver: d.driver,
    mode: str(d.mode),
    subnet4: str(d.subnet4),
    gateway4: str(d.gateway4),
    subnet6: str(d.subnet6),
    gateway6: str(d.gateway6),
    internal: d.internal === true,
    icc: d.icc !== false,
    device,
    vxlan: str(d.vxlan) ? { name: d.vxlan!, vni: d.vni } : undefined,
    endpoints: (d.endpoints ?? []).map((e) => ({ ...e, ports: e.ports ?? [] })),
    hosts: d.hosts,
  };
}
