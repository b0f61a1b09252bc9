// Chooses the Store named by settings.store ('local' or an etcd:// URL) so that the front doors
// and the engine never construct one themselves. An etcd URL gives a ScopedStore: cluster-wide
// keys in etcd, this host's own keys in the local store (see scoped.ts).
import path from 'node:path';
import { UserError } from '../../config/errors.js';
import type { Store } from './store.js';
import { LocalStore } from './local.js';

export interface OpenStoreOptions {
  /** settings.store: 'local' or etcd://host:port[,host:port] */
  url: string;
  /** settings.libDir: the local store lives in <libDir>/store */
  libDir: string;
  log?: { warn(obj: object, msg: string): void };
}

export function localStoreRoot(libDir: string): string {
  return path.join(libDir, 'store');
}

/**
 * Local-store keys that describe this boot's containers: address leases (and their allocation
 * hints), host port reservations and endpoint records. They are not fdatasync'ed (see local.ts):
 * after a power loss their containers are gone, and an unreadable value is read as one of those.
 */
export const VOLATILE_PREFIXES: readonly string[] = ['ipam/', 'hostports/', 'endpoints/'];

/**
 * Local-store directories a delete never prunes (see LocalStoreOptions.keep): the key families
 * every attach writes into, and one directory per published (protocol, port), which an attach and
 * its detach otherwise created and removed each time. endpoints/<container>/ is not kept: there is
 * one per container ever run.
 */
export const KEPT_DIRS: readonly string[] = ['endpoints/', 'ipam/', 'hostports/', 'hostports/*/', 'hostports/*/*/'];

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const localOpts = { volatile: VOLATILE_PREFIXES, recycle: VOLATILE_PREFIXES, keep: KEPT_DIRS, ...(opts.log ? { log: opts.log } : {}) };
  if (opts.url === 'local') return new LocalStore(localStoreRoot(opts.libDir), localOpts);
  if (opts.url.startsWith('etcd://') || opts.url.startsWith('etcds://')) {
    // Loaded only here: the etcd client is heavy, and single-host use never needs it.
    const { EtcdStore, parseEtcdUrl } = await import('./etcd.js');
    const { ScopedStore } = await import('./scoped.js');
    const local = new LocalStore(localStoreRoot(opts.libDir), localOpts);
    return new ScopedStore(new EtcdStore(parseEtcdUrl(opts.url)), local);
  }
  throw new UserError(`invalid store ${JSON.stringify(opts.url)}: use "local", etcd://HOST:PORT[,HOST:PORT] or etcds://HOST:PORT?ca=FILE…`);
}
