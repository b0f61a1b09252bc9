// The record of the generation at which tsrun's tables were last known intact (runtime/firewall/
// intact-record.ts): one scope (schema and namespace) and one id, nothing taken for another scope,
// nothing from a file that is not one, and the kernel's wrap of its generation counter.
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { intactRecordAt, nextGeneration, previousGeneration } from '../../../runtime/firewall/intact-record.js';

function inTemp<T>(fn: (file: string, dir: string) => T): T {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-test-intact-'));
  try {
    return fn(path.join(dir, 'firewall.intact'), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('intactRecordAt', () => {
  it('none at first; what one process writes the next reads, for its scope only', () => {
    inTemp((file, dir) => {
      expect(intactRecordAt(file).read('v1-abc 4:100')).toBeUndefined();
      intactRecordAt(file).write('v1-abc 4:100', 995);
      expect(intactRecordAt(file).read('v1-abc 4:100')).toBe(995);
      expect(intactRecordAt(file).read('v1-def 4:100')).toBeUndefined();
      expect(intactRecordAt(file).read('v1-abc 4:101')).toBeUndefined();
      expect(readdirSync(dir)).toEqual(['firewall.intact']); // no temporary left
    });
  });

  it('a file that is not a record is none', () => {
    inTemp((file) => {
      for (const text of ['', 'v1-abc 4:100', 'v1-abc 4:100\n-1\n', 'v1-abc 4:100\n12345678901\n', 'v1-abc 4:100\n1e3\n', 'v1-abc 4:100\nabc\n']) {
        writeFileSync(file, text);
        expect(intactRecordAt(file).read('v1-abc 4:100')).toBeUndefined();
      }
    });
  });

  it('an unwritable place costs nothing but the record', () => {
    const record = intactRecordAt('/nonexistent/dir/firewall.intact');
    expect(() => record.write('v1-abc 4:100', 7)).not.toThrow();
  });
});

describe('nextGeneration', () => {
  it('one step on, skipping 0 when the 32-bit counter wraps', () => {
    expect(nextGeneration(1)).toBe(2);
    expect(nextGeneration(2 ** 32 - 2)).toBe(2 ** 32 - 1);
    expect(nextGeneration(2 ** 32 - 1)).toBe(1);
    for (const id of [1, 2, 77, 2 ** 32 - 2, 2 ** 32 - 1]) expect(previousGeneration(nextGeneration(id))).toBe(id);
  });
});
