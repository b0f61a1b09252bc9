// Files: tsrun's state is private (directories 0700, a config.json with -e secrets 0600), and
// `spec add-hooks` cannot be made to write through a symlink planted in the bundle directory.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BridgeWorld } from '../../harness/bridge-world.js';
import { BUSYBOX_BUNDLE, TSRUN_BIN } from '../../harness/sandbox.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('i10fm', { outside: false });
});
afterAll(async () => {
  await w.destroy();
});

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('file modes', () => {
  it('state directories are 0700 and the rewritten config.json with -e secrets is 0600', async () => {
    const c = await w.start(['-e', 'I10_SECRET=hunter2'], 'sleep 600');
    try {
      const run = path.join(w.host.root, 'run');
      const dir = path.join(run, 'containers', c.id);
      const config = path.join(dir, 'bundle', 'config.json');
      expect(readFileSync(config, 'utf8')).toContain('I10_SECRET=hunter2');
      expect({ run: mode(run), containers: mode(path.join(run, 'containers')), container: mode(dir), bundle: mode(path.join(dir, 'bundle')), config: mode(config) })
        .toEqual({ run: '700', containers: '700', container: '700', bundle: '700', config: '600' });
      for (const f of readdirSync(path.join(dir, 'bundle'))) expect(f).not.toMatch(/tmp/);
      // the store's directories too
      expect(mode(path.join(w.host.root, 'lib', 'store'))).toBe('700');
    } finally {
      await c.stop();
    }
    expect(w.leaks()).toEqual([]);
  });
});

describe('spec add-hooks', () => {
  it('does not write through a symlink planted at its temporary name, and leaves no temporary file', () => {
    const bundle = mkdtempSync(path.join(os.tmpdir(), 'i10-addhooks-'));
    const victim = path.join(bundle, 'victim');
    try {
      writeFileSync(path.join(bundle, 'config.json'), readFileSync(path.join(BUSYBOX_BUNDLE, 'config.json')));
      writeFileSync(victim, 'precious\n');
      mkdirSync(path.join(bundle, 'rootfs'));
      // The name the old code used was .config.json.<pid>.tmp: `exec` keeps the shell's pid, so
      // the attacker's guess is exact here. Dangling links to a new file as well.
      const script = `ln -s ${victim} ${bundle}/.config.json.$$.tmp && ln -s ${bundle}/created ${bundle}/.config.json.$(($$+1)).tmp && exec "$0" "$@"`;
      const r = spawnSync('sh', ['-c', script, TSRUN_BIN, 'spec', 'add-hooks', bundle], { encoding: 'utf8', env: { ...w.host.env } });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(readFileSync(victim, 'utf8')).toBe('precious\n');
      expect(lstatSync(path.join(bundle, 'config.json')).isFile()).toBe(true);
      const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { hooks?: Record<string, unknown[]> };
      expect(Object.keys(spec.hooks ?? {})).toEqual(expect.arrayContaining(['createRuntime', 'poststop']));
      const left = readdirSync(bundle).filter((f) => f.endsWith('.tmp') && !lstatSync(path.join(bundle, f)).isSymbolicLink());
      expect(left).toEqual([]);
    } finally {
      rmSync(bundle, { recursive: true, force: true });
    }
  });
});
