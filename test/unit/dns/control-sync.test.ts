import { describe, expect, it } from '@jest/globals';
import { abstractAddress } from '../../../runtime/dns/control-sync.js';

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
