// Builds the engine from settings: the Store named by settings.store and the nftables firewall.
// Both front doors call this; nothing else constructs a Store or a firewall.
import type { Settings } from '../config/settings.js';
import type { Logger } from './log.js';
import { Engine } from './engine.js';
import { openStore } from './store/open.js';
import { createFirewall } from './firewall/backend.js';
import type { Store } from './store/store.js';
import path from 'node:path';
import { LocalStore } from './store/local.js';
import { existsSync } from 'node:fs';
import { StoreLock, type ReadWriteLock, type Release } from './locks.js';
import { FileLock, recordLocksWork } from './host-lock.js';

export interface EngineHandle {
  engine: Engine;
  store: Store;
  close(): Promise<void>;
}

export async function openEngine(settings: Settings, log: Logger): Promise<EngineHandle> {
  const store = await openStore({ url: settings.store, libDir: settings.libDir, log });
  const engine = engineFor(store, settings, log);
  return { engine, store, close: async () => void (await store.close?.()) };
}

/** An engine over an open Store (the agent keeps one Store for everything). */
export function engineFor(store: Store, settings: Settings, log: Logger): Engine {
  const engine: Engine = new Engine({
    store,
    log,
    // In tsrun's own namespace a lost table is rebuilt from the Store (firewallState).
    firewall: (netns) =>
      createFirewall('nft', { nftBinary: settings.nft, backend: settings.nftBackend ?? 'auto', log, ...(netns ? { netns } : { rebuildLock: () => firewallRebuildLock(settings).exclusive(), intactRecord: path.join(settings.runDir, 'firewall.intact') }) }, netns ? undefined : () => engine.firewallState()),
    dns: { sync: async (start, containers) => void (await (await import('./dns/client.js')).syncResolver(settings, log, { start, containers })) },
    hostLock: hostLock(settings, log),
    root: settings.libDir,
  });
  return engine;
}

/** Serializes rebuilds of this host's firewall table (runtime/firewall/nft.ts rebuildLock): taken
 * only when the table is not current, never on an attach's usual path. Its own file beside the
 * host lock's. */
function firewallRebuildLock(settings: Settings): FileLock {
  return new FileLock(path.join(settings.runDir, 'locks', 'firewall-rebuild.lock'), 'firewall rebuild');
}

/** This host's readers-writer lock, in the run directory, because it guards this host's kernel
 * state and, like it, must not survive a reboot: record locks on one file (host-lock.ts), which
 * the kernel releases when a holder dies and which create nothing per acquisition. Where those
 * cannot be taken as host-lock.ts takes them (not 64-bit little-endian Linux), a StoreLock in a
 * local store there, not fsync'ed; its directories are never pruned: the shared one always holds
 * its anchor, and an rmdir that fails with ENOTEMPTY still costs ext4 a journal handle. */
export function hostLock(settings: Settings, log: Logger): ReadWriteLock {
  const opts = { onWait: (heldBy: string) => log.info({ heldBy }, 'waiting for the host lock') };
  const locks = path.join(settings.runDir, 'locks');
  const keyed = () => new StoreLock(new LocalStore(locks, { fsync: false, keep: ['host/', 'host/shared/'] }), 'host', opts);
  if (recordLocksWork()) return new WithKeyedWriters(new FileLock(path.join(locks, 'host.lock'), 'host', opts), path.join(locks, 'host'), keyed);
  return keyed();
}

/**
 * The record lock, whose exclusive holders also take the key-based lock while its directory
 * exists. tsrun before record locks (and tsrun where they cannot be taken) holds the host lock
 * as Store keys in the same `locks` directory (`host/exclusive`, `host/shared/<token>`), which
 * the record lock never sees: during an upgrade an old process's attach or detach (a foreground
 * `run` started before it, tearing down after) and a new gc or network rm held the host lock at
 * once. The key-based lock's writer waits for its readers' keys and turns new ones away, so a new
 * writer that also takes it excludes old readers and old writers. Only writers (gc, network
 * create/rm: rare) pay for it, and only where an old tsrun has made that directory since boot
 * (one stat otherwise; /run is a tmpfs, so it goes with the reboot). Left: an old writer still
 * does not see new readers, which take no key (their whole point is to create nothing per
 * acquisition); that needs an old gc or network command running during the upgrade itself.
 */
class WithKeyedWriters implements ReadWriteLock {
  constructor(
    private readonly lock: ReadWriteLock,
    private readonly keyedDir: string,
    private readonly keyed: () => ReadWriteLock,
  ) {}

  shared(): Promise<Release> {
    return this.lock.shared();
  }

  async exclusive(): Promise<Release> {
    const release = await this.lock.exclusive();
    if (!existsSync(this.keyedDir)) return release;
    let releaseKeyed: Release;
    try {
      releaseKeyed = await this.keyed().exclusive();
    } catch (err) {
      await release();
      throw err;
    }
    return async () => {
      try {
        await releaseKeyed();
      } finally {
        await release();
      }
    };
  }
}

/** Runs `fn` with an engine (and the Store under it) and closes the store afterwards, whatever happens. */
export async function withEngine<T>(settings: Settings, log: Logger, fn: (engine: Engine, store: Store) => Promise<T>): Promise<T> {
  const handle = await openEngine(settings, log);
  try {
    return await fn(handle.engine, handle.store);
  } finally {
    await handle.close();
  }
}
