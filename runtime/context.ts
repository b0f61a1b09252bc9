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
import { StoreLock, type ReadWriteLock } from './locks.js';
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
      createFirewall('nft', { nftBinary: settings.nft, backend: settings.nftBackend ?? 'auto', log, ...(netns ? { netns } : {}) }, netns ? undefined : () => engine.firewallState()),
    dns: { sync: async (start, containers) => void (await (await import('./dns/client.js')).syncResolver(settings, log, { start, containers })) },
    hostLock: hostLock(settings, log),
  });
  return engine;
}

/** This host's readers-writer lock, in the run directory, because it guards this host's kernel
 * state and, like it, must not survive a reboot: record locks on one file (host-lock.ts), which
 * the kernel releases when a holder dies and which create nothing per acquisition. Where those
 * cannot be taken as host-lock.ts takes them (not 64-bit little-endian Linux), a StoreLock in a
 * local store there, not fsync'ed; its directories are never pruned: the shared one always holds
 * its anchor, and an rmdir that fails with ENOTEMPTY still costs ext4 a journal handle. */
export function hostLock(settings: Settings, log: Logger): ReadWriteLock {
  const opts = { onWait: (heldBy: string) => log.info({ heldBy }, 'waiting for the host lock') };
  if (recordLocksWork()) return new FileLock(path.join(settings.runDir, 'locks', 'host.lock'), 'host', opts);
  return new StoreLock(new LocalStore(path.join(settings.runDir, 'locks'), { fsync: false, keep: ['host/', 'host/shared/'] }), 'host', opts);
}

/** Runs `fn` with an engine and closes its store afterwards, whatever happens. */
export async function withEngine<T>(settings: Settings, log: Logger, fn: (engine: Engine) => Promise<T>): Promise<T> {
  const handle = await openEngine(settings, log);
  try {
    return await fn(handle.engine);
  } finally {
    await handle.close();
  }
}
