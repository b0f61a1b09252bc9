// A rule's comment as libnftnl stores it in the rule's userdata: TLVs of (type, length, value),
// the comment being type 0 with its NUL (runtime/firewall/base-listing.ts).
import { describe, expect, it } from '@jest/globals';
import { ruleComment } from '../../../runtime/firewall/base-listing.js';

const tlv = (type: number, value: string) => Buffer.concat([Buffer.from([type, Buffer.byteLength(value) + 1]), Buffer.from(`${value}\0`)]);

describe('ruleComment', () => {
  it('reads the comment TLV, wherever it sits among others', () => {
    expect(ruleComment(tlv(0, 'a: outbound NAT v4 (tsrun 7)'))).toBe('a: outbound NAT v4 (tsrun 7)');
    expect(ruleComment(Buffer.concat([tlv(5, 'other'), tlv(0, 'mine')]))).toBe('mine');
  });
  it('is undefined without userdata, without a comment, or for a TLV cut short', () => {
    expect(ruleComment(undefined)).toBeUndefined();
    expect(ruleComment(tlv(5, 'other'))).toBeUndefined();
    expect(ruleComment(tlv(0, 'cut').subarray(0, 3))).toBeUndefined();
  });
});
