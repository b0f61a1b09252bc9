import { afterEach, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathSearchedAsResolved, resolveBinary } from '../../../runtime/binaries.js';

const cwd = process.cwd();
let dir: string | undefined;
afterEach(() => {
  process.chdir(cwd);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('resolveBinary', () => {
  it('never takes a program from an empty or relative PATH entry (the working directory of a hook)', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bin-'));
    const name = `tsrun-fake-${process.pid}`;
    mkdirSync(path.join(dir, 'bin'));
    for (const file of [path.join(dir, name), path.join(dir, 'bin', name)]) {
      writeFileSync(file, '#!/bin/sh\n');
      chmodSync(file, 0o755);
    }
    process.chdir(dir);
    for (const PATH of ['.', '', ':', 'bin', './bin', '.:bin']) {
      expect(() => resolveBinary(name, { PATH })).toThrow(/is not installed/);
    }
    // An absolute entry still counts.
    expect(resolveBinary(name, { PATH: `.:${path.join(dir, 'bin')}` })).toBe(path.join(dir, 'bin', name));
  });
});

describe('pathSearchedAsResolved: a search at exec finds what resolveBinary finds', () => {
  const system = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  it('absolute entries with every system directory among them', () => {
    expect(pathSearchedAsResolved(system)).toBe(true);
    expect(pathSearchedAsResolved(`/root/.cargo/bin:/opt/x/bin:${system}`)).toBe(true);
  });
  it('not with an empty or relative entry (the working directory), nor without a system directory', () => {
    for (const PATH of [undefined, '', `:${system}`, `${system}:`, `.:${system}`, `bin:${system}`, '/usr/bin:/bin', system.replace('/usr/sbin:', '')]) {
      expect(pathSearchedAsResolved(PATH)).toBe(false);
    }
  });
});
