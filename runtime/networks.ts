// The network registry: definitions kept in the Store under networks/<name>. Creating one checks
// everything an attach would later trip over: subnets that are valid, that do not overlap another
// network or a route the host already has, gateways inside their subnets, unique bridge names.
import { ConflictError, NotFoundError, UserError } from '../config/errors.js';
import { DEFAULT_NETWORK } from '../config/net-mode.js';
import { checkParentClaim, isSubifDriver, normalizeNetworkInput, type NetworkCreateInput, type NetworkDef } from '../config/networks.js';
import { checkNetworkName } from '../config/ids.js';
import type { Store } from './store/store.js';
import { formatAddress, overlaps, parseSubnet } from '../config/address.js';
import { parsePool } from './ipam/allocator.js';
import { releaseVni, releaseVnisOf, requireCluster, reserveVni } from './overlay/vni.js';

const KEY = (name: string) => `networks/${name}`;

/** Where subnets are taken from when none is given: podman's 10.88/16 first, then its
 * neighbours, then the upper 172.16/12 range docker users know. */
export function* candidateSubnets(): Generator<string> {
  for (let b = 88; b <= 99; b++) yield `10.${b}.0.0/16`;
  for (let b = 18; b <= 31; b++) yield `172.${b}.0.0/16`;
}

export class NetworkRegistry {
  constructor(private readonly store: Store) {}

  /** Throws UnreadableNetworkError for a definition that does not parse (see parseDefinition). */
  async get(name: string): Promise<NetworkDef | undefined> {
    const text = await this.store.get(KEY(checkNetworkName(name)));
    return text === undefined ? undefined : parseDefinition(name, text);
  }

  /** True when `name`'s definition is there but unreadable: `network rm` removes it all the same. */
  async unreadable(name: string): Promise<boolean> {
    const text = await this.store.get(KEY(checkNetworkName(name)));
    return text !== undefined && readable(text) === undefined;
  }

  /** Every defined network's name, those with an unreadable definition too (gc keeps their
   * bridges and firewall elements: containers may still be attached). */
  async names(): Promise<string[]> {
    return (await this.store.list('networks/')).map((e) => e.key.slice('networks/'.length));
  }

  async require(name: string): Promise<NetworkDef> {
    const net = await this.get(name);
    if (!net) throw new NotFoundError(`network ${name} not found (tsrun network ls lists them)`);
    return net;
  }

  /** The definitions that read: one truncated or corrupt definition (a disk error, a hand edit)
   * must not fail ls, gc, the firewall's repair or every network create; names() has them all. */
  async list(): Promise<NetworkDef[]> {
    return (await this.store.list('networks/')).flatMap((e) => readable(e.value) ?? []);
  }

  /** Every definition, refusing (UnreadableNetworkError) when one does not parse: for what must not
   * leave a network out. The firewall rebuilt without one dropped its bridge from the internal set
   * (an --internal network's containers got a way out) and its containers' port guards. */
  async listEvery(): Promise<NetworkDef[]> {
    return (await this.store.list('networks/')).map((e) => parseDefinition(e.key.slice('networks/'.length), e.value));
  }

  /**
   * Validates and records a network. `hostRoutes` are the destinations of the host's own routes
   * (CIDRs); a subnet overlapping one would make the host route container traffic wrongly.
   */
  async create(input: NetworkCreateInput, hostRoutes: string[]): Promise<NetworkDef> {
    const n = normalizeNetworkInput(input);
    const others = await this.list();
    if (others.some((o) => o.name === n.name)) throw new ConflictError(`network ${n.name} already exists`);
    const sameBridge = n.bridge === '' ? undefined : others.find((o) => o.bridge === n.bridge);
    if (sameBridge) throw new ConflictError(`bridge ${n.bridge} is already used by network ${sameBridge.name}`);
    checkParentClaim(n, others);

    // A macvlan/ipvlan subnet is the parent's own segment, which the host usually has a route
    // to: only other networks count against it.
    const routesThatCount = isSubifDriver(n.driver) ? [] : hostRoutes;
    const taken = [...others.flatMap((o) => [o.subnet4, o.subnet6].filter((s): s is string => !!s).map((s) => ({ cidr: s, what: `network ${o.name}` }))),
      ...routesThatCount.map((r) => ({ cidr: r, what: `a host route (${r})` }))];
    const checkFree = (cidr: string, flag: string) => {
      const clash = taken.find((t) => overlaps(t.cidr, cidr));
      if (clash) throw new ConflictError(`${flag} ${cidr} overlaps ${clash.what}`);
    };

    let subnet4: string | undefined;
    let gateway4: string | undefined;
    if (n.subnet !== undefined) {
      const s = parseSubnet(n.subnet, '--subnet');
      if (s.family !== 4) throw new UserError(`invalid --subnet ${n.subnet}: IPv6 subnets go in --ipv6-subnet`);
      const pool = parsePool({ subnet: s.cidr, gateway: n.gateway }, `network ${n.name}`);
      checkFree(s.cidr, '--subnet');
      subnet4 = s.cidr;
      gateway4 = formatAddress({ family: 4, value: pool.gateway });
    } else if (n.ipv6Subnet === undefined) {
      subnet4 = pickFreeSubnet(taken.map((t) => t.cidr));
      gateway4 = formatAddress({ family: 4, value: parsePool({ subnet: subnet4 }).gateway });
    }
    let subnet6: string | undefined;
    let gateway6: string | undefined;
    if (n.ipv6Subnet !== undefined) {
      const s = parseSubnet(n.ipv6Subnet, '--ipv6-subnet');
      if (s.family !== 6) throw new UserError(`invalid --ipv6-subnet ${n.ipv6Subnet}: not an IPv6 subnet`);
      const pool = parsePool({ subnet: s.cidr, gateway: n.ipv6Gateway }, `network ${n.name}`);
      checkFree(s.cidr, '--ipv6-subnet');
      subnet6 = s.cidr;
      gateway6 = formatAddress({ family: 6, value: pool.gateway });
    }

    if (n.driver === 'overlay') requireCluster(this.store, 'an overlay network');
    const vni = n.driver === 'overlay' ? await reserveVni(this.store, n.name, n.vni) : undefined;
    const def: NetworkDef = {
      name: n.name,
      driver: n.driver,
      bridge: n.bridge,
      ...(n.parent !== undefined ? { parent: n.parent, mode: n.mode } : {}),
      ...(vni !== undefined ? { vni } : {}),
      ...(subnet4 ? { subnet4, gateway4 } : {}),
      ...(subnet6 ? { subnet6, gateway6 } : {}),
      internal: n.internal,
      icc: n.icc,
      mtu: n.mtu,
      ...(n.dns !== undefined ? { dns: n.dns } : {}),
      options: n.options,
      created: new Date().toISOString(),
    };
    if (!(await this.store.createIfAbsent(KEY(def.name), JSON.stringify(def)))) {
      if (vni !== undefined) await releaseVni(this.store, vni, def.name);
      throw new ConflictError(`network ${def.name} already exists`);
    }
    return def;
  }

  /** The default network, created on first use with a subnet no host route or network uses.
   * Two processes racing here agree on one definition: the loser reads the winner's. */
  async ensureDefault(hostRoutes: string[]): Promise<NetworkDef> {
    const existing = await this.get(DEFAULT_NETWORK);
    if (existing) return existing;
    try {
      return await this.create({ name: DEFAULT_NETWORK }, hostRoutes);
    } catch (err) {
      const now = await this.get(DEFAULT_NETWORK);
      if (now) return now;
      throw err;
    }
  }

  async remove(name: string): Promise<boolean> {
    let unreadable = false;
    const def = await this.get(name).catch((err: unknown) => {
      if (!(err instanceof UnreadableNetworkError)) throw err;
      unreadable = true;
      return undefined;
    });
    const removed = await this.store.deleteIf(KEY(checkNetworkName(name)));
    if (removed && def?.vni !== undefined) await releaseVni(this.store, def.vni, def.name);
    // Its VNI is named only by the definition: the reservations held in its name (their value)
    // go. Left, the id was refused to every later network for good.
    if (removed && unreadable) await releaseVnisOf(this.store, name);
    return removed;
  }
}

/** A network whose stored definition does not parse: one line naming it and the way out. */
export class UnreadableNetworkError extends UserError {}

function readable(text: string): NetworkDef | undefined {
  try {
    const def = JSON.parse(text) as NetworkDef;
    return typeof def === 'object' && def !== null && typeof def.name === 'string' && typeof def.driver === 'string' ? def : undefined;
  } catch {
    return undefined;
  }
}

function parseDefinition(name: string, text: string): NetworkDef {
  const def = readable(text);
  if (def === undefined) throw new UnreadableNetworkError(`network ${name}: its definition (store key ${KEY(name)}) is unreadable (truncated or corrupt): tsrun network rm ${name} removes it`);
  return def;
}

export function pickFreeSubnet(taken: string[]): string {
  for (const candidate of candidateSubnets()) {
    if (!taken.some((t) => overlaps(t, candidate))) return candidate;
  }
  throw new UserError('no free subnet left among 10.88-99.0.0/16 and 172.18-31.0.0/16: pass --subnet');
}

