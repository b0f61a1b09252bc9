import { describe, expect, it } from '@jest/globals';
import { DetachScanner, inputPackets, outputOf, parseDetachKeys } from '../../../../shim/lifecycle/attach-keys.js';

describe('tsrun attach: detach keys', () => {
  it("parses docker's --detach-keys format", () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([0x10, 0x11]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')]).toEqual([0, 27, 28, 29, 30, 31]);
    expect([...parseDetachKeys('a,ctrl-a,Z')]).toEqual([0x61, 1, 0x5a]);
    expect(parseDetachKeys('').length).toBe(0);
    for (const bad of ['ctrl-', 'ctrl-1', 'abc', 'ctrl-p,,ctrl-q', 'alt-x']) expect(() => parseDetachKeys(bad)).toThrow(/^invalid --detach-keys/);
  });

  it('holds back what may start the sequence, detaches on the whole of it, across chunks', () => {
    const s = new DetachScanner(parseDetachKeys('ctrl-p,ctrl-q'));
    expect(s.feed(Buffer.from('ab\x10'))).toEqual({ forward: Buffer.from('ab'), detached: false });
    expect(s.feed(Buffer.from('\x11rest'))).toEqual({ forward: Buffer.alloc(0), detached: true });
  });

  it('sends held bytes on when the sequence breaks, and starts again at a new first key', () => {
    const s = new DetachScanner(parseDetachKeys('ctrl-p,ctrl-q'));
    expect(s.feed(Buffer.from('\x10x'))).toEqual({ forward: Buffer.from('\x10x'), detached: false });
    expect(s.feed(Buffer.from('\x10\x10'))).toEqual({ forward: Buffer.from('\x10'), detached: false });
    expect(s.feed(Buffer.from('\x11'))).toEqual({ forward: Buffer.alloc(0), detached: true });
    const one = new DetachScanner(parseDetachKeys('ctrl-x'));
    expect(one.feed(Buffer.from('a\x18b'))).toEqual({ forward: Buffer.from('a'), detached: true });
  });

  it('with no keys everything goes through', () => {
    const s = new DetachScanner(parseDetachKeys(''));
    expect(s.feed(Buffer.from('\x10\x11'))).toEqual({ forward: Buffer.from('\x10\x11'), detached: false });
  });
});

describe("tsrun attach: conmon's packets", () => {
  it('reads the stream byte: 2 stdout, 3 stderr, anything else ignored', () => {
    expect(outputOf(Buffer.from('\x02hi'))).toEqual({ stream: 'stdout', data: Buffer.from('hi') });
    expect(outputOf(Buffer.from('\x03err'))).toEqual({ stream: 'stderr', data: Buffer.from('err') });
    expect(outputOf(Buffer.from('\x01in'))).toBeUndefined();
    expect(outputOf(Buffer.from('\x02'))).toBeUndefined();
  });

  it('cuts input into packets conmon reads whole', () => {
    expect(inputPackets(Buffer.alloc(10_000), 4096).map((b) => b.length)).toEqual([4096, 4096, 1808]);
    expect(inputPackets(Buffer.alloc(0))).toEqual([]);
  });
});
