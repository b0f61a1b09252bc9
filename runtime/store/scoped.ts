// With a cluster store, tsrun's keys live in two places. What the cluster must agree on goes to
// etcd: network definitions, address leases (so no two hosts ever hand out one address) and the
// overlay's hosts and endpoints. What describes this host goes to its local store: endpoint
// records (they name namespaces by device and inode, meaningful only here), host port
// reservations, the host's sysctl notes, the agent's identity. The engine, IPAM and records stay
// written against one Store; this router is the only place that knows the split.
import { listKeys, type Store, type StoreEntry, type WatchEvent } from './store.js';
import { compareKeys, keySegments, prefixSegments } from './keys.js';
import type { ClusterStore } from './cluster.js';

/** First key segments that are cluster-wide. */
export const CLUSTER_PREFIXES: ReadonlySet<string> = new Set(['networks', 'ipam', 'overlay']);

export function isClusterKey(key: string): boolean {
  return CLUSTER_PREFIXES.has(key.split('/')[0]!);
}

export class ScopedStore implements Store {
  constructor(
    readonly cluster: ClusterStore,
    readonly local: Store,
  ) {}

  /** The store holding `key`; validates it first, so both sides refuse the same keys. */
  storeFor(key: string): Store {
    keySegments(key);
    return isClusterKey(key) ? this.cluster : this.local;
  }

  async get(key: string): Promise<string | undefined> {
    return this.storeFor(key).get(key);
  }

  async put(key: string, value: string): Promise<void> {
    return this.storeFor(key).put(key, value);
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    return this.storeFor(key).createIfAbsent(key, value);
  }

  async deleteIf(key: string, expected?: string): Promise<boolean> {
    return this.storeFor(key).deleteIf(key, expected);
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    const segments = prefixSegments(prefix);
    if (segments.length > 0) return this.storeFor(segments.join('/')).list(prefix);
    const all = [...(await this.cluster.list('')), ...(await this.local.list(''))];
    return all.sort((a, b) => compareKeys(a.key, b.key));
  }

  async listKeys(prefix: string): Promise<string[]> {
    const segments = prefixSegments(prefix);
    if (segments.length > 0) return listKeys(this.storeFor(segments.join('/')), prefix);
    return [...(await listKeys(this.cluster, '')), ...(await listKeys(this.local, ''))].sort(compareKeys);
  }

  async watch(prefix: string, onEvent: (e: WatchEvent) => void): Promise<() => Promise<void>> {
    const segments = prefixSegments(prefix);
    const targets = segments.length > 0 ? [this.storeFor(segments.join('/'))] : [this.cluster, this.local];
    const stops: (() => Promise<void>)[] = [];
    for (const s of targets) if (s.watch) stops.push(await s.watch(prefix, onEvent));
    return async () => void (await Promise.all(stops.map((stop) => stop())));
  }

  async close(): Promise<void> {
    await Promise.all([this.cluster.close(), this.local.close?.()]);
  }
}

/** The cluster store behind `store`, if it has one. */
export function clusterOf(store: Store): ClusterStore | undefined {
  return store instanceof ScopedStore ? store.cluster : undefined;
}
