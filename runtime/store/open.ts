// Chooses the Store named by settings.store ('local' or an etcd:// URL) so that the front doors
// and the engine never construct one themselves.
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

export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  if (opts.url === 'local') return new LocalStore(localStoreRoot(opts.libDir), opts.log ? { log: opts.log } : {});
  if (opts.url.startsWith('etcd://')) {
    throw new UserError(`store ${JSON.stringify(opts.url)}: the etcd store is not available yet`);
  }
  throw new UserError(`invalid store ${JSON.stringify(opts.url)}: use "local" or etcd://HOST:PORT[,HOST:PORT]`);
}
