// An in-process Store for unit tests. Every operation completes within one synchronous section,
// so it is trivially atomic; it applies the same key rules as the local store (including "a key
// cannot also be a prefix") so that layouts tested here work on disk too.
import type { Store, StoreEntry, WatchEvent } from './store.js';
import { checkKey, compareKeys, keySegments, leafConflict, prefixSegments } from './keys.js';

interface Watcher {
  prefix: string;
  onEvent: (e: WatchEvent) => void;
}

export class MemoryStore implements Store {
  private readonly values = new Map<string, string>();
  /** Number of keys below each directory-like path ("a/b" for key "a/b/c"). */
  private readonly dirs = new Map<string, number>();
  private readonly watchers = new Set<Watcher>();

  async get(key: string): Promise<string | undefined> {
    checkKey(key);
    return this.values.get(key);
  }

  async put(key: string, value: string): Promise<void> {
    this.checkLeaf(key);
    const existed = this.values.has(key);
    this.values.set(key, value);
    if (!existed) this.countAncestors(key, +1);
    this.emit({ type: 'put', key, value });
  }

  async createIfAbsent(key: string, value: string): Promise<boolean> {
    this.checkLeaf(key);
    if (this.values.has(key)) return false;
    this.values.set(key, value);
    this.countAncestors(key, +1);
    this.emit({ type: 'put', key, value });
    return true;
  }

  async deleteIf(key: string, expected?: string): Promise<boolean> {
    checkKey(key);
    const current = this.values.get(key);
    if (current === undefined) return false;
    if (expected !== undefined && current !== expected) return false;
    this.values.delete(key);
    this.countAncestors(key, -1);
    this.emit({ type: 'delete', key });
    return true;
  }

  async list(prefix: string): Promise<StoreEntry[]> {
    prefixSegments(prefix);
    const out: StoreEntry[] = [];
    for (const [key, value] of this.values) if (key.startsWith(prefix)) out.push({ key, value });
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async listKeys(prefix: string): Promise<string[]> {
    return (await this.list(prefix)).map((e) => e.key);
  }

  async watch(prefix: string, onEvent: (e: WatchEvent) => void): Promise<() => Promise<void>> {
    prefixSegments(prefix);
    const w: Watcher = { prefix, onEvent };
    this.watchers.add(w);
    return async () => {
      this.watchers.delete(w);
    };
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }

  /** Events are delivered asynchronously, in order, like a real store's watch stream. */
  private emit(e: WatchEvent): void {
    for (const w of this.watchers) {
      if (!e.key.startsWith(w.prefix)) continue;
      queueMicrotask(() => {
        if (this.watchers.has(w)) w.onEvent({ ...e });
      });
    }
  }

  private checkLeaf(key: string): void {
    const segments = keySegments(key);
    if (this.dirs.has(key)) {
      const below = [...this.values.keys()].find((k) => k.startsWith(`${key}/`)) ?? `${key}/...`;
      throw leafConflict(key, below);
    }
    for (let i = 1; i < segments.length; i++) {
      const ancestor = segments.slice(0, i).join('/');
      if (this.values.has(ancestor)) throw leafConflict(key, ancestor);
    }
  }

  private countAncestors(key: string, delta: 1 | -1): void {
    const segments = key.split('/');
    for (let i = 1; i < segments.length; i++) {
      const dir = segments.slice(0, i).join('/');
      const n = (this.dirs.get(dir) ?? 0) + delta;
      if (n === 0) this.dirs.delete(dir);
      else this.dirs.set(dir, n);
    }
  }
}
