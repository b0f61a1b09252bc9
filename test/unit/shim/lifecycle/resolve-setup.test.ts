// detachedIds refuses a container still in its setup; when the tsrun creating it is gone (killed
// while runc create ran), the line says that rm -f removes it, rather than that it is being
// created; rm -f (orphans) takes it, and a foreground run's whose tsrun is gone.
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processStartTime } from '../../../../runtime/containers.js';
import { detachedIds } from '../../../../shim/lifecycle/resolve.js';

let runDir: string;

beforeEach(() => {
  runDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-resolve-'));
});

afterEach(() => {
  rmSync(runDir, { recursive: true, force: true });
});

function record(id: string, ownerPid: number, ownerStart: string, detached: 'setup' | 'foreground' = 'setup'): void {
  mkdirSync(path.join(runDir, 'containers', id), { recursive: true });
  writeFileSync(path.join(runDir, 'containers', id, 'container.json'), JSON.stringify({ id, detached: detached === 'setup' ? 'setup' : undefined, ownerPid, ownerStart, bundle: '/b', created: '' }));
}

it('a setup whose tsrun runs: still being created', () => {
  record('c1', process.pid, processStartTime(process.pid) ?? '');
  expect(() => detachedIds(runDir, ['c1'], [])).toThrow('container c1 is still being created');
});

it('a setup whose tsrun is gone: rm -f removes it (an orphan)', () => {
  record('c2', spawnSync('true').pid!, '1');
  expect(() => detachedIds(runDir, ['c2'], [])).toThrow('container c2 was left half-created by a tsrun process that is gone: tsrun rm -f c2 removes it');
  const orphans: string[] = [];
  expect(detachedIds(runDir, ['c2'], [], orphans)).toEqual([]);
  expect(orphans).toEqual(['c2']);
});

it('a foreground run whose tsrun is gone: rm -f removes it; one whose tsrun runs is refused', () => {
  record('c3', spawnSync('true').pid!, '1', 'foreground');
  record('c4', process.pid, processStartTime(process.pid) ?? '', 'foreground');
  expect(() => detachedIds(runDir, ['c3'], [])).toThrow('container c3 was left by a tsrun process that is gone (killed): tsrun rm -f c3 removes it');
  const orphans: string[] = [];
  expect(detachedIds(runDir, ['c3'], [], orphans)).toEqual([]);
  expect(orphans).toEqual(['c3']);
  expect(() => detachedIds(runDir, ['c4'], [], [])).toThrow(`container c4 runs in the foreground (tsrun process ${process.pid})`);
});
