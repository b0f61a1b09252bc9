// What a cluster store offers beyond the Store interface: revision-exact listing and watching,
// and leases (keys that vanish when their owner stops renewing). The etcd store implements it;
// the overlay agent and driver are written against this, not against etcd3.
import type { Store, StoreEntry, WatchEvent } from './store.js';

/** A watch event with the revision it happened at. */
export interface RevisionedEvent extends WatchEvent {
  revision: bigint;
}

export interface WatchHandlers {
  onEvent(e: RevisionedEvent): void;
  /** The stream broke in a way it cannot resume from (e.g. compacted): list again. */
  onError(err: Error): void;
}

export interface ClusterStore extends Store {
  /** How messages name the cluster, e.g. "etcd at 10.0.0.1:2379". */
  readonly name: string;
  /** The listing and the revision it was read at (watch from revision + 1 to miss nothing). */
  listAt(prefix: string): Promise<{ entries: StoreEntry[]; revision: bigint }>;
  watchFrom(prefix: string, fromRevision: bigint | undefined, h: WatchHandlers): Promise<() => Promise<void>>;
  grantLease(ttlSeconds: number): Promise<string>;
  /** Seconds the lease has left; 0 or less when it is gone. */
  leaseRemaining(id: string): Promise<number>;
  /** One renewal: the new TTL, 0 when the lease has already expired. */
  renewLease(id: string): Promise<number>;
  revokeLease(id: string): Promise<void>;
  putWithLease(key: string, value: string, leaseId: string): Promise<void>;
  close(): Promise<void>;
}
