import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { randomBytesSync, sha256Hex } from '../../../runtime/hash.js';

const nodeSha = (d: string | Uint8Array) => createHash('sha256').update(d).digest('hex');

describe('sha256Hex', () => {
  it('matches the standard test vectors', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  });

  it('is node:crypto\'s digest for every length around the block and padding edges, and for UTF-8 and binary input', () => {
    for (let n = 0; n <= 200; n++) {
      const s = 'x'.repeat(n);
      expect(sha256Hex(s)).toBe(nodeSha(s));
    }
    for (const s of ['ctr:é\u{1F600}', 'container\0network', `${'ü'.repeat(70)}`]) expect(sha256Hex(s)).toBe(nodeSha(s));
    const bytes = new Uint8Array(1000).map((_, i) => (i * 37) & 0xff);
    expect(sha256Hex(bytes)).toBe(nodeSha(bytes));
  });
});

describe('randomBytesSync', () => {
  it('gives as many bytes as asked, different every time', () => {
    expect(randomBytesSync(0)).toHaveLength(0);
    const a = randomBytesSync(16);
    const b = randomBytesSync(16);
    expect(a).toHaveLength(16);
    expect(a.equals(b)).toBe(false);
  });

  it('hands each pooled byte out once, across pool refills, and reads large draws directly', () => {
    const draws = Array.from({ length: 200 }, (_, i) => randomBytesSync(1 + (i % 16)));
    draws.forEach((d, i) => expect(d).toHaveLength(1 + (i % 16)));
    // 6-byte draws (a MAC, a lease instance) never repeat: 48 bits each.
    const six = new Set(Array.from({ length: 500 }, () => randomBytesSync(6).toString('hex')));
    expect(six.size).toBe(500);
    const big = randomBytesSync(4096);
    expect(big).toHaveLength(4096);
    expect(new Set(big).size).toBeGreaterThan(200); // not a zero-filled or repeating buffer
  });
});
