// A container record's `created` is written by isoNow (runtime/containers.ts), which must say
// exactly what Date#toISOString says (readers parse it with Date).
import { describe, expect, it } from '@jest/globals';
import { isoNow } from '../../../runtime/containers.js';

describe('isoNow', () => {
  it('is Date#toISOString for now and for edge instants', () => {
    const instants = [Date.now(), 0, Date.UTC(1999, 11, 31, 23, 59, 59, 999), Date.UTC(2026, 0, 1, 0, 0, 0, 7), Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
    for (let i = 0; i < 1000; i++) instants.push(Math.floor(Math.random() * Date.UTC(9999, 0, 1)));
    for (const t of instants) expect(isoNow(new Date(t))).toBe(new Date(t).toISOString());
  });
});
