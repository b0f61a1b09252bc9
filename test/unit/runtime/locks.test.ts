import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StoreLock } from '../../../runtime/locks.js';
import { MemoryStore } from '../../../runtime/store/memory.js';
import { LocalStore } from '../../../runtime/store/local.js';
import { bootId } from '../../../runtime/boot.js';
import type { Store } from '../../../runtime/store/store.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const stores: [string, () => Store][] = [
  ['memory', () => new MemoryStore()],
  [
    'local',
    () => {
      const d = mkdtempSync(path.join(os.tmpdir(), 'i11-locks-'));
      dirs.push(d);
      return new LocalStore(d, { fsync: false });
    },
  ],
];

const tick = () => new Promise((r) => setTimeout(r, 20));

describe.each(stores)('StoreLock on the %s store', (_name, make) => {
  it('shared holders do not wait for each other', async () => {
    const lock = new StoreLock(make(), 'host', { timeoutMs: 2000 });
    const a = await lock.shared();
    const b = await lock.shared();
    await a();
    await b();
  });

  it('an exclusive holder waits until the shared holders have left', async () => {
    const store = make();
    // Another "process": this one's own keys count as its own, so the holders use separate locks
    // over one store and are told apart by pid in the value (written by hand below).
    const lock = new StoreLock(store, 'host', { timeoutMs: 5000 });
    const events: string[] = [];
    await store.put('host/shared/other', JSON.stringify({ boot: bootId(), pid: 1, start: '', expires: Date.now() + 60_000 }));
    const writer = lock.exclusive().then((release) => {
      events.push('writer in');
      return release;
    });
    await tick();
    expect(events).toEqual([]); // pid 1 lives: its shared key holds the writer off
    await store.deleteIf('host/shared/other');
    const release = await writer;
    expect(events).toEqual(['writer in']);
    await release();
    expect((await store.list('host/')).map((e) => e.key).filter((k) => !k.endsWith('/_anchor'))).toEqual([]);
  });

  it('the key of a dead holder is broken at once', async () => {
    const store = make();
    await store.put('host/exclusive', JSON.stringify({ boot: bootId(), pid: 2 ** 22 + 7, start: '1', expires: Date.now() + 60_000 }));
    const release = await new StoreLock(store, 'host', { timeoutMs: 2000 }).shared();
    await release();
  });

  it('the key of a holder on another boot (or host) is broken once its lease expired, not before', async () => {
    const store = make();
    // Room for a loaded machine between the put and the first attempt (300 ms was missed once).
    const expires = Date.now() + 1500;
    await store.put('host/exclusive', JSON.stringify({ boot: 'another', pid: 1, start: '', expires }));
    const lock = new StoreLock(store, 'host', { timeoutMs: 100 });
    await expect(lock.shared()).rejects.toThrow(/timed out waiting for the host lock \(held by process 1\)/);
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now() + 50)));
    const release = await new StoreLock(store, 'host', { timeoutMs: 2000 }).shared();
    await release();
  });

  it('is reentrant for the process holding it exclusive (gc detaching through the engine)', async () => {
    const lock = new StoreLock(make(), 'host', { timeoutMs: 500 });
    const outer = await lock.exclusive();
    const inner = await lock.shared();
    const nested = await lock.exclusive();
    await nested();
    await inner();
    await outer();
  });
});
