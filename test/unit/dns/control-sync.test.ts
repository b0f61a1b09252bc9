import { describe, expect, it } from '@jest/globals';
import { abstractAddress, unixAddress } from '../../../runtime/dns/control-sync.js';
import { controlAddress, controlSocketName } from '../../../runtime/dns/paths.js';

describe('abstractAddress', () => {
  it('is a sockaddr_un padded to its full size, as libuv binds and connects abstract names', () => {
    const a = abstractAddress('\0tsrun-resolver-abc')!;
    expect(a).toHaveLength(110);
    expect(a.readUInt16LE(0)).toBe(1); // AF_UNIX
    expect(a.subarray(2, 21).toString('latin1')).toBe('\0tsrun-resolver-abc');
    expect(a.subarray(21).every((b) => b === 0)).toBe(true);
  });

  it('refuses what is not an abstract name, or does not fit', () => {
    expect(abstractAddress('/run/tsrun.sock')).toBeUndefined();
    expect(abstractAddress('')).toBeUndefined();
    expect(abstractAddress(`\0${'x'.repeat(108)}`)).toBeUndefined();
    expect(abstractAddress(`\0${'x'.repeat(107)}`)).toHaveLength(110);
  });
});

describe('the control socket address', () => {
  it('a socket file in the run directory, NUL-terminated; the abstract name only where the path is too long or record locks cannot be taken', () => {
    expect(controlAddress('/run/tsrun')).toBe('/run/tsrun/dns/control.sock');
    const a = unixAddress('/run/tsrun/dns/control.sock')!;
    expect([a.readUInt16LE(0), a.length, a.subarray(2, -1).toString(), a[a.length - 1]]).toEqual([1, 2 + 27 + 1, '/run/tsrun/dns/control.sock', 0]);
    expect(controlAddress('/run/tsrun', false)).toBe(controlSocketName('/run/tsrun'));
    const deep = `/tmp/${'d'.repeat(100)}`;
    expect(controlAddress(deep)).toBe(controlSocketName(deep));
    expect(unixAddress(controlSocketName(deep))).toHaveLength(110);
  });
});
