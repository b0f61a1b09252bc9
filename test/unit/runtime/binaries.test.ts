import { afterEach, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveBinary } from '../../../runtime/binaries.js';

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
