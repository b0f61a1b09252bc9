// The Store contract: every implementation (memory, local files, etcd) runs this same suite, so
// IPAM and the engine can be written once against the interface. Call it from a *.test.ts file:
//   storeContract('LocalStore', async () => ({ store: new LocalStore(dir), cleanup }));
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { listKeys, type Store, type WatchEvent } from '../../../runtime/store/store.js';

export interface StoreFixture {
  store: Store;
  cleanup?: () => Promise<void>;
}

export interface ContractOptions {
  /** The store refuses a key that is also a prefix of another key (true for memory and local). */
  leafKeysOnly?: boolean;
}

const INVALID_KEYS = ['', '/abs', 'a//b', 'a/../b', '..', '.', 'a/./b', 'a b', 'a/b/', 'a\\b', 'a\u0000b', 'ü', `x/${'y'.repeat(201)}`];

export function storeContract(name: string, factory: () => Promise<StoreFixture>, opts: ContractOptions = {}): void {
  describe(`Store contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      fx = await factory();
      store = fx.store;
    });
    afterEach(async () => {
      await store.close?.();
      await fx.cleanup?.();
    });

    describe('get / put', () => {
      it('returns undefined for an absent key', async () => {
        expect(await store.get('nothing/here')).toBeUndefined();
      });

      it('round-trips values, including empty, multi-line and non-ASCII ones', async () => {
        for (const value of ['x', '', '{"a":1,\n"b":[2]}\n', 'héllo ✓']) {
          await store.put('records/r1', value);
          expect(await store.get('records/r1')).toBe(value);
        }
      });

      it('replaces an existing value', async () => {
        await store.put('k', 'one');
        await store.put('k', 'two');
        expect(await store.get('k')).toBe('two');
        expect(await store.list('')).toEqual([{ key: 'k', value: 'two' }]);
      });

      it('accepts IPv6 addresses as segments', async () => {
        await store.put('ipam/v6/fd00::1', 'c1');
        expect(await store.get('ipam/v6/fd00::1')).toBe('c1');
      });
    });

    describe('createIfAbsent', () => {
      it('creates once and never overwrites', async () => {
        expect(await store.createIfAbsent('ipam/web/10.88.0.2', 'c1')).toBe(true);
        expect(await store.createIfAbsent('ipam/web/10.88.0.2', 'c2')).toBe(false);
        expect(await store.get('ipam/web/10.88.0.2')).toBe('c1');
      });

      it('has exactly one winner among 50 concurrent calls, and the winner\'s value sticks', async () => {
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.createIfAbsent('race/key', `c${i}`)));
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        expect(winners).toHaveLength(1);
        expect(await store.get('race/key')).toBe(`c${winners[0]}`);
      });

      it('lets 50 concurrent calls on distinct keys all win', async () => {
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.createIfAbsent(`many/k${i}`, `v${i}`)));
        expect(results.every(Boolean)).toBe(true);
        expect(await store.list('many/')).toHaveLength(50);
      });

      it('creates again after a delete', async () => {
        await store.createIfAbsent('k', 'a');
        await store.deleteIf('k', 'a');
        expect(await store.createIfAbsent('k', 'b')).toBe(true);
        expect(await store.get('k')).toBe('b');
      });
    });

    describe('deleteIf', () => {
      it('returns false for an absent key', async () => {
        expect(await store.deleteIf('absent', 'x')).toBe(false);
        expect(await store.deleteIf('absent')).toBe(false);
      });

      it('keeps the key when the value differs', async () => {
        await store.put('k', 'mine');
        expect(await store.deleteIf('k', 'yours')).toBe(false);
        expect(await store.get('k')).toBe('mine');
      });

      it('deletes when the value matches, once', async () => {
        await store.put('k', 'mine');
        expect(await store.deleteIf('k', 'mine')).toBe(true);
        expect(await store.get('k')).toBeUndefined();
        expect(await store.deleteIf('k', 'mine')).toBe(false);
      });

      it('deletes unconditionally when expected is omitted', async () => {
        await store.put('k', 'mine');
        expect(await store.deleteIf('k')).toBe(true);
        expect(await store.get('k')).toBeUndefined();
      });

      it('has exactly one winner among 20 concurrent deleters', async () => {
        await store.put('k', 'v');
        const results = await Promise.all(Array.from({ length: 20 }, () => store.deleteIf('k', 'v')));
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('never removes a value it did not expect under concurrent delete and re-create', async () => {
        // Stale deleters expecting "old" race with a creator of "new": "new" must survive.
        await store.put('k', 'old');
        const ops: Promise<unknown>[] = [];
        for (let i = 0; i < 20; i++) ops.push(store.deleteIf('k', 'old'));
        ops.push((async () => {
          while (!(await store.createIfAbsent('k', 'new'))) await new Promise((r) => setImmediate(r));
        })());
        for (let i = 0; i < 20; i++) ops.push(store.deleteIf('k', 'old'));
        await Promise.all(ops);
        expect(await store.get('k')).toBe('new');
      });
    });

    describe('list', () => {
      beforeEach(async () => {
        for (const k of ['a/b/2', 'a/b/10', 'a/b/1', 'a/bc/x', 'a/b.c', 'a/b-c', 'a/b/deep/er', 'z']) await store.put(k, `v:${k}`);
      });

      it('returns every key under the prefix, recursively, in key order', async () => {
        const keys = (await store.list('a/b/')).map((e) => e.key);
        expect(keys).toEqual(['a/b/1', 'a/b/10', 'a/b/2', 'a/b/deep/er']);
      });

      it('respects prefix boundaries: a/b/ does not match a/bc/ or a/b.c', async () => {
        expect((await store.list('a/bc/')).map((e) => e.key)).toEqual(['a/bc/x']);
        expect((await store.list('a/b/')).some((e) => e.key.startsWith('a/bc') || e.key === 'a/b.c')).toBe(false);
      });

      it('lists everything for the empty prefix, sorted by code unit', async () => {
        const keys = (await store.list('')).map((e) => e.key);
        expect(keys).toEqual([...keys].sort());
        expect(keys).toEqual(['a/b-c', 'a/b.c', 'a/b/1', 'a/b/10', 'a/b/2', 'a/b/deep/er', 'a/bc/x', 'z']);
      });

      it('returns values with keys', async () => {
        expect(await store.list('a/bc/')).toEqual([{ key: 'a/bc/x', value: 'v:a/bc/x' }]);
      });

      it('returns [] for an absent prefix and for a prefix that is a key', async () => {
        expect(await store.list('nope/')).toEqual([]);
        expect(await store.list('z/')).toEqual([]);
      });

      it('drops deleted keys', async () => {
        await store.deleteIf('a/b/deep/er');
        expect((await store.list('a/b/')).map((e) => e.key)).toEqual(['a/b/1', 'a/b/10', 'a/b/2']);
        expect(await store.list('a/b/deep/')).toEqual([]);
      });

      it('listKeys (where the store has it) names what list returns, without values', async () => {
        for (const prefix of ['a/b/', 'a/bc/', '', 'nope/', 'z/']) expect(await listKeys(store, prefix)).toEqual((await store.list(prefix)).map((e) => e.key));
        await store.deleteIf('a/b/deep/er');
        expect(await listKeys(store, 'a/b/')).toEqual(['a/b/1', 'a/b/10', 'a/b/2']);
        if (store.listKeys) await expect(store.listKeys('a/b')).rejects.toThrow(UserError);
      });

      it('refuses a prefix without the trailing slash', async () => {
        await expect(store.list('a/b')).rejects.toThrow(UserError);
        await expect(store.list('/')).rejects.toThrow(UserError);
        await expect(store.list('../')).rejects.toThrow(UserError);
      });
    });

    describe('key validation', () => {
      it.each(INVALID_KEYS)('refuses %j in every operation', async (key) => {
        await expect(store.get(key)).rejects.toThrow(UserError);
        await expect(store.put(key, 'v')).rejects.toThrow(UserError);
        await expect(store.createIfAbsent(key, 'v')).rejects.toThrow(UserError);
        await expect(store.deleteIf(key, 'v')).rejects.toThrow(UserError);
      });

      it('names the key in the message', async () => {
        await expect(store.put('ipam/../../etc/passwd', 'x')).rejects.toThrow(/invalid store key "ipam\/..\/..\/etc\/passwd": it has a ".." segment/);
      });
    });

    if (opts.leafKeysOnly ?? true) {
      describe('keys and prefixes', () => {
        it('refuses a key that is a prefix of an existing key, and the reverse', async () => {
          await store.put('x/y', '1');
          await expect(store.put('x', '2')).rejects.toThrow(/conflicts with key/);
          await expect(store.createIfAbsent('x', '2')).rejects.toThrow(UserError);
          await store.put('p', '1');
          await expect(store.put('p/q', '2')).rejects.toThrow(/conflicts with key "p"/);
          await expect(store.createIfAbsent('p/q/r', '2')).rejects.toThrow(/conflicts with key "p"/);
          expect((await store.list('')).map((e) => e.key)).toEqual(['p', 'x/y']);
        });
      });
    }

    describe('watch', () => {
      it('reports puts and deletes under the prefix, in order, until stopped', async () => {
        if (!store.watch) return; // optional in the interface
        const seen: WatchEvent[] = [];
        const stop = await store.watch('net/', (e) => seen.push(e));
        await store.put('net/a', '1');
        await store.put('other/b', '2');
        await store.createIfAbsent('net/c', '3');
        await store.deleteIf('net/a', '1');
        await waitFor(() => seen.length >= 3);
        await stop();
        await store.put('net/d', '4');
        await new Promise((r) => setTimeout(r, 20));
        expect(seen).toEqual([
          { type: 'put', key: 'net/a', value: '1' },
          { type: 'put', key: 'net/c', value: '3' },
          { type: 'delete', key: 'net/a' },
        ]);
      });
    });
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for watch events');
    await new Promise((r) => setTimeout(r, 5));
  }
}
