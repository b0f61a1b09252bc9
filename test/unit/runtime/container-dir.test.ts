// removeContainerDir with the entries a foreground run leaves: removed by name (no listing), and
// the whole tree as before when anything else is there or something named is missing.
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { containerDir, removeContainerDir, warmRemoval } from '../../../runtime/containers.js';

const RUN_ENTRIES = ['bundle/config.json', 'bundle/', 'runc.log', 'pid'];

function withRunDir(f: (runDir: string, dir: string) => void): void {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-container-dir-test-'));
  try {
    const dir = containerDir(runDir, 'c1');
    mkdirSync(path.join(dir, 'bundle'), { recursive: true });
    for (const f of ['container.json', 'runc.log', 'pid', 'bundle/config.json']) writeFileSync(path.join(dir, f), '{}');
    f(runDir, dir);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

describe('removeContainerDir', () => {
  it('removes a run\'s state directory by the names it was given', () => {
    withRunDir((runDir, dir) => {
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
      expect(existsSync(dir)).toBe(false);
      expect(readdirSync(path.dirname(dir))).toEqual([]);
    });
  });

  it('removes everything when more is there than named (a resolv.conf, a file of another version)', () => {
    withRunDir((runDir, dir) => {
      writeFileSync(path.join(dir, 'resolv.conf'), 'nameserver 10.0.0.1\n');
      mkdirSync(path.join(dir, 'extra', 'deeper'), { recursive: true });
      writeFileSync(path.join(dir, 'extra', 'deeper', 'f'), '');
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
      expect(existsSync(dir)).toBe(false);
    });
    withRunDir((runDir, dir) => {
      writeFileSync(path.join(dir, 'bundle', 'config.json.orig'), '{}'); // more in a named subdirectory
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
      expect(existsSync(dir)).toBe(false);
    });
  });

  it('removes everything when a named entry is missing or is not what it was named as', () => {
    withRunDir((runDir, dir) => {
      rmSync(path.join(dir, 'pid')); // runc failed before writing it
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
      expect(existsSync(dir)).toBe(false);
    });
    withRunDir((runDir, dir) => {
      rmSync(path.join(dir, 'runc.log'));
      mkdirSync(path.join(dir, 'runc.log')); // a directory where a file was named
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
      expect(existsSync(dir)).toBe(false);
    });
  });

  it('never follows a symlink in place of a named entry', () => {
    const outside = mkdtempSync(path.join(os.tmpdir(), 'tsrun-container-dir-outside-'));
    try {
      writeFileSync(path.join(outside, 'keep'), 'x');
      writeFileSync(path.join(outside, 'config.json'), 'x');
      withRunDir((runDir, dir) => {
        rmSync(path.join(dir, 'bundle'), { recursive: true });
        symlinkSync(outside, path.join(dir, 'bundle'));
        rmSync(path.join(dir, 'pid'));
        symlinkSync(path.join(outside, 'keep'), path.join(dir, 'pid'));
        removeContainerDir(runDir, 'c1', RUN_ENTRIES);
        expect(existsSync(dir)).toBe(false);
      });
      expect(readdirSync(outside).sort()).toEqual(['config.json', 'keep']);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('without names, lists and removes the tree as before; gone already is fine', () => {
    withRunDir((runDir, dir) => {
      removeContainerDir(runDir, 'c1');
      expect(existsSync(dir)).toBe(false);
      removeContainerDir(runDir, 'c1');
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
    });
  });
});

describe('warmRemoval', () => {
  it('changes nothing in the state directory, and does not throw when it is gone', () => {
    withRunDir((runDir, dir) => {
      const before = readdirSync(dir).sort();
      warmRemoval(runDir, 'c1');
      expect(readdirSync(dir).sort()).toEqual(before);
      expect(() => warmRemoval(runDir, 'gone')).not.toThrow();
      removeContainerDir(runDir, 'c1', RUN_ENTRIES);
      expect(existsSync(dir)).toBe(false);
    });
  });
});
