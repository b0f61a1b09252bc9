// removeContainerDir with the entries a foreground run leaves: removed by name (no listing), and
// the whole tree as before when anything else is there or something named is missing.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { containerDir, removeContainerDir, unreadableRecord, warmRemoval } from '../../../runtime/containers.js';

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

describe('unreadableRecord', () => {
  it('says a record that does not parse is unreadable, and one that is absent or whole is not', () => {
    withRunDir((runDir, dir) => {
      rmSync(path.join(dir, 'container.json'));
      expect(unreadableRecord(runDir, 'c1')).toBeUndefined(); // no record yet: a claim in progress
      writeFileSync(path.join(dir, 'container.json'), '{"id": "c1"');
      expect(unreadableRecord(runDir, 'c1')?.message).toMatch(/^container c1: its record .* is unreadable/);
      writeFileSync(path.join(dir, 'container.json'), '{"id": "c1"}');
      expect(unreadableRecord(runDir, 'c1')).toBeUndefined();
    });
  });

  it('never calls a record unreadable because it appeared between two looks (a claim renaming it into place)', async () => {
    // claimContainer renames the record into place whole: a reader sees it absent or whole, never
    // half. Looked at twice (a read, then whether the file exists), a record renamed in between
    // was called unreadable, and rm -f took a container being created for a corrupt one
    // (removeUnreadable: its network released, its state directory removed). Another process
    // here renames a whole record in and out as fast as it can.
    const base = mkdtempSync(path.join(os.tmpdir(), 'tsrun-unreadable-'));
    const runDir = path.join(base, 'run');
    const dir = containerDir(runDir, 'c1');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'whole'), JSON.stringify({ id: 'c1', ownerPid: 1 }));
    const toggler = spawn('sh', ['-c', 'cd "$1" && while :; do ln whole container.json; rm container.json; done', 'sh', dir], { stdio: 'ignore' });
    try {
      let flagged = 0;
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        for (let i = 0; i < 200; i++) if (unreadableRecord(runDir, 'c1') !== undefined) flagged++;
        await new Promise((r) => setImmediate(r));
      }
      expect(flagged).toBe(0);
    } finally {
      toggler.kill('SIGKILL');
      rmSync(base, { recursive: true, force: true });
    }
  });
});
