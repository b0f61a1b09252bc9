// Lease-style readers-writer locks kept in a Store, so that they work wherever the Store does
// (the local store on one host, etcd across hosts) and need no daemon. Attaches and detaches hold
// the lock shared, so they never wait for each other; gc and network create/rm hold it exclusive,
// so gc never sees an attach half done (a lease without its record, a veth being wired) and a
// network is never removed under an attach.
//
//   <name>/exclusive        {holder, expires}   at most one; created with createIfAbsent
//   <name>/shared/<token>   {holder, expires}   one per shared holder
//
// The writer creates its key first, then waits for the shared keys to drain; a reader creates its
// key, then looks for a writer and, if there is one, withdraws and waits. With a linearizable
// store at least one of two racing parties sees the other, so they never both proceed. A writer
// that has announced itself is never overtaken by new readers.
//
// A crashed holder cannot wedge the host: a key whose holder is a process of this boot that no
// longer runs is broken at once, and any key past its expiry is broken too (the rule for holders
// on other hosts). Expiry is generous: it only matters for holders that vanished without a trace.
import { ConflictError } from '../config/errors.js';
import type { Store } from './store/store.js';
import { bootId } from './boot.js';
import { isAlive, processStartTime } from './containers.js';

interface Holder {
  boot: string;
  pid: number;
  start: string;
  expires: number;
}

export interface LockOptions {
  /** Give up waiting after this long (ms). */
  timeoutMs?: number;
  /** How long a held key stays valid without its holder being checkable (ms). */
  leaseMs?: number;
  /** Told once while waiting, so a long wait is visible in the log. */
  onWait?: (heldBy: string) => void;
}

/** liveHolder's answer when the holder is this very process. */
const SELF = 'this process';
/** The shared directory's permanent key (no holder). */
const ANCHOR = '_anchor';
const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_LEASE_MS = 10 * 60_000;
let tokenCounter = 0;

export type Release = () => Promise<void>;

/** A readers-writer lock: StoreLock here, or host-lock.ts's FileLock for this host's own lock. */
export interface ReadWriteLock {
  /** Holds the lock shared (many at once) until the returned function is called. */
  shared(): Promise<Release>;
  /** Holds the lock alone until the returned function is called. */
  exclusive(): Promise<Release>;
}

export class StoreLock implements ReadWriteLock {
  private anchored = false;

  constructor(
    private readonly store: Store,
    readonly name: string,
    private readonly opts: LockOptions = {},
  ) {}

  private get exclusiveKey(): string {
    return `${this.name}/exclusive`;
  }

  private get sharedPrefix(): string {
    return `${this.name}/shared/`;
  }

  /** Holds the lock shared (many at once) until the returned function is called. */
  async shared(): Promise<Release> {
    // A key that stays, so that the shared directory is never pruned and made again on every
    // acquire (measured: that churn is most of the cost on the local store). Checked once per
    // lock object: nothing of tsrun's deletes it, and without it only that churn comes back.
    if (!this.anchored) {
      if ((await this.store.get(`${this.sharedPrefix}${ANCHOR}`)) === undefined) await this.store.createIfAbsent(`${this.sharedPrefix}${ANCHOR}`, ANCHOR);
      this.anchored = true;
    }
    const key = `${this.sharedPrefix}${process.pid}-${Date.now().toString(36)}-${++tokenCounter}`;
    const waiter = lockWaiter(this.name, this.opts);
    for (;;) {
      const value = this.holderValue();
      await this.store.put(key, value);
      const writer = await this.liveHolder(this.exclusiveKey);
      // This very process holds it exclusive (gc cleaning up a container through the engine).
      // The key's name is this acquisition's own (pid, time, counter): no one else ever writes
      // it, so releasing is a plain delete, without the compare-and-delete's extra reads.
      if (writer === undefined || writer === SELF) return async () => void (await this.store.deleteIf(key));
      // A writer has announced itself: step aside until it is done.
      await this.store.deleteIf(key, value);
      await waiter(writer);
      while ((await this.liveHolder(this.exclusiveKey)) !== undefined) await waiter(writer);
    }
  }

  /** Holds the lock alone until the returned function is called. */
  async exclusive(): Promise<Release> {
    const waiter = lockWaiter(this.name, this.opts);
    const value = this.holderValue();
    while (!(await this.store.createIfAbsent(this.exclusiveKey, value))) {
      const other = await this.liveHolder(this.exclusiveKey);
      if (other === SELF) return async () => undefined; // nested: the outer holder releases
      if (other !== undefined) await waiter(other);
    }
    const release = async () => void (await this.store.deleteIf(this.exclusiveKey, value));
    try {
      for (;;) {
        const readers = [];
        for (const e of await this.store.list(this.sharedPrefix)) {
          if (e.key.endsWith(`/${ANCHOR}`)) continue;
          const h = await this.liveHolder(e.key, e.value);
          if (h !== undefined && h !== SELF) readers.push(e.key);
        }
        if (readers.length === 0) return release;
        await waiter(`${readers.length} shared holder(s)`);
      }
    } catch (err) {
      await release();
      throw err;
    }
  }

  private holderValue(): string {
    const holder: Holder = { boot: bootId(), pid: process.pid, start: processStartTime(process.pid) ?? '', expires: Date.now() + (this.opts.leaseMs ?? DEFAULT_LEASE_MS) };
    return JSON.stringify(holder);
  }

  /** Who holds `key`, or undefined when no one does; a dead or expired holder's key is broken. */
  private async liveHolder(key: string, known?: string): Promise<string | undefined> {
    const value = known ?? (await this.store.get(key));
    if (value === undefined) return undefined;
    let h: Holder | undefined;
    try {
      h = JSON.parse(value) as Holder;
    } catch {
      h = undefined;
    }
    const dead = h === undefined || Date.now() > h.expires || (h.boot === bootId() && !isAlive(h.pid, h.start));
    if (!dead) return h!.boot === bootId() && h!.pid === process.pid ? SELF : `process ${h!.pid}`;
    await this.store.deleteIf(key, value);
    return undefined;
  }

}

/**
 * The wait between two attempts at a lock, shared by StoreLock and the host's FileLock: a little
 * longer each time (2 ms doubling to 100 ms, jittered so that waiters spread out), onWait told
 * once, and past the timeout a ConflictError naming the lock and its holder.
 */
export function lockWaiter(name: string, opts: LockOptions): (heldBy: string) => Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  let delay = 2;
  let told = false;
  return async (heldBy) => {
    if (!told) {
      opts.onWait?.(heldBy);
      told = true;
    }
    if (Date.now() > deadline) throw new ConflictError(`timed out waiting for the ${name} lock (held by ${heldBy})`);
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
    delay = Math.min(delay * 2, 100);
  };
}
