// The ipvlan create request, byte for byte: the kernel reads IFLA_IPVLAN_MODE and
// IFLA_IPVLAN_FLAGS as u16 inside IFLA_INFO_DATA, and a mistake there is silent (a wrong mode).
import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { IFINFOMSG_LEN, IFLA, IFLA_INFO, NLM_F_CREATE, NLM_F_EXCL, RTM, parseAttrs } from '../../../runtime/netlink/codec.js';
import * as rq from '../../../runtime/netlink/requests.js';

const hex = (...parts: string[]) => Buffer.from(parts.join('').replace(/\s+/g, ''), 'hex');

describe('createIpvlan', () => {
  it('encodes name, MTU, parent, target namespace and the kind data exactly', () => {
    const r = rq.createIpvlan({ name: 'tsi0', parentIndex: 3, mode: 'l3', nsFd: 9, mtu: 1400 });
    expect(r.type).toBe(RTM.NEWLINK);
    expect(r.flags).toBe(NLM_F_CREATE | NLM_F_EXCL);
    expect(r.body).toEqual(
      hex(
        '00000000 00000000 00000000 00000000', // ifinfomsg: family, type, index 0, no flags (created down)
        '0900 0300 74736930 00 000000', //        IFLA_IFNAME "tsi0\0" + padding
        '0800 0400 78050000', //                  IFLA_MTU 1400
        '0800 0500 03000000', //                  IFLA_LINK 3 (the parent, in the sender's namespace)
        '0800 1c00 09000000', //                  IFLA_NET_NS_FD 9 (born in the container's namespace)
        '2400 1280', //                           IFLA_LINKINFO, nested, 36 bytes
        '0b00 0100 6970766c616e00 00', //           IFLA_INFO_KIND "ipvlan\0" + padding
        '1400 0280', //                             IFLA_INFO_DATA, nested, 20 bytes
        '0600 0100 0100 0000', //                     IFLA_IPVLAN_MODE u16 1 (l3) + padding
        '0600 0200 0000 0000', //                     IFLA_IPVLAN_FLAGS u16 0 (bridge) + padding
      ),
    );
  });

  const modes: ['l2' | 'l3' | 'l3s', 'private' | 'vepa' | undefined, number, number][] = [
    ['l2', undefined, 0, 0],
    ['l3', 'private', 1, 1],
    ['l3s', 'vepa', 2, 2],
  ];
  it.each(modes)('mode %s flags %s → %i, %i', (mode, flags, modeValue, flagValue) => {
    const r = rq.createIpvlan({ name: 'x', parentIndex: 2, mode, ...(flags ? { flags } : {}) });
    const info = parseAttrs(parseAttrs(r.body.subarray(IFINFOMSG_LEN)).get(IFLA.LINKINFO)!);
    const data = parseAttrs(info.get(IFLA_INFO.DATA)!);
    expect(data.get(1)).toEqual(Buffer.from([modeValue, 0]));
    expect(data.get(2)).toEqual(Buffer.from([flagValue, 0]));
  });

  it('never sends a MAC (ipvlan children share the parent\'s) and refuses unknown modes', () => {
    const attrs = parseAttrs(rq.createIpvlan({ name: 'x', parentIndex: 2, mode: 'l2' }).body.subarray(IFINFOMSG_LEN));
    expect(attrs.has(IFLA.ADDRESS)).toBe(false);
    expect(attrs.has(IFLA.NET_NS_FD)).toBe(false);
    expect(() => rq.createIpvlan({ name: 'x', parentIndex: 2, mode: 'bridge' as 'l2' })).toThrow(UserError);
    expect(() => rq.createIpvlan({ name: 'x', parentIndex: 2, mode: 'l2', flags: 'passthru' as 'vepa' })).toThrow(UserError);
    expect(() => rq.createIpvlan({ name: 'toolong-name-16b', parentIndex: 2, mode: 'l2' })).toThrow(UserError);
  });
});

describe('probeLinkKind', () => {
  it('asks for a link of the kind with no parent: known kinds fail EINVAL, unknown EOPNOTSUPP, nothing is made', () => {
    const r = rq.probeLinkKind('ipvlan', 'tsprobe1');
    expect(r.type).toBe(RTM.NEWLINK);
    expect(r.flags).toBe(NLM_F_CREATE | NLM_F_EXCL);
    expect(r.body).toEqual(
      hex(
        '00000000 00000000 00000000 00000000',
        '0d00 0300 747370726f626531 00 000000', // IFLA_IFNAME "tsprobe1\0"
        '1000 1280 0b00 0100 6970766c616e00 00', // IFLA_LINKINFO { KIND "ipvlan" }, no IFLA_LINK
      ),
    );
  });
});
