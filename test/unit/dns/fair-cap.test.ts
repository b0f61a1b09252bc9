// The resolver's fair cap (runtime/dns/fair-cap.ts): per client, overall, and who gives way when
// every place is taken.
import { describe, expect, it } from '@jest/globals';
import { FairCap } from '../../../runtime/dns/fair-cap.js';

describe('FairCap', () => {
  const make = (total: number, perClient: number) => {
    const evicted: string[] = [];
    const cap: FairCap<string> = new FairCap<string>(total, perClient, (item, client) => {
      evicted.push(item);
      cap.release(client, item);
    });
    return { cap, evicted };
  };

  it('refuses a client past its own cap, whatever room is left', () => {
    const { cap } = make(100, 2);
    expect(cap.take('a', 'a1')).toBe(true);
    expect(cap.take('a', 'a2')).toBe(true);
    expect(cap.take('a', 'a3')).toBe(false);
    expect(cap.heldBy('a')).toBe(2);
    cap.release('a', 'a1');
    expect(cap.take('a', 'a3')).toBe(true);
    expect(cap.size).toBe(2);
  });

  it('when full, a newcomer takes the oldest place of the client holding the most', () => {
    const { cap, evicted } = make(4, 4);
    for (const i of [1, 2, 3, 4]) expect(cap.take('flood', `f${i}`)).toBe(true);
    expect(cap.take('quiet', 'q1')).toBe(true);
    expect(evicted).toEqual(['f1']);
    expect(cap.take('quiet', 'q2')).toBe(true);
    expect(evicted).toEqual(['f1', 'f2']);
    // now 2 and 2: neither gives way to the other
    expect(cap.take('quiet', 'q3')).toBe(false);
    expect(cap.take('flood', 'f5')).toBe(false);
    expect([cap.heldBy('flood'), cap.heldBy('quiet'), cap.size]).toEqual([2, 2, 4]);
  });

  it('releases a place once; an evict that does not release is released for it', () => {
    const evicted: string[] = [];
    const cap = new FairCap<string>(1, 1, (item) => void evicted.push(item));
    expect(cap.take('a', 'a1')).toBe(true);
    expect(cap.take('b', 'b1')).toBe(false); // 1 and 0: a would hold no more than b after
    const big = new FairCap<string>(2, 2, (item) => void evicted.push(item));
    big.take('a', 'a1');
    big.take('a', 'a2');
    expect(big.take('b', 'b1')).toBe(true);
    expect(evicted).toEqual(['a1']);
    expect([big.heldBy('a'), big.size]).toEqual([1, 2]);
    big.release('a', 'a1'); // already gone: nothing happens
    expect(big.size).toBe(2);
  });
});
