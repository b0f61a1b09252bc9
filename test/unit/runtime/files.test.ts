// removeFile / removeTree: rm -f and rm -rf without fs.rmSync (which loads and runs rimraf).
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeFile, removeTree } from '../../../runtime/files.js';
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
