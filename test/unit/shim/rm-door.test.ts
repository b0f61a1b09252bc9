// `tsrun rm [-f] ID…` goes through rm's own door (shim/lifecycle/rm-door.ts, bundled as rm.cjs),
// which carries neither commander nor the engine (containers whose network needs the engine are
// handed to rm-door-wired.ts, rm-wired.cjs); any other rm command line (help, global options, `--`)
// is the CLI's. The removals themselves (--net none through the door, a bridge container handed to
// the wired door) are in test/integration/detached.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rmArgs } from '../../../shim/command-word.js';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-rm-door-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `tsrun <args>` through the entry, in a throwaway root; which bundles it loaded. */
function tsrun(args: string[]): { status: number | null; stdout: string; stderr: string; loaded: string[] } {
  const preload = path.join(dir, 'loaded.cjs');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeSync(3, JSON.stringify(Object.keys(require.cache).map((f) => require('node:path').basename(f)))));`);
  const r = spawnSync(process.execPath, ['-r', preload, path.join(BUNDLE, 'tsrun.cjs'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, TSRUN_ROOT: path.join(dir, 'root'), TSRUN_RUNC: '/bin/false' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded: JSON.parse(String(r.output[3])) as string[] };
}

describe('rmArgs', () => {
  it('reads rm, -f or --force anywhere, and the ids', () => {
    expect(rmArgs(['rm', 'a'])).toEqual({ force: false, names: ['a'] });
    expect(rmArgs(['rm', '-f', 'a', 'b'])).toEqual({ force: true, names: ['a', 'b'] });
    expect(rmArgs(['rm', 'a', '--force'])).toEqual({ force: true, names: ['a'] });
  });

  it('leaves everything else to the CLI', () => {
    for (const args of [['ps'], ['rm'], ['rm', '-f'], ['rm', '--help'], ['rm', '-h'], ['rm', '-fa', 'x'], ['rm', '--', 'x'], ['rm', ''], ['--root', '/x', 'rm', 'a'], ['rm', '-t', '3', 'a']]) {
      expect(rmArgs(args)).toBeUndefined();
    }
  });
});

describe("rm's door", () => {
  it("an unknown id: one line, exit 1 (docker's), through rm.cjs without the CLI or the engine", () => {
    const r = tsrun(['rm', '-f', 'nosuch']);
    expect(r.stderr).toBe('tsrun: no such container: nosuch\n');
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.loaded).toContain('rm.cjs');
    expect(r.loaded).not.toContain('cli.cjs');
    expect(r.loaded).not.toContain('run.cjs');
    expect(r.loaded).not.toContain('rm-wired.cjs');
  });

  it('rm --help is the CLI', () => {
    const r = tsrun(['rm', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('--force');
    expect(r.loaded).toContain('cli.cjs');
    expect(r.loaded).not.toContain('rm.cjs');
  });
});
