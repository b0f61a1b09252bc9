import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { LocalStore } from '../../../runtime/store/local.js';
import { KEPT_DIRS } from '../../../runtime/store/open.js';
import { matchesDirPattern, parseDirPatterns } from '../../../runtime/store/keys.js';
import { storeContract } from './contract.js';

async function tempRoot(): Promise<string> {
  return mkdtemp('/tmp/tsC-store-');
}

storeContract('LocalStore', async () => {
  const dir = await tempRoot();
  return { store: new LocalStore(path.join(dir, 'store')), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

storeContract('LocalStore keeping directories', async () => {
  const dir = await tempRoot();
  return { store: new LocalStore(path.join(dir, 'store'), { keep: KEPT_DIRS }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

storeContract('LocalStore recycling spare files', async () => {
  const dir = await tempRoot();
  return { store: new LocalStore(path.join(dir, 'store'), { fsync: false, recycle: ['ipam/', 'endpoints/', 'hostports/', 'shared/', 'a/', 'b/', 'k/', 'x/', 'p/'] }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

storeContract('LocalStore without fsync', async () => {
  const dir = await tempRoot();
  return { store: new LocalStore(path.join(dir, 'store'), { fsync: false }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('LocalStore on disk', () => {
  let dir: string;
  let root: string;
  let store: LocalStore;
  beforeEach(async () => {
    dir = await tempRoot();
    root = path.join(dir, 'store');
    store = new LocalStore(root);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps one file per key, named by its segments, holding exactly the value', async () => {
    await store.createIfAbsent('ipam/web/10.88.0.5', 'c1');
    await store.put('ipam/v6/fd00::5', 'c2');
    expect(await readFile(path.join(root, 'ipam/web/10.88.0.5'), 'utf8')).toBe('c1');
    expect(await readFile(path.join(root, 'ipam/v6/fd00::5'), 'utf8')).toBe('c2');
    expect((await stat(path.join(root, 'ipam/web/10.88.0.5'))).mode & 0o777).toBe(0o600);
  });

  it('answers absent keys and empty prefixes without a failed read, through a symlinked root too', async () => {
    await store.put('a/k', '1');
    expect(await store.get('a/none')).toBeUndefined();
    expect(await store.get('a')).toBeUndefined(); // a directory is no key
    expect(await store.get('a/k/deeper')).toBeUndefined(); // a key where a directory would be (ENOTDIR)
    expect(await store.list('b/')).toEqual([]);
    expect(await store.listKeys('b/')).toEqual([]);
    expect(await store.list('a/k/')).toEqual([]); // a prefix through a key (ENOTDIR)
    expect(await store.list('a/')).toEqual([{ key: 'a/k', value: '1' }]);
    // The store's root as a symlink to its directory (a link in /var/lib): followed, as before.
    const link = path.join(dir, 'link');
    await symlink(root, link);
    const viaLink = new LocalStore(link);
    expect(await viaLink.get('a/k')).toBe('1');
    expect(await viaLink.list('')).toEqual([{ key: 'a/k', value: '1' }]);
    expect(await viaLink.listKeys('a/')).toEqual(['a/k']);
  });

  it('leaves no temp files behind after create, put and delete', async () => {
    await store.createIfAbsent('a/k', '1');
    await store.createIfAbsent('a/k', '2');
    await store.put('a/k', '3');
    await store.put('a/j', '4');
    await store.deleteIf('a/j', '4');
    expect(await readdir(path.join(root, 'a'))).toEqual(['k']);
  });

  it('prunes directories a delete leaves empty, but never the root', async () => {
    await store.put('endpoints/c1/web', '{}');
    await store.put('endpoints/c2/web', '{}');
    await store.deleteIf('endpoints/c1/web');
    expect(await readdir(path.join(root, 'endpoints'))).toEqual(['c2']);
    await store.deleteIf('endpoints/c2/web', '{}');
    expect(await readdir(root)).toEqual([]);
    await store.put('endpoints/c3/web', '{}'); // recreated on demand
    expect(await store.get('endpoints/c3/web')).toBe('{}');
  });

  it('overwrites a value in place: same file, shorter values truncated, absent keys created', async () => {
    await store.overwrite('ipam/web/_last.10.88.0.0_16', '10.88.1.10'); // absent: created as put does
    const file = path.join(root, 'ipam/web/_last.10.88.0.0_16');
    const inode = (await stat(file)).ino;
    await store.overwrite('ipam/web/_last.10.88.0.0_16', '10.88.1.9');
    expect(await store.get('ipam/web/_last.10.88.0.0_16')).toBe('10.88.1.9');
    await store.overwrite('ipam/web/_last.10.88.0.0_16', '10.88.1.100');
    expect(await store.get('ipam/web/_last.10.88.0.0_16')).toBe('10.88.1.100');
    expect((await stat(file)).ino).toBe(inode); // no new file: no rename over the old one
    expect(await readdir(path.join(root, 'ipam/web'))).toEqual(['_last.10.88.0.0_16']);
    await store.put('a/b', '1');
    await expect(store.overwrite('a', 'x')).rejects.toThrow(/a\/\.\.\./);
    await expect(store.overwrite('a/b/c', 'x')).rejects.toThrow(/a\/b/);
  });

  it('never prunes the directories it is told to keep, and prunes the others as before', async () => {
    const keeping = new LocalStore(root, { keep: ['endpoints/', 'hostports/', 'hostports/*/', 'hostports/*/*/'] });
    await keeping.put('endpoints/c1/web', '{}');
    await keeping.createIfAbsent('hostports/tcp/8080/any', 'c1');
    await keeping.createIfAbsent('ipam/web/10.88.0.2', 'c1');
    await keeping.deleteIf('endpoints/c1/web', '{}');
    await keeping.deleteIf('hostports/tcp/8080/any', 'c1');
    await keeping.deleteIf('ipam/web/10.88.0.2');
    expect((await readdir(root)).sort()).toEqual(['endpoints', 'hostports']); // ipam/ is not kept
    expect(await readdir(path.join(root, 'endpoints'))).toEqual([]); // one per container: pruned
    expect(await readdir(path.join(root, 'hostports/tcp/8080'))).toEqual([]);
    expect(await keeping.list('hostports/')).toEqual([]);
    await keeping.put('endpoints/c2/web', '{}');
    expect(await keeping.list('endpoints/')).toEqual([{ key: 'endpoints/c2/web', value: '{}' }]);
  });

  it('refuses a keep pattern that is not a directory of keys', () => {
    expect(() => new LocalStore(root, { keep: ['endpoints'] })).toThrow(/must end in '\/'/);
    expect(() => new LocalStore(root, { keep: ['../x/'] })).toThrow(/invalid directory pattern/);
  });

  it('survives writers racing with the pruning of their directory', async () => {
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      ops.push(store.createIfAbsent(`d/${i % 5}/k`, `${i}`).then(() => store.deleteIf(`d/${i % 5}/k`, `${i}`)));
    }
    await Promise.all(ops);
    expect(await store.list('')).toEqual([]);
  });

  it('ignores temps and tombstones in get and list', async () => {
    await store.put('ipam/web/10.88.0.2', 'c1');
    await writeFile(path.join(root, 'ipam/web/~tmp~1.x.1~10.88.0.3'), '');
    await writeFile(path.join(root, 'ipam/web/~del~1.x.2~10.88.0.4'), 'c4');
    expect(await store.list('ipam/')).toEqual([{ key: 'ipam/web/10.88.0.2', value: 'c1' }]);
    expect(await store.get('ipam/web/10.88.0.3')).toBeUndefined();
  });

  it('sweep removes old temps, restores orphaned tombstones and drops superseded ones', async () => {
    await store.put('ipam/web/10.88.0.2', 'new-owner');
    const w = path.join(root, 'ipam/web');
    const files = {
      oldTemp: path.join(w, '~tmp~1.x.1~10.88.0.3'),
      youngTemp: path.join(w, '~tmp~1.x.2~10.88.0.3'),
      orphanTomb: path.join(w, '~del~1.x.3~10.88.0.4'),
      supersededTomb: path.join(w, '~del~1.x.4~10.88.0.2'),
    };
    for (const f of Object.values(files)) await writeFile(f, f.endsWith('0.4') ? 'c4' : 'stale');
    const old = new Date(Date.now() - 3_600_000);
    for (const f of [files.oldTemp, files.orphanTomb, files.supersededTomb]) await utimes(f, old, old);
    expect(await store.sweep(60_000)).toEqual({ removedTemps: 1, restored: 1, removedTombstones: 1 });
    expect((await readdir(w)).sort()).toEqual(['10.88.0.2', '10.88.0.4', path.basename(files.youngTemp)].sort());
    expect(await store.get('ipam/web/10.88.0.4')).toBe('c4');
    expect(await store.get('ipam/web/10.88.0.2')).toBe('new-owner');
  });

  it("sweep removes a young temp at once when its writer has ended (its tag names pid and start time), never a live writer's", async () => {
    const w = path.join(root, 'ipam/web');
    await mkdir(w, { recursive: true });
    // A process that ran and ended: its pid is free (or reused by another start time).
    const dead = spawnSync('true');
    const ownStart = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19]!;
    const ns = String(statSync('/proc/self/ns/pid').ino);
    const files = {
      deadWriter: path.join(w, `~tmp~${dead.pid}-${ownStart}-${ns}.x.1~10.88.0.3`),
      deadClaimed: path.join(w, `~tmp~r${Date.now().toString(36)}.${dead.pid}-${ownStart}-${ns}.x.2~10.88.0.5`),
      reusedPid: path.join(w, `~tmp~${process.pid}-1-${ns}.x.3~10.88.0.6`),
      liveWriter: path.join(w, `~tmp~${process.pid}-${ownStart}-${ns}.x.4~10.88.0.7`),
      oldFormat: path.join(w, `~tmp~${dead.pid}.x.5~10.88.0.8`),
      // Session 9's first form (no namespace) and another namespace's writer: the age rule.
      noNamespace: path.join(w, `~tmp~${dead.pid}-${ownStart}.x.6~10.88.0.9`),
      otherNamespace: path.join(w, `~tmp~${dead.pid}-${ownStart}-1${ns}.x.7~10.88.0.10`),
    };
    for (const f of Object.values(files)) await writeFile(f, 'partial');
    expect(await store.sweep(60_000)).toEqual({ removedTemps: 3, restored: 0, removedTombstones: 0 });
    expect((await readdir(w)).sort()).toEqual([files.liveWriter, files.oldFormat, files.noNamespace, files.otherNamespace].map((f) => path.basename(f)).sort());
  });

  it('deleteIf links a value back when the tombstone holds something else', async () => {
    // Force the window: a store whose compare read is stale ("A") while the file now holds "B".
    class StaleRead extends LocalStore {
      override async get(): Promise<string | undefined> {
        return 'A';
      }
    }
    await store.put('ipam/web/10.88.0.9', 'B');
    expect(await new StaleRead(root).deleteIf('ipam/web/10.88.0.9', 'A')).toBe(false);
    expect(await store.get('ipam/web/10.88.0.9')).toBe('B');
    expect(await readdir(path.join(root, 'ipam/web'))).toEqual(['10.88.0.9']);
  });
});

describe('LocalStore spare files (recycle)', () => {
  let dir: string;
  let root: string;
  let store: LocalStore;
  const VOL = ['ipam/', 'hostports/', 'endpoints/'];
  beforeEach(async () => {
    dir = await tempRoot();
    root = path.join(dir, 'store');
    store = new LocalStore(root, { volatile: VOL, recycle: VOL, keep: KEPT_DIRS });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const ino = async (key: string) => (await stat(path.join(root, key))).ino;

  it("a deleted key's file becomes the next key of its kind, holding exactly the new value", async () => {
    const value = JSON.stringify({ container: 'c-with-a-long-name', boot: 'b'.repeat(36), instance: 'i1' });
    await store.createIfAbsent('ipam/web/10.88.0.2', value);
    const first = await ino('ipam/web/10.88.0.2');
    expect(await store.deleteIf('ipam/web/10.88.0.2', value)).toBe(true);
    expect(await store.get('ipam/web/10.88.0.2')).toBeUndefined();
    expect(await readdir(path.join(root, '~spare~ipam'))).toHaveLength(1);
    expect(await store.createIfAbsent('ipam/db/10.89.0.7', 'short')).toBe(true);
    expect(await ino('ipam/db/10.89.0.7')).toBe(first);
    expect(await readFile(path.join(root, 'ipam/db/10.89.0.7'), 'utf8')).toBe('short'); // cut to length
    expect(await readdir(path.join(root, '~spare~ipam'))).toEqual([]);
    // an unconditional delete and put recycle too
    await store.deleteIf('ipam/db/10.89.0.7');
    await store.put('ipam/web/10.88.0.3', 'again');
    expect(await ino('ipam/web/10.88.0.3')).toBe(first);
    expect(await store.list('ipam/')).toEqual([{ key: 'ipam/web/10.88.0.3', value: 'again' }]);
    // no temps left anywhere
    expect(await readdir(path.join(root, 'ipam/web'))).toEqual(['10.88.0.3']);
  });

  it('keeps kinds apart: leases, flush marks, hints, host ports and records never share a file', async () => {
    await store.createIfAbsent('ipam/web/10.88.0.2', 'lease');
    await store.put('ipam/web/_flush.10.88.0.2', 'mark');
    await store.createIfAbsent('hostports/tcp/80/any', 'c1');
    await store.put('endpoints/c1/web', '{}');
    for (const k of ['ipam/web/10.88.0.2', 'ipam/web/_flush.10.88.0.2', 'hostports/tcp/80/any', 'endpoints/c1/web']) await store.deleteIf(k);
    expect((await readdir(root)).filter((n) => n.startsWith('~')).sort()).toEqual(['~spare~endpoints', '~spare~hostports', '~spare~ipam', '~spare~ipam._flush']);
    await store.put('ipam/web/_last.10.88.0.0_16', '10.88.0.2'); // a kind of its own: a fresh file
    expect(await readdir(path.join(root, '~spare~ipam'))).toHaveLength(1);
    expect(await readdir(path.join(root, '~spare~ipam._flush'))).toHaveLength(1);
  });

  it('never recycles durable keys, nor keys outside its prefixes', async () => {
    const durable = new LocalStore(root, { volatile: ['ipam/'], recycle: ['ipam/', 'networks/'] });
    await durable.put('networks/web', '{}');
    await durable.deleteIf('networks/web');
    await durable.put('agent/id', 'x');
    await durable.deleteIf('agent/id');
    expect((await readdir(root)).filter((n) => n.startsWith('~'))).toEqual([]);
  });

  it('does not move a directory into a pool', async () => {
    await store.put('endpoints/c1/web', '{}');
    expect(await store.deleteIf('endpoints/c1')).toBe(false);
    expect(await store.get('endpoints/c1/web')).toBe('{}');
  });

  it('takes a spare into a directory that does not exist yet, and survives its pool being removed', async () => {
    await store.createIfAbsent('hostports/tcp/80/any', 'c1');
    await store.deleteIf('hostports/tcp/80/any', 'c1');
    await store.createIfAbsent('hostports/udp/5353/any', 'c2');
    expect(await store.get('hostports/udp/5353/any')).toBe('c2');
    await rm(path.join(root, '~spare~hostports'), { recursive: true });
    expect(await store.deleteIf('hostports/udp/5353/any', 'c2')).toBe(true);
    expect(await readdir(path.join(root, '~spare~hostports'))).toHaveLength(1);
  });

  it('sweep leaves pools alone (up to 64 spares each) and a freshly taken spare too', async () => {
    for (let i = 0; i < 70; i++) await store.createIfAbsent(`ipam/web/10.88.1.${i}`, 'c');
    for (let i = 0; i < 70; i++) await store.deleteIf(`ipam/web/10.88.1.${i}`, 'c');
    expect(await readdir(path.join(root, '~spare~ipam'))).toHaveLength(70);
    // A spare just taken by a writer: old mtime, its name says when it was taken.
    const taken = path.join(root, 'ipam/web', `~tmp~r${Date.now().toString(36)}.1.x.1~10.88.0.9`);
    await mkdir(path.dirname(taken), { recursive: true });
    await writeFile(taken, 'old');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(taken, old, old);
    expect(await store.sweep(60_000)).toEqual({ removedTemps: 0, restored: 0, removedTombstones: 0 });
    expect(await readdir(path.join(root, '~spare~ipam'))).toHaveLength(64);
    expect(await readdir(path.join(root, 'ipam/web'))).toEqual([path.basename(taken)]);
    expect(await store.list('ipam/')).toEqual([]);
  });
});

describe('directory patterns (LocalStore keep)', () => {
  it('matches a directory segment by segment, a star standing for any one segment', () => {
    const patterns = parseDirPatterns(['endpoints/', 'hostports/*/', 'hostports/*/*/']);
    expect(matchesDirPattern(['endpoints'], patterns)).toBe(true);
    expect(matchesDirPattern(['endpoints', 'c1'], patterns)).toBe(false);
    expect(matchesDirPattern(['hostports'], patterns)).toBe(false);
    expect(matchesDirPattern(['hostports', 'udp'], patterns)).toBe(true);
    expect(matchesDirPattern(['hostports', 'tcp', '8080'], patterns)).toBe(true);
    expect(matchesDirPattern(['hostports', 'tcp', '8080', 'x'], patterns)).toBe(false);
    expect(matchesDirPattern(['ipam'], patterns)).toBe(false);
  });
});
