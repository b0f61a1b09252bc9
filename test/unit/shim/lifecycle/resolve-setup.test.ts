// detachedIds refuses a container still in its setup; when the tsrun creating it is gone (killed
// while runc create ran), the line says that gc removes it, rather than that it is being created.
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

function record(id: string, ownerPid: number, ownerStart: string): void {
  mkdirSync(path.join(runDir, 'containers', id), { recursive: true });
  writeFileSync(path.join(runDir, 'containers', id, 'container.json'), JSON.stringify({ id, detached: 'setup', ownerPid, ownerStart, bundle: '/b', created: '' }));
}

it('a setup whose tsrun runs: still being created', () => {
  record('c1', process.pid, processStartTime(process.pid) ?? '');
  expect(() => detachedIds(runDir, ['c1'], [])).toThrow('container c1 is still being created');
});

it('a setup whose tsrun is gone: gc removes it', () => {
  record('c2', spawnSync('true').pid!, '1');
  expect(() => detachedIds(runDir, ['c2'], [])).toThrow('container c2 was left half-created by a tsrun process that is gone: tsrun gc removes it');
});
