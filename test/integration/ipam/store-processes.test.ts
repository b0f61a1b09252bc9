// LocalStore shared by several processes: directories are created on demand and pruned when a
// delete empties them, so writers in one process race with pruning in another; createIfAbsent
// must still have exactly one winner per key across processes.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../../runtime/store/local.js';

const WORKER = fileURLToPath(new URL('./fixtures/store-worker.js', import.meta.url));

function run(root: string, id: number, iterations: number, mode = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER, root, String(id), String(iterations), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('LocalStore shared by processes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp('/tmp/tsC-storeproc-');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('survives create/put/delete with directory pruning across 8 processes, one winner per shared key', async () => {
    const root = path.join(dir, 'store');
    const iterations = 500;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => run(root, i, iterations)));
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const wins = results.flatMap((r) => r.stdout.split('\n').filter(Boolean));
    expect(wins).toHaveLength(iterations);
    expect(new Set(wins).size).toBe(iterations);
    const store = new LocalStore(root);
    expect(await store.list('endpoints/')).toEqual([]);
    expect(await store.list('shared/')).toHaveLength(iterations);
    expect(await readdir(root)).toEqual(['shared']); // endpoints/ pruned away entirely
  }, 60_000);

  it('the same with spare files reused across processes: every value read back is the one written', async () => {
    const root = path.join(dir, 'store');
    const iterations = 250;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => run(root, i, iterations, 'recycle')));
    for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const wins = results.flatMap((r) => r.stdout.split('\n').filter(Boolean));
    expect(new Set(wins).size).toBe(iterations);
    expect(wins).toHaveLength(iterations);
    const store = new LocalStore(root, { fsync: false, recycle: ['endpoints/'] });
    expect(await store.list('endpoints/')).toEqual([]);
    expect((await readdir(root)).sort()).toEqual(['shared', '~spare~endpoints']);
    // every deleted file went to the pool or was taken again: none left elsewhere
    expect((await readdir(path.join(root, 'shared'))).filter((n) => n.includes('~'))).toEqual([]);
  }, 60_000);
});
