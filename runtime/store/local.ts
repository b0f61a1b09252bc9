// The default Store: one file per key under a root directory, shared by every tsrun process on the
// host without a daemon or a lock. Correctness rests on three atomic filesystem operations:
//
//   createIfAbsent  write a temp file, then link() it to the key's name: link fails with EEXIST
//                   atomically, and the name only ever appears with its complete value (a process
//                   killed mid-write leaves at most a temp file, never an empty or torn key).
//   put             write a temp file, then rename() it over the key's name.
//   deleteIf        rename() the key to a unique tombstone, check the value there, and unlink it
//                   or link it back (see deleteIf for the window that remains).
//
// Published files are never modified in place, so a reader always sees a whole value; the one
// exception is overwrite(), for best-effort values only (hints), where a torn read is harmless.
// Names that contain '~' (outside the key charset) are temps and tombstones: never keys.
//
// Durability: by default each value is fdatasync'ed before it is published, so after a power
// loss a key is absent, old or complete, never zero-filled. Directories are not fsync'ed: the
// keys that matter across a reboot are re-creatable definitions, and a lease whose name was lost
// belonged to a container that did not survive the reboot either.
//
// Keys under a `volatile` prefix are not fdatasync'ed at all: the ones that describe this boot's
// containers (leases, host ports, endpoint records; see VOLATILE_PREFIXES in open.ts). What they
// describe (veths, namespaces, processes) does not survive a power loss, so neither must they:
// after one, such a key is absent, complete or empty/zero-filled, and readers take an unreadable
// value for what it is, a key of a container from before the crash (a torn record is skipped,
// gc frees a lease or port whose value names no live container). Within one boot nothing changes:
// a value is still published whole (temp + link/rename), and the page cache survives any process
// crash. An attach writes four such keys; their fdatasyncs were a third of its wiring time.
//
// Spare files (`recycle` prefixes, the same volatile ones): a deleted key's file is not unlinked
// but moved into a pool of spares of its kind (`~spare~<kind>/`, see poolOf), and the next
// write of a key of that kind takes a spare (rename) and writes its value over the old one in
// place (pwrite + ftruncate to the new length) before publishing it as before (link or rename).
// Why: on ext4 without a journal, allocating an inode skips every inode of the group freed in the
// last 30 seconds (it reads each one's deletion time), so in a directory whose file system is
// churned (a busy /tmp) creating a file took 0.1-0.8 ms and at worst tens of ms, freeing one
// costs too; a rename in place of both is a few µs. A spare is never read as a key (its name has
// a '~'), and within a boot a published value is exactly what was written (the page cache).
// After a power loss, a key so written may instead hold the value of another key of its kind from
// before the crash (the old data of the reused blocks) rather than zeros: readers already take any
// value of a volatile key as one of a container of an earlier boot (a lease or flush mark names
// its boot; a record whose container and network are not its key's is torn: records.ts; a host
// port names a container that gc frees unless it runs), so the kinds are kept apart for that.
//
// The syscalls are made synchronously, except fdatasync: an async fs call costs a thread-pool
// round trip (~50 µs measured here) for a syscall that takes a few µs, and tsrun's processes are
// short-lived and do nothing else while they touch the store. fdatasync, the one call that can
// take milliseconds, runs async, so other work in the process (and other allocations) proceeds.
import { closeSync, fdatasync as fdatasyncCallback, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync, writeSync, type Dirent, type Stats, constants as fsc } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { SystemError } from '../../config/errors.js';
import { isAlive, processStartTime } from '../containers.js';
import type { Store, StoreEntry } from './store.js';
import { compareKeys, isKeySegment, keySegments, leafConflict, matchesDirPattern, parseDirPatterns, prefixSegments } from './keys.js';

export interface LocalStoreOptions {
  /** fdatasync every value before publishing it (default true). Off only for throwaway roots. */
  fsync?: boolean;
  /** Key prefixes (ending in '/') whose values need not survive a power loss: never fdatasync'ed. */
  volatile?: readonly string[];
  /** Receives the rare anomalies deleteIf cannot undo (see there). */
  log?: { warn(obj: object, msg: string): void };
  /**
   * Directories never pruned when a delete empties them, as key prefixes ending in '/' in which a
   * segment written as a star matches any one segment (open.ts KEPT_DIRS). Pruning and
   * re-creating a directory is an rmdir and a mkdir, each costlier than the key's own write on
   * ext4 (0.2-0.4 ms measured): without this, every attach re-created endpoints/ and
   * hostports/<proto>/<port>/ and every detach removed them again. Keep only directories whose
   * number stays bounded (a fixed set, or one per published port number).
   */
  keep?: readonly string[];
  /** Key prefixes (ending in '/') whose deleted files are kept as spares and reused (see the
   * header). Only for volatile prefixes: a reused file's old data may resurface after a power loss. */
  recycle?: readonly string[];
}

export interface SweepResult {
  /** Temp files of writers that died before publishing. */
  removedTemps: number;
  /** Tombstones of deleters that died mid-delete, linked back because their key was absent. */
  restored: number;
  /** Tombstones removed because their key exists again. */
  removedTombstones: number;
}

const TEMP = '~tmp~';
const TOMB = '~del~';
const SPARE = '~spare~';
/** Marks a temp made from a spare; the time it was taken follows (base 36 ms). */
const CLAIMED = 'r';
/** Spares kept per kind by sweep(); between sweeps a pool holds at most what was deleted. */
const MAX_SPARES = 64;
/** How long a pool found empty is not listed again (only a spare missed, never a wrong one). */
const EMPTY_POOL_RECHECK_MS = 1000;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/** Bounded retries for the race with concurrent deletes pruning the directories we write into. */
const MKDIR_ATTEMPTS = 20;
const fdatasync = promisify(fdatasyncCallback);

/**
 * Unique per process (pid + random) and per call (counter), so temp names never collide; with the
 * writer's start time and pid namespace (`<pid>-<start>-<pidns>`), so that sweep can tell a temp of
 * a writer that died (a SIGKILLed tsrun between its write and its rename) from one a live writer is
 * still making, and remove the former at once instead of after `olderThanMs`. The namespace is
 * part of it because a pid means something only in its namespace: a writer in another one (a tsrun
 * in a container sharing the store's directory) named pids the sweeper's /proc gives to other
 * processes, and its live temp was taken for a dead writer's and removed under it. Made on the
 * first write; without a /proc of its own namespace (pids /proc does not name) the old form
 * `<pid>.<random>`, which the age rule covers.
 */
let nonce: string | undefined;
let counter = 0;
export function tempTag(): string {
  nonce ??= `${process.pid}${ownPidNs() === undefined ? '' : `-${processStartTime(process.pid) ?? ''}-${ownPidNs()}`}.${Math.random().toString(36).slice(2, 8)}`;
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${nonce}.${counter}`;
}

/** The inode of this process's pid namespace when /proc shows that namespace (its entry for this
 * process is its own pid), else undefined: pids read in /proc then name other processes. */
let pidNs: string | null | undefined;
function ownPidNs(): string | undefined {
  if (pidNs === undefined) {
    try {
      pidNs = readlinkSync('/proc/self') === String(process.pid) ? String(statSync('/proc/self/ns/pid').ino) : null;
    } catch {
      pidNs = null;
    }
  }
  return pidNs ?? undefined;
}

/** The temp `name` (TEMP…) was made by a process that has ended: its tag names the writer's pid,
 * start time and pid namespace, this one's, and that process no longer runs. Temps of another pid
 * namespace, and those named before the tag carried all three, are never called dead: the age
 * rule covers them. */
function writerDied(name: string): boolean {
  const m = /^~tmp~(?:r[0-9a-z]+\.)?(\d+)-(\d+)-(\d+)\./.exec(name);
  return m !== null && m[3] === ownPidNs() && !isAlive(Number(m[1]), m[2]!);
}

export class LocalStore implements Store {
  readonly root: string;
  private readonly fsync: boolean;
  private readonly volatile: readonly string[];
  private readonly log: LocalStoreOptions['log'];
  private readonly keep: string[][];
  private readonly recycle: readonly string[];
  /** Names of spares this process put into each pool and has not taken back (LIFO). */
  private readonly knownSpares = new Map<string, string[]>();
  /** Pools found empty, until when (ms) they are not listed again: a process attaching many
   * containers and deleting none (a burst, the scale bench) would list them on every write. */
  private readonly emptyUntil = new Map<string, number>();

  constructor(root: string, opts: LocalStoreOptions = {}) {
    this.root = path.resolve(root);
    this.fsync = opts.fsync ?? true;
    this.volatile = opts.volatile ?? [];
    this.log = opts.log;
    this.keep = parseDirPatterns(opts.keep ?? []);
    this.recycle = opts.recycle ?? [];
  }

  async get(key: string): Promise<string | undefined> {
    const file = this.fileOf(key);
    try {
      // An absent key is a common answer (an attach's flush mark): looked for first, because a
      // failed read builds an exception (~10-30 µs) where the look costs one statx (~2 µs).
      const st = statSync(file, { throwIfNoEntry: false });
      if (st === undefined || st.isDirectory()) return undefined;
      return readFileSync(file, 'utf8');
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) return undefined;
      throw this.failure('read', key, e);
    }
  }

  async put(key: string, value: string): Promise<void> {
    const file = this.fileOf(key);
    const tmp = await this.writeTemp(key, file, value);
    try {
      renameSync(tmp, file);
    } catch (e) {
      unlinkQuietly(tmp);
      if (isCode(e, 'EISDIR', 'ENOTEMPTY', 'EEXIST')) throw leafConflict(key, `${key}/...`);
      throw this.failure('write', key, e);
    }
  }

  /**
   * Writes `value` over the key's file in place (write at offset 0, then truncate to its length):
   * no temp file, no rename. Only for best-effort values (Store.overwrite): a reader racing with it
   * can see a mix of the old and the new value, and a power loss can leave a torn one. Why:
   * replacing a file by rename makes ext4 write the new file's data out first (its auto_da_alloc
   * rule for rename over an existing file): a put of IPAM's hint took 1-1.4 ms here on every
   * allocation, this takes ~25 µs. An absent key is created as put creates it.
   */
  async overwrite(key: string, value: string): Promise<void> {
    const file = this.fileOf(key);
    let fd: number;
    try {
      fd = openSync(file, fsc.O_WRONLY | fsc.O_NOFOLLOW);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return this.put(key, value);
      if (isCode(e, 'EISDIR')) throw leafConflict(key, `${key}/...`);
      if (isCode(e, 'ENOTDIR')) throw this.ancestorConflict(key);
      throw this.failure('write', key, e);
    }
    try {
      const buf = Buffer.from(value, 'utf8');
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off, off);
      ftruncateSync(fd, buf.length);
    } catch (e) {
      throw this.failure('write', key, e);
    } finally {
      closeSync(fd);
    }
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    const file = this.fileOf(key);
    // Fast refusal without writing anything: an allocator walking a dense pool pays one lstat per
    // taken address. The link below stays the only authority.
    let existing;
    try {
      existing = lstatOrUndefined(file);
    } catch (e) {
      throw this.failure('create', key, e);
    }
    if (existing?.isDirectory()) throw leafConflict(key, `${key}/...`);
    if (existing) return false;
    const tmp = await this.writeTemp(key, file, value);
    try {
      linkSync(tmp, file);
      return true;
    } catch (e) {
      if (isCode(e, 'EEXIST')) return false;
      throw this.failure('create', key, e);
    } finally {
      unlinkQuietly(tmp);
    }
  }

  /**
   * Conditional delete without a lock. Read-compare-unlink would let two deleters expecting the
   * same value (a container's release racing gc's releaseAll) both pass the compare, and the
   * second unlink could remove a lease a third process created in between. Instead the key is
   * renamed to a unique tombstone, which exactly one deleter can do, and the value is checked in
   * the tombstone. On a mismatch it is linked back (link, never rename: it must not overwrite).
   *
   * Remaining window: between that rename and the link-back (three back-to-back syscalls) the
   * key is briefly absent; if another process's createIfAbsent wins the name in those
   * microseconds, the value we moved aside is lost (logged). That takes a stale deleter, a
   * re-creation and a second creator on the same key at once. A deleter killed inside the
   * window leaves a tombstone that sweep() links back.
   */
  async deleteIf(key: string, expected?: string): Promise<boolean> {
    const file = this.fileOf(key);
    if (expected === undefined) {
      const pool = this.poolOf(key);
      try {
        if (pool === undefined || !this.park(pool, file)) unlinkSync(file);
      } catch (e) {
        if (isCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) return false;
        throw this.failure('delete', key, e);
      }
      this.pruneParents(file);
      return true;
    }
    // A mismatch seen here is a valid outcome on its own (the compare happened at this read), and
    // it is by far the common case for a stale release, so it costs no rename.
    if ((await this.get(key)) !== expected) return false;

    const tomb = path.join(path.dirname(file), `${TOMB}${tempTag()}~${path.basename(file)}`);
    try {
      renameSync(file, tomb);
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR')) return false; // another deleter got there first
      throw this.failure('delete', key, e);
    }
    let moved: string;
    try {
      moved = readFileSync(tomb, 'utf8');
    } catch (e) {
      throw this.failure('delete', key, e, `read tombstone ${tomb}`);
    }
    if (moved === expected) {
      const pool = this.poolOf(key);
      if (pool === undefined || !this.parkQuietly(pool, tomb)) unlinkQuietly(tomb);
      this.pruneParents(file);
      return true;
    }
    try {
      linkSync(tomb, file);
    } catch (e) {
      if (!isCode(e, 'EEXIST')) throw this.failure('delete', key, e, `restore ${JSON.stringify(moved)} from ${tomb}`);
      this.log?.warn({ key, lostValue: moved, expected }, `deleteIf ${key}: a concurrent create replaced the value it had set aside; the old value is lost`);
    }
    unlinkQuietly(tomb);
    return false;
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    const segments = prefixSegments(prefix);
    const entries: StoreEntry[] = [];
    if (!isDirectory(path.join(this.root, ...segments))) return entries;
    this.walk(path.join(this.root, ...segments), prefix, (key, file) => {
      try {
        entries.push({ key, value: readFileSync(file, 'utf8') });
      } catch (e) {
        if (!isCode(e, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw this.failure('read', key, e);
        // deleted between readdir and read: not part of the listing
      }
    }, () => {});
    return entries.sort((a, b) => compareKeys(a.key, b.key));
  }

  /** The keys list would return, from the directories alone: no value file is opened. */
  async listKeys(prefix: string): Promise<string[]> {
    const segments = prefixSegments(prefix);
    const keys: string[] = [];
    if (!isDirectory(path.join(this.root, ...segments))) return keys;
    this.walk(path.join(this.root, ...segments), prefix, (key) => void keys.push(key), () => {});
    return keys.sort(compareKeys);
  }

  /**
   * Cleans up after processes killed mid-operation (for gc): removes temp files older than
   * `olderThanMs` (younger ones may belong to a live writer) and resolves old tombstones by
   * linking them back when their key is absent. Restoring errs on the safe side: a delete that
   * had succeeded comes back as a stale entry that gc releases again, whereas dropping a
   * tombstone whose restore was pending would free an address that is still in use.
   */
  async sweep(olderThanMs = 60_000): Promise<SweepResult> {
    const result: SweepResult = { removedTemps: 0, restored: 0, removedTombstones: 0 };
    const cutoff = Date.now() - olderThanMs;
    const stale: string[] = [];
    this.walk(this.root, '', () => {}, (file) => void stale.push(file));
    for (const file of stale) {
      const st = lstatOrUndefined(file);
      if (st?.isDirectory() && path.dirname(file) === this.root && path.basename(file).startsWith(SPARE)) {
        this.trimPool(file);
        continue;
      }
      if (!st || !st.isFile()) continue;
      const name = path.basename(file);
      // A dead writer's temp goes now; anything else only once it is older than the cutoff.
      if (Math.max(st.mtimeMs, claimedAt(name)) > cutoff && !(name.startsWith(TEMP) && writerDied(name))) continue;
      if (name.startsWith(TOMB)) {
        const original = path.join(path.dirname(file), name.slice(name.lastIndexOf('~') + 1));
        try {
          linkSync(file, original);
          result.restored++;
        } catch (e) {
          if (!isCode(e, 'EEXIST')) throw this.failure('sweep', path.relative(this.root, original), e);
          result.removedTombstones++;
        }
      } else {
        result.removedTemps++;
      }
      unlinkQuietly(file);
    }
    return result;
  }

  async close(): Promise<void> {}

  /** The key's file; keySegments guarantees it stays under the root. */
  private fileOf(key: string): string {
    return path.join(this.root, ...keySegments(key));
  }

  /** Writes `value` to a fresh temp file beside `file` (same directory, so link/rename work). */
  private async writeTemp(key: string, file: string, value: string): Promise<string> {
    const dir = path.dirname(file);
    const tmp = path.join(dir, `${TEMP}${tempTag()}~${path.basename(file)}`);
    const pool = this.poolOf(key);
    if (pool !== undefined) {
      // The spare's mtime is old until it is written: its temp name says when it was taken, so
      // that sweep does not take it for a dead writer's in between.
      const claimed = path.join(dir, `${TEMP}${CLAIMED}${Date.now().toString(36)}.${tempTag()}~${path.basename(file)}`);
      if (this.claimSpare(key, pool, dir, claimed)) {
        this.writeOver(key, claimed, value);
        return claimed;
      }
    }
    let fd: number;
    for (let attempt = 1; ; attempt++) {
      try {
        fd = openSync(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, FILE_MODE);
        break;
      } catch (e) {
        if (isCode(e, 'ENOENT') && attempt < MKDIR_ATTEMPTS) {
          this.makeDir(key, dir);
          continue;
        }
        if (isCode(e, 'ENOTDIR')) throw this.ancestorConflict(key);
        throw this.failure('write', key, e);
      }
    }
    try {
      writeFileSync(fd, value, 'utf8');
      if (this.fsync && !this.volatile.some((p) => key.startsWith(p))) await fdatasync(fd);
    } catch (e) {
      unlinkQuietly(tmp);
      throw this.failure('write', key, e);
    } finally {
      closeSync(fd);
    }
    return tmp;
  }

  /** The spare pool of `key`'s kind, or undefined when its files are not recycled. Kinds: the
   * first segment, and for names starting with '_' their first dotted part too (a lease, an
   * allocation hint and a flush mark all live in ipam/<network>/, and must not take each other's
   * files: see the header). */
  private poolOf(key: string): string | undefined {
    if (!this.recycle.some((p) => key.startsWith(p))) return undefined;
    // A spare is written over without fdatasync: durable keys never use one.
    if (this.fsync && !this.volatile.some((p) => key.startsWith(p))) return undefined;
    const first = key.slice(0, key.indexOf('/'));
    const last = key.slice(key.lastIndexOf('/') + 1);
    const kind = last.startsWith('_') ? `${first}.${last.split('.')[0]}` : first;
    return path.join(this.root, `${SPARE}${kind}`);
  }

  /**
   * Moves a key's file (or a tombstone) into `pool` under a name of its own instead of unlinking
   * it: the name it had disappears as atomically. False when the pool cannot be used (then the
   * caller unlinks as before); ENOENT of `file` itself is thrown as unlink would throw it.
   */
  private park(pool: string, file: string): boolean {
    // Only a regular file: a rename would move a directory away (unlink refuses it).
    const st = lstatOrUndefined(file);
    if (st === undefined) throw Object.assign(new Error(`${file}: no such file`), { code: 'ENOENT' });
    // And only a file with no other name: a temp or tombstone a killed process left linked to
    // it would, reused, carry another key's value (sweep could link a tombstone back).
    if (!st.isFile() || st.nlink !== 1) return false;
    const name = `s${tempTag()}`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        renameSync(file, path.join(pool, name));
        let known = this.knownSpares.get(pool);
        if (!known) this.knownSpares.set(pool, (known = []));
        known.push(name);
        return true;
      } catch (e) {
        if (!isCode(e, 'ENOENT')) return false;
        // The file is gone (a concurrent delete: the caller's unlink reports it), or the pool
        // does not exist yet (made once, then the rename again).
        if (lstatOrUndefined(file) === undefined) throw e;
        try {
          mkdirSync(pool, { mode: DIR_MODE });
        } catch (err) {
          if (!isCode(err, 'EEXIST')) return false;
        }
      }
    }
    return false;
  }

  private parkQuietly(pool: string, file: string): boolean {
    try {
      return this.park(pool, file);
    } catch {
      return false;
    }
  }

  /** Takes a spare of the pool as the temp file `tmp` (rename: one taker wins). False: none. */
  private claimSpare(key: string, pool: string, dir: string, tmp: string): boolean {
    let names = this.knownSpares.get(pool);
    if (!names || names.length === 0) {
      if ((this.emptyUntil.get(pool) ?? 0) > Date.now()) return false;
      try {
        names = readdirSync(pool);
      } catch {
        names = []; // no pool yet
      }
      if (names.length === 0) this.emptyUntil.set(pool, Date.now() + EMPTY_POOL_RECHECK_MS);
      this.knownSpares.set(pool, names);
    }
    let madeDir = false;
    while (names.length > 0) {
      const name = names[names.length - 1]!;
      try {
        renameSync(path.join(pool, name), tmp);
        names.pop();
        return true;
      } catch (e) {
        if (!isCode(e, 'ENOENT')) {
          if (isCode(e, 'ENOTDIR')) throw this.ancestorConflict(key);
          return false;
        }
        // The key's directory may not exist yet (made once, then the same spare again); else
        // another process took that spare.
        if (!madeDir && lstatOrUndefined(dir) === undefined) {
          this.makeDir(key, dir);
          madeDir = true;
          continue;
        }
        names.pop();
      }
    }
    return false;
  }

  /** Writes `value` over the spare `tmp` in place: the old value is overwritten, then cut to the
   * new length (never truncated to zero first: ext4 would then write the file out on close). */
  private writeOver(key: string, tmp: string, value: string): void {
    let fd: number | undefined;
    try {
      fd = openSync(tmp, fsc.O_WRONLY | fsc.O_NOFOLLOW);
      const buf = Buffer.from(value, 'utf8');
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off, off);
      ftruncateSync(fd, buf.length);
    } catch (e) {
      unlinkQuietly(tmp);
      throw this.failure('write', key, e);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Keeps at most MAX_SPARES files in a pool (sweep): deletes outnumbered creates meanwhile. */
  private trimPool(pool: string): void {
    let names: string[];
    try {
      names = readdirSync(pool);
    } catch {
      return;
    }
    for (const name of names.slice(MAX_SPARES)) unlinkQuietly(path.join(pool, name));
    this.knownSpares.delete(pool);
  }

  private makeDir(key: string, dir: string): void {
    try {
      mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    } catch (e) {
      // A concurrent delete pruned a parent we had just created: the caller's loop tries again.
      if (isCode(e, 'ENOENT')) return;
      if (isCode(e, 'ENOTDIR', 'EEXIST')) throw this.ancestorConflict(key);
      throw this.failure('write', key, e, `create directory ${dir}`);
    }
  }

  /** Names the existing key that sits where `key` needs a directory. */
  private ancestorConflict(key: string): Error {
    const segments = keySegments(key);
    for (let i = 1; i < segments.length; i++) {
      const st = lstatOrUndefined(path.join(this.root, ...segments.slice(0, i)));
      if (st && !st.isDirectory()) return leafConflict(key, segments.slice(0, i).join('/'));
    }
    return new SystemError(`write store key ${JSON.stringify(key)}`, new Error('a path component is not a directory'));
  }

  /** Removes directories left empty by a delete, up to (not including) the root or the first kept
   * directory. A writer that loses this race gets ENOENT on its temp file and recreates the
   * directory (writeTemp). */
  private pruneParents(file: string): void {
    for (let dir = path.dirname(file); dir !== this.root && dir.startsWith(this.root); dir = path.dirname(dir)) {
      if (this.keep.length > 0 && matchesDirPattern(path.relative(this.root, dir).split(path.sep), this.keep)) return;
      try {
        rmdirSync(dir);
      } catch {
        return; // not empty (the usual case), or already gone
      }
    }
  }

  /**
   * Depth-first walk: `onKey` for files named like keys, `onOther` for temps and tombstones.
   * A directory that vanishes mid-walk (pruned by a delete) simply has no keys.
   */
  private walk(dir: string, keyPrefix: string, onKey: (key: string, file: string) => void, onOther: (file: string) => void): void {
    let dirents: Dirent[];
    try {
      dirents = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      if (isCode(e, 'ENOENT', 'ENOTDIR')) return;
      throw new SystemError(`list store directory ${dir}`, e);
    }
    for (const d of dirents) {
      const full = path.join(dir, d.name);
      if (!isKeySegment(d.name)) {
        if (d.name.includes('~')) onOther(full);
        continue;
      }
      if (d.isDirectory()) this.walk(full, `${keyPrefix}${d.name}/`, onKey, onOther);
      else if (d.isFile()) onKey(`${keyPrefix}${d.name}`, full);
    }
  }

  private failure(op: string, key: string, cause: unknown, detail?: string): SystemError {
    const step = `${op} store key ${JSON.stringify(key)} in ${this.root}`;
    return new SystemError(step, cause, detail === undefined ? undefined : `${detail}: ${errMessage(cause)}`);
  }
}

function lstatOrUndefined(file: string): Stats | undefined {
  try {
    // Absent is the common answer (a free address): no exception built for it.
    return lstatSync(file, { throwIfNoEntry: false });
  } catch (e) {
    if (isCode(e, 'ENOENT', 'ENOTDIR')) return undefined;
    throw e;
  }
}

/** `dir` is a directory now. A prefix with no keys has none (an attach lists its container's
 * records, usually none): found without readdir's exception (see get). Races stay with walk. */
function isDirectory(dir: string): boolean {
  try {
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return true; // ENOTDIR, EACCES...: walk decides as before
  }
}

/** When a temp made from a spare was taken (ms), or 0 for any other name. */
function claimedAt(name: string): number {
  if (!name.startsWith(`${TEMP}${CLAIMED}`)) return 0;
  const t = parseInt(name.slice(TEMP.length + CLAIMED.length, name.indexOf('.', TEMP.length)), 36);
  return Number.isFinite(t) ? t : 0;
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone, or the directory was removed with it
  }
}

function isCode(e: unknown, ...codes: string[]): boolean {
  return typeof e === 'object' && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
