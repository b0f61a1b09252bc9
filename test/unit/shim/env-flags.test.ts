// `-e` as docker and podman read it: KEY=VALUE as given, a bare KEY takes the caller's value (and
// is left out when the caller has none), anything else is one line naming the flag.
import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { envFlags } from '../../../shim/run-options.js';

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
