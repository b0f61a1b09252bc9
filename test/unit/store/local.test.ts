import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
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
