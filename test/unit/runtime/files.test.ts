// removeFile / removeTree: rm -f and rm -rf without fs.rmSync (which loads and runs rimraf).
import { describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdirPrivate, removeFile, removeTree, writeFileExclusive } from '../../../runtime/files.js';
import { randomHex } from '../../../config/random.js';

describe('removeFile and removeTree', () => {
  it('remove a tree of files, directories and symlinks without following the links', () => {
    const top = mkdtempSync(path.join(os.tmpdir(), 'tsrun-files-test-'));
    const outside = path.join(top, 'outside');
    const tree = path.join(top, 'tree');
    try {
      mkdirSync(outside);
      writeFileSync(path.join(outside, 'keep'), 'x');
      mkdirSync(path.join(tree, 'a', 'b'), { recursive: true });
      writeFileSync(path.join(tree, 'f'), '1');
      writeFileSync(path.join(tree, 'a', 'b', 'g'), '2');
      symlinkSync(outside, path.join(tree, 'a', 'link'));
      removeTree(tree);
      expect(existsSync(tree)).toBe(false);
      expect(readdirSync(outside)).toEqual(['keep']);
      removeTree(tree); // gone already
      removeFile(path.join(tree, 'f'));
      writeFileSync(path.join(top, 'file'), '');
      removeTree(path.join(top, 'file')); // a file given as the tree
      expect(existsSync(path.join(top, 'file'))).toBe(false);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it('randomHex gives fresh lowercase hex of the asked length', () => {
    const a = randomHex(8);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(randomHex(8)).not.toBe(a);
  });
});

describe('mkdirPrivate', () => {
  it('makes the directory and its parents 0700, tightens an existing one, leaves a 0700 one alone, refuses a file', () => {
    const top = mkdtempSync(path.join(os.tmpdir(), 'tsrun-files-test-'));
    const mode = (p: string) => statSync(p).mode & 0o7777;
    try {
      const deep = path.join(top, 'a', 'b');
      mkdirPrivate(deep);
      expect(mode(deep)).toBe(0o700);
      expect(mode(path.join(top, 'a'))).toBe(0o700);
      // made by an older version (0755), or with the setgid bit: tightened to 0700
      chmodSync(deep, 0o2755);
      mkdirPrivate(deep);
      expect(mode(deep)).toBe(0o700);
      // already right: nothing changes (its ctime stays)
      const before = statSync(deep).ctimeMs;
      mkdirPrivate(deep);
      expect(statSync(deep).ctimeMs).toBe(before);
      const file = path.join(top, 'file');
      writeFileSync(file, 'x', { mode: 0o700 });
      expect(() => mkdirPrivate(file)).toThrow(/EEXIST/);
      expect(statSync(file).isFile()).toBe(true);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});

describe('writeFileExclusive', () => {
  it('creates a new 0600 file whatever the umask, and refuses a file or a symlink already there without touching it', () => {
    const top = mkdtempSync(path.join(os.tmpdir(), 'tsrun-files-test-'));
    const old = process.umask(0o077 | 0o100); // a umask that takes the owner's x bit too
    try {
      const f = path.join(top, 'config.json');
      writeFileExclusive(f, '{"a":1}');
      expect(readFileSync(f, 'utf8')).toBe('{"a":1}');
      expect(statSync(f).mode & 0o7777).toBe(0o600);
      expect(readdirSync(top)).toEqual(['config.json']); // no temporary name left beside it
      expect(() => writeFileExclusive(f, 'x')).toThrow(/EEXIST/);
      expect(readFileSync(f, 'utf8')).toBe('{"a":1}');
      // a symlink planted in its place is neither followed nor replaced
      const target = path.join(top, 'target');
      writeFileSync(target, 'keep');
      const link = path.join(top, 'link');
      symlinkSync(target, link);
      expect(() => writeFileExclusive(link, 'x')).toThrow(/EEXIST/);
      expect(readFileSync(target, 'utf8')).toBe('keep');
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      // a dangling one too (O_EXCL|O_NOFOLLOW: the kernel refuses to create through it)
      const dangling = path.join(top, 'dangling');
      symlinkSync(path.join(top, 'nowhere'), dangling);
      expect(() => writeFileExclusive(dangling, 'x')).toThrow(/EEXIST/);
      expect(existsSync(path.join(top, 'nowhere'))).toBe(false);
    } finally {
      process.umask(old);
      rmSync(top, { recursive: true, force: true });
    }
  });
});
