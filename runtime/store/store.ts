// The Store: the only way IPAM, records and the engine reach persistent shared state. The local
// implementation keeps files under the state root; the etcd one (store/etcd.ts, for overlay
// networks) keeps keys in a cluster. Nothing above this interface may assume files.
//
// Keys are '/'-separated paths of safe segments ([A-Za-z0-9_.:-]), e.g.
//   networks/web                     a network definition
//   ipam/web/10.88.0.5               a lease (value: the container id)
//   endpoints/<container>/<network>  what detach needs
// Values are strings (JSON where structured).

export interface StoreEntry {
  key: string;
  value: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
}

export interface Store {
  get(key: string): Promise<string | undefined>;
  /** Create or replace atomically: readers see the old value or the new, never a torn one. */
  put(key: string, value: string): Promise<void>;
  /**
   * Create only when absent; true when this call created it. The IPAM primitive: two callers
   * racing for one key, in one process or many, see exactly one `true`.
   */
  createIfAbsent(key: string, value: string): Promise<boolean>;
  /** Delete only when the current value equals `expected` (or unconditionally when omitted);
   * true when this call deleted it. Absent keys return false and are not an error. */
  deleteIf(key: string, expected?: string): Promise<boolean>;
  /**
   * Best-effort replace, for values that are hints and nothing more (IPAM's allocation hint): a
   * reader racing with it may see a mix of the old and the new value. Stores without a cheaper
   * way leave it out; callers then use put.
   */
  overwrite?(key: string, value: string): Promise<void>;
  /** Every key under `prefix` (a '/'-terminated path), in key order. */
  list(prefix: string): Promise<StoreEntry[]>;
  /** list's keys without their values, for a caller that only counts or names them; a store
   * without a cheaper way leaves it out (listKeys below falls back to list). */
  listKeys?(prefix: string): Promise<string[]>;
  /** Changes under prefix until the returned function is called (the overlay agent). */
  watch?(prefix: string, onEvent: (e: WatchEvent) => void): Promise<() => Promise<void>>;
  close?(): Promise<void>;
}

/** The keys under `prefix`, in key order, without reading the values where the store can. */
export async function listKeys(store: Store, prefix: string): Promise<string[]> {
  return store.listKeys ? store.listKeys(prefix) : (await store.list(prefix)).map((e) => e.key);
}
