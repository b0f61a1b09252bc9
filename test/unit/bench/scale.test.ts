// The 200-attach growth row's arithmetic (bench/scale.ts): the paired ratio and the rule.
import { describe, expect, it } from '@jest/globals';
import { growthFloorTarget, pairedRatio } from '../../../bench/scale.js';

describe('pairedRatio', () => {
  it('is the median of the per-round ratios, so one slow round does not move it', () => {
    expect(pairedRatio([10, 10, 10], [11, 10, 50], 1)).toBeCloseTo(1.1);
  });
  it('compares the two sizes within each round: drift across rounds cancels', () => {
    // the machine twice as slow in the last two rounds, both sizes alike
    expect(pairedRatio([8, 16, 16], [8.4, 16.8, 16.8], 1)).toBeCloseTo(1.05);
  });
  it('takes each side\'s faster sample of a round (A B B A): an order effect within the round cancels', () => {
    // each side's first sample in a round is 2 ms slower than its second
    expect(pairedRatio([12, 10, 12, 10], [12.5, 10.5, 12.5, 10.5])).toBeCloseTo(1.05);
  });
  it('a sample that waited for a CPU does not move its round', () => {
    expect(pairedRatio([10, 10, 10, 10, 10, 10], [10.5, 40, 10.5, 10.5, 30, 10.5])).toBeCloseTo(1.05);
  });
});

describe('growthFloorTarget', () => {
  it('sets no floor while the kernel grows less than the target: 1.05 stands alone', () => {
    expect(growthFloorTarget(1.02).target).toBeUndefined();
  });
  it('holds tsrun within 10 % of the kernel where the kernel alone grows past 1.05', () => {
    expect(growthFloorTarget(1.2).target).toBe('≤ 1.1');
  });
});
