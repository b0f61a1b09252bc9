// gc's settling of a killed restart's set-aside directory: by the holder's identity, never the
// name alone; put back while the id is free, removed when the id holds a container again.
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESTART_HOLDER_FILE, restartAsidePath, settleRestartAsides, writeRestartHolder } from '../../../runtime/restart-aside.js';
import { bootId } from '../../../runtime/boot.js';

let runDir: string;
const containers = () => path.join(runDir, 'containers');

beforeEach(() => {
  runDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-aside-'));
  mkdirSync(containers());
});
afterEach(() => rmSync(runDir, { recursive: true, force: true }));

/** A set-aside directory holding a record, with the given holder. */
function aside(id: string, holder: object | 'self' | undefined): string {
  const dir = restartAsidePath(runDir, id);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'lifecycle.json'), `{"id":"${id}"}`);
  if (holder === 'self') writeRestartHolder(dir);
  else if (holder) writeFileSync(path.join(dir, RESTART_HOLDER_FILE), JSON.stringify(holder));
  return dir;
}

/** A pid that has ended (a child waited for), with a start time nobody has. */
function deadHolder(): object {
  const r = spawnSync('true');
  return { pid: r.pid, start: '1', boot: bootId() };
}

it('leaves a directory whose restart still runs', () => {
  const dir = aside('a1', 'self');
  expect(settleRestartAsides(runDir)).toEqual({ restored: [], removed: [] });
  expect(existsSync(dir)).toBe(true);
});

it('puts back a directory whose restart is gone while the id is free, without the holder file', () => {
  aside('a2', deadHolder());
  aside('a3', undefined); // no holder (an older tsrun's restart)
  aside('a4', { pid: process.pid, start: 'x', boot: 'another boot' });
  expect(settleRestartAsides(runDir)).toEqual({ restored: ['a2', 'a3', 'a4'], removed: [] });
  for (const id of ['a2', 'a3', 'a4']) {
    expect(readFileSync(path.join(containers(), id, 'lifecycle.json'), 'utf8')).toContain(id);
    expect(existsSync(path.join(containers(), id, RESTART_HOLDER_FILE))).toBe(false);
    expect(existsSync(restartAsidePath(runDir, id))).toBe(false);
  }
});

it('removes it when the id holds a container again (even an empty claim in progress)', () => {
  aside('b1', deadHolder());
  mkdirSync(path.join(containers(), 'b1'));
  writeFileSync(path.join(containers(), 'b1', 'mine'), 'new');
  aside('b2', deadHolder());
  mkdirSync(path.join(containers(), 'b2'));
  expect(settleRestartAsides(runDir)).toEqual({ restored: [], removed: ['b1', 'b2'] });
  expect(readFileSync(path.join(containers(), 'b1', 'mine'), 'utf8')).toBe('new');
  expect(existsSync(path.join(containers(), 'b2'))).toBe(true);
});

it('touches no other dot name, and no file or symlink by the name', () => {
  mkdirSync(path.join(containers(), '.other'));
  mkdirSync(path.join(containers(), '..restart'));
  writeFileSync(path.join(containers(), '.f1.restart'), 'a file');
  mkdirSync(path.join(runDir, 'elsewhere'));
  spawnSync('ln', ['-s', path.join(runDir, 'elsewhere'), path.join(containers(), '.l1.restart')]);
  expect(settleRestartAsides(runDir)).toEqual({ restored: [], removed: [] });
  expect(existsSync(path.join(containers(), 'l1'))).toBe(false);
  expect(existsSync(path.join(runDir, 'elsewhere'))).toBe(true);
});
