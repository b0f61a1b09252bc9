// The frames that announce an endpoint (runtime/drivers/announce.ts): their bytes, and the
// ICMPv6 checksum a receiver verifies.
import { describe, expect, it } from '@jest/globals';
import { announcementFrames, garpFrame, icmp6Checksum, unsolicitedNaFrame } from '../../../runtime/drivers/announce.js';
import { announce } from '../../../runtime/drivers/linux-bridge.js';
import type { AttachContext } from '../../../runtime/drivers/driver.js';

const MAC = '02:aa:bb:cc:dd:ee';

describe('garpFrame', () => {
  it('is a broadcast ARP request whose sender and target address are both the address', () => {
    const f = garpFrame(MAC, '10.1.2.3');
    expect(f.length).toBe(42);
    expect(f.subarray(0, 6).toString('hex')).toBe('ffffffffffff');
    expect(f.subarray(6, 12).toString('hex')).toBe('02aabbccddee');
    expect(f.readUInt16BE(12)).toBe(0x0806);
    expect(f.readUInt16BE(20)).toBe(1); // request
    expect(f.subarray(22, 28).toString('hex')).toBe('02aabbccddee');
    expect([...f.subarray(28, 32)]).toEqual([10, 1, 2, 3]);
    expect(f.subarray(32, 38).toString('hex')).toBe('000000000000');
    expect([...f.subarray(38, 42)]).toEqual([10, 1, 2, 3]);
  });
  it('refuses an IPv6 address', () => expect(() => garpFrame(MAC, 'fd00::1')).toThrow());
});

describe('unsolicitedNaFrame', () => {
  const f = unsolicitedNaFrame(MAC, 'fd72::9');
  it('goes to all nodes, hop limit 255, override without solicited, with the target and its MAC', () => {
    expect(f.subarray(0, 6).toString('hex')).toBe('333300000001');
    expect(f.readUInt16BE(12)).toBe(0x86dd);
    expect(f[14 + 6]).toBe(58);
    expect(f[14 + 7]).toBe(255);
    expect(f.subarray(14 + 24, 14 + 40).toString('hex')).toBe('ff020000000000000000000000000001');
    const icmp = f.subarray(54);
    expect(icmp[0]).toBe(136);
    expect(icmp.readUInt32BE(4)).toBe(0x2000_0000);
    expect(icmp.subarray(8, 24).toString('hex')).toBe('fd720000000000000000000000000009');
    expect([icmp[24], icmp[25]]).toEqual([2, 1]);
    expect(icmp.subarray(26, 32).toString('hex')).toBe('02aabbccddee');
  });
  it('carries a checksum that verifies (the sum over pseudo-header and message is all ones)', () => {
    const src = f.subarray(14 + 8, 14 + 24);
    const dst = f.subarray(14 + 24, 14 + 40);
    const icmp = Buffer.from(f.subarray(54));
    const sent = icmp.readUInt16BE(2);
    icmp.writeUInt16BE(0, 2);
    expect(icmp6Checksum(src, dst, icmp)).toBe(sent);
  });
});

it('announcementFrames: a GARP for IPv4, an NA for each IPv6 address, nothing without addresses', () => {
  expect(announcementFrames(MAC, '10.0.0.2', ['fd00::2']).map((b) => b.readUInt16BE(12))).toEqual([0x0806, 0x86dd]);
  expect(announcementFrames(MAC, undefined, [])).toEqual([]);
});

// The announcement is a cache hint: an attach goes on when it cannot be made, and the port's
// hairpin (on, as attach set it) is on again afterwards in every case it was turned off.
describe('announce (best-effort, hairpin restored)', () => {
  const debug: string[] = [];
  const ctx = (over: Partial<AttachContext> = {}) =>
    ({
      // No such namespace: the send fails as it would on a namespace gone meanwhile.
      containerNetnsPath: '/nonexistent/tsrun-announce-test',
      mac: '02:aa:bb:cc:dd:ee',
      ipv4: { address: '10.0.0.2', prefixLength: 24 },
      log: { debug: (_o: unknown, m: string) => void debug.push(m), warn() {}, info() {}, error() {} },
      ...over,
    }) as unknown as AttachContext;
  const host = (fail: (hairpin: boolean) => boolean) => {
    const calls: boolean[] = [];
    const hairpin = { on: true };
    return {
      calls,
      hairpin,
      setBridgePort: async (_index: number, f: { hairpin?: boolean }) => {
        calls.push(f.hairpin!);
        if (fail(f.hairpin!)) throw new Error('EPERM');
        hairpin.on = f.hairpin!;
      },
    };
  };

  it('resolves and sends nothing when the hairpin cannot be turned off; the hairpin stays on', async () => {
    debug.length = 0;
    const h = host((on) => !on);
    await expect(announce(ctx(), h, 7, 2, '02:aa:bb:cc:dd:ee')).resolves.toBeUndefined();
    expect(h.calls).toEqual([false]);
    expect(h.hairpin.on).toBe(true);
    expect(debug).toHaveLength(1);
  });

  it('resolves when the frames cannot be sent, with the hairpin back on', async () => {
    debug.length = 0;
    const h = host(() => false);
    await expect(announce(ctx({ ipv6: { address: 'fd00::2', prefixLength: 64 } } as Partial<AttachContext>), h, 7, 2, '02:aa:bb:cc:dd:ee')).resolves.toBeUndefined();
    expect(h.calls).toEqual([false, true]);
    expect(h.hairpin.on).toBe(true);
    expect(debug).toHaveLength(1);
  });

  it('fails the attach when the hairpin cannot be turned back on (the transaction removes the port)', async () => {
    const h = host((on) => on);
    await expect(announce(ctx(), h, 7, 2, '02:aa:bb:cc:dd:ee')).rejects.toThrow('EPERM');
    expect(h.calls).toEqual([false, true]);
  });

  it('leaves the port alone for a default IPv4 endpoint (nothing to announce)', async () => {
    const h = host(() => false);
    await announce(ctx({ mac: undefined }), h, 7, 2, '02:42:0a:00:00:02');
    expect(h.calls).toEqual([]);
  });
});
