// The local store's sweep (gc) against a writer in another pid namespace sharing the store's
// directory (a tsrun in a container, the hook run from a pid-namespaced runtime): its temp names
// carry pids of its own namespace, which the sweeper's /proc gives to other processes. Before the
// namespace was part of the tag, a live writer's temp was taken for a dead writer's and removed
// under it (its rename then failed). Real pid namespaces (unshare --pid --fork --mount-proc).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from '../../../runtime/store/local.js';

const STORE_MODULE = fileURLToPath(new URL('../../../runtime/store/local.js', import.meta.url));

/** A process in a pid namespace of its own (pid 1 there, its own /proc) that names a temp as the
 * store names them, creates it in `dir` as a writer between its write and its rename, and waits. */
function writerInPidNs(dir: string): Promise<{ child: ChildProcess; name: string }> {
  const script = `import { tempTag } from ${JSON.stringify(STORE_MODULE)}; import { writeFileSync } from 'node:fs';
const name = '~tmp~' + tempTag() + '~10.88.0.9'; writeFileSync(${JSON.stringify(dir)} + '/' + name, 'half');
process.stdout.write(name + '\\n'); setInterval(() => {}, 1000);`;
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ child, name: out.trim() });
    });
    child.on('exit', (code) => reject(new Error(`writer exited ${code} before naming its temp`)));
  });
}

const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
const maybe = canUnshare ? describe : describe.skip;
if (!canUnshare) console.warn('temp-pidns skipped: unshare --pid --fork --mount-proc failed (needs root)');

maybe('LocalStore sweep and a writer in another pid namespace', () => {
  let dir: string;
  let store: LocalStore;
  beforeAll(() => {
    dir = mkdtempSync('/tmp/tsC-pidns-store-');
    store = new LocalStore(path.join(dir, 'store'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps a live writer's temp whose pid names another process here, and removes it once old", async () => {
    await store.put('ipam/web/10.88.0.2', 'x'); // the directory the writer writes into
    const keyDir = path.join(dir, 'store', 'ipam', 'web');
    const { child, name } = await writerInPidNs(keyDir);
    try {
      expect(name).toMatch(/^~tmp~1[-.]/); // pid 1 in its namespace: this namespace's init here
      expect(await store.sweep(60_000)).toEqual({ removedTemps: 0, restored: 0, removedTombstones: 0 });
      expect(readdirSync(keyDir)).toContain(name);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    // Its writer gone, the age rule still removes it (a dead writer of another namespace cannot be
    // told from a live one).
    expect(await store.sweep(0)).toEqual({ removedTemps: 1, restored: 0, removedTombstones: 0 });
    expect(readdirSync(keyDir)).not.toContain(name);
  });

  it("still removes a dead writer's temp of this namespace at once", async () => {
    const keyDir = path.join(dir, 'store', 'ipam', 'web');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', `import { tempTag } from ${JSON.stringify(STORE_MODULE)}; process.stdout.write('~tmp~' + tempTag() + '~10.88.0.10')`], { encoding: 'utf8' });
    writeFileSync(path.join(keyDir, child.stdout), 'half');
    expect(await store.sweep(60_000)).toEqual({ removedTemps: 1, restored: 0, removedTombstones: 0 });
  });
});
