// `-e` as docker and podman read it: KEY=VALUE as given, a bare KEY takes the caller's value (and
// is left out when the caller has none), anything else is one line naming the flag.
import { afterAll, describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { checkUserSpec, envFlags, normalizeRunOptions, parseEnvFile } from '../../../shim/run-options.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

describe('envFlags', () => {
  const caller = { HOME: '/root', EMPTY: '', LANG: 'C.UTF-8' };

  it('keeps KEY=VALUE (an empty value and = inside the value too)', () => {
    expect(envFlags(['A=1', 'B=', 'C=x=y'], caller)).toEqual(['A=1', 'B=', 'C=x=y']);
  });

  it("takes the caller's value for a bare KEY, an empty one included", () => {
    expect(envFlags(['HOME', 'EMPTY', 'A=1', 'LANG'], caller)).toEqual(['HOME=/root', 'EMPTY=', 'A=1', 'LANG=C.UTF-8']);
  });

  it('leaves out a bare KEY the caller does not have', () => {
    expect(envFlags(['NOT_SET_ANYWHERE', 'A=1'], caller)).toEqual(['A=1']);
  });

  it("leaves out a bare KEY that is only Object's own (constructor, __proto__, toString), with process.env too", () => {
    expect(envFlags(['constructor', '__proto__', 'toString', 'A=1'], caller)).toEqual(['A=1']);
    expect(envFlags(['constructor', 'hasOwnProperty'])).toEqual([]);
  });

  it('refuses an empty key or whitespace in the key', () => {
    for (const bad of ['', '=x', 'A B', 'A B=1']) {
      expect(() => envFlags([bad], caller)).toThrow(UserError);
      expect(() => envFlags([bad], caller)).toThrow(`invalid --env ${JSON.stringify(bad)}: expected KEY=VALUE, or KEY to pass this shell's value`);
    }
  });
});

describe('parseEnvFile (docker\'s --env-file format)', () => {
  const caller = { HOME: '/root', EMPTY: '' };

  it('keeps KEY=VALUE lines as written: no quote processing, blanks in the value kept, leading blanks of the line dropped', () => {
    const text = '\uFEFFA=1\n  B="two words"  \nC=\'x\'\nD=x=y\r\nE=\n';
    expect(parseEnvFile(text, 'f', caller)).toEqual(['A=1', 'B="two words"  ', "C='x'", 'D=x=y', 'E=']);
  });

  it('skips empty lines and # comments (only at the start of a line)', () => {
    expect(parseEnvFile('# comment\n\n   \n  # indented comment\nA=1 # not a comment\n', 'f', caller)).toEqual(['A=1 # not a comment']);
  });

  it("takes the caller's value for a bare KEY, and leaves it out when the caller has none", () => {
    expect(parseEnvFile('HOME\nEMPTY\nNOT_SET\nconstructor\n', 'f', caller)).toEqual(['HOME=/root', 'EMPTY=']);
  });

  it('refuses an empty key, blanks in a key and NUL, naming the file and the line', () => {
    expect(() => parseEnvFile('A=1\n=x\n', 'my.env', caller)).toThrow('invalid --env-file "my.env": line 2: no variable name');
    expect(() => parseEnvFile('A B=1\n', 'my.env', caller)).toThrow('invalid --env-file "my.env": line 1: variable "A B" contains blanks');
    expect(() => parseEnvFile('KEY \n', 'my.env', caller)).toThrow(UserError);
    expect(() => parseEnvFile('A=x\0y\n', 'my.env', caller)).toThrow('invalid --env-file "my.env": line 1: a NUL byte');
  });
});

describe('--env-file and -e together (normalizeRunOptions)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-envfile-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = { env: [] as string[], net: 'none', publish: [] };

  it('reads the files in order, then -e: the last value of a key wins once merged', () => {
    writeFileSync(path.join(dir, 'a.env'), 'A=from-a\nB=from-a\n');
    writeFileSync(path.join(dir, 'b.env'), 'B=from-b\n');
    const o = normalizeRunOptions('b', [], { ...base, envFile: [path.join(dir, 'a.env'), path.join(dir, 'b.env')], env: ['A=from-e'] });
    expect(o.env).toEqual(['A=from-a', 'B=from-a', 'B=from-b', 'A=from-e']);
  });

  it('a missing file, a directory, a file that is not UTF-8: one line each', () => {
    const missing = path.join(dir, 'nope.env');
    expect(() => normalizeRunOptions('b', [], { ...base, envFile: [missing] })).toThrow(`invalid --env-file ${JSON.stringify(missing)}: no such file`);
    expect(() => normalizeRunOptions('b', [], { ...base, envFile: [dir] })).toThrow(`invalid --env-file ${JSON.stringify(dir)}: a directory`);
    writeFileSync(path.join(dir, 'bin.env'), Buffer.from([0x41, 0x3d, 0xff, 0xfe, 0x0a]));
    expect(() => normalizeRunOptions('b', [], { ...base, envFile: [path.join(dir, 'bin.env')] })).toThrow('not UTF-8 text');
  });
});

describe('-u/--user syntax (checkUserSpec; names are looked up at creation)', () => {
  it('takes USER or USER:GROUP, numbers or names', () => {
    for (const ok of ['0', '1000', '1000:1000', 'nobody', 'www-data:adm', '65534:nogroup', '2147483647']) expect(checkUserSpec(ok)).toBe(ok);
  });
  it('refuses empty parts, more colons, blanks and ids above 2^31-1', () => {
    for (const bad of ['', ':', '1000:', ':1000', 'a:b:c', 'a b', '2147483648', '0:2147483648']) {
      expect(() => checkUserSpec(bad)).toThrow(`invalid --user ${JSON.stringify(bad)}: expected USER or USER:GROUP, each a number or a name`);
    }
  });
  it('is kept as given in the run options', () => {
    expect(normalizeRunOptions('b', [], { env: [], net: 'none', publish: [], user: 'nobody:0' }).user).toBe('nobody:0');
    expect('user' in normalizeRunOptions('b', [], { env: [], net: 'none', publish: [] })).toBe(false);
  });
});
