// The element batches sent straight to nf_tables: every byte as `nft --debug=netlink` shows nft
// sending it for the same JSON (nft 1.0.6), the batches left to libnftables, and how answers are
// read (a fake socket).
import { describe, expect, it } from '@jest/globals';
import { addElements, addEndpointBatch, addNetworkBatch, baseTable, deleteElements, endpointElements, guardElements, networkBatchOf, removeGuardBatch, tableDefinitions, type NftBatch } from '../../../runtime/firewall/nft-rules.js';
import { BatchTooLarge, batchDatagram, encodeElementBatch, sendElementBatch } from '../../../runtime/firewall/nfnl.js';
import { decodeMessages, encodeMessage } from '../../../runtime/netlink/codec.js';
import { addressBytes, parseAddress } from '../../../config/address.js';
import { ErrnoError } from '../../../runtime/netns/errno.js';
import type { Sys } from '../../../runtime/netns/sys.js';

/** Every attribute in order (parseAttrs keeps only the last of a type). */
function attrs(buf: Buffer): { type: number; data: Buffer }[] {
  const out: { type: number; data: Buffer }[] = [];
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    out.push({ type: buf.readUInt16LE(off + 2) & 0x3fff, data: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

interface El { key: string; flags?: number; data?: string; userdata?: string }

/** One message: family, table, set and its elements as hex. */
function decode(body: Buffer): { family: number; table: string; set: string; elements: El[] } {
  const top = attrs(body.subarray(4));
  const str = (t: number) => top.find((a) => a.type === t)!.data.toString('utf8').replace(/\0$/, '');
  const list = attrs(top.find((a) => a.type === 3)!.data);
  const elements = list.map((l) => {
    expect(l.type).toBe(1); // NFTA_LIST_ELEM
    const e: El = { key: '' };
    for (const a of attrs(l.data)) {
      if (a.type === 1) e.key = attrs(a.data)[0]!.data.toString('hex');
      if (a.type === 2) e.data = attrs(a.data)[0]!.data.toString('hex');
      if (a.type === 3) e.flags = a.data.readUInt32BE(0);
      if (a.type === 6) e.userdata = a.data.toString('latin1');
    }
    return e;
  });
  return { family: body.readUInt8(0), table: str(1), set: str(2), elements };
}

const net = { name: 'n1', bridge: 'tsbr1', subnets4: ['10.88.0.0/16'], subnets6: ['fd88::/64'], internal: false, icc: true };
const ep = {
  containerId: 'c1',
  ipv4: '10.88.0.5',
  ipv6: 'fd88::5',
  ports: [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' as const },
    { hostPort: 53, containerPort: 53, protocol: 'udp' as const, hostIp: '127.0.0.1' },
  ],
  port: { ifname: 'tsv1234', mac: '02:42:ac:11:00:02' },
};
const ifname = (s: string) => Buffer.concat([Buffer.from(s), Buffer.alloc(16 - s.length)]).toString('hex');

describe('encodeElementBatch', () => {
  const attach: NftBatch = { nftables: [...addNetworkBatch(net).nftables, ...addEndpointBatch(ep).nftables, ...addElements(guardElements(ep))] };
  const encoded = encodeElementBatch(attach)!;
  const byName = new Map(encoded.messages.map((m) => [decode(m.body).set, { ...decode(m.body), type: m.type, flags: m.flags, what: m.what }]));

  it('sends one NEWSETELEM per set, in the batch order, as `add` (no NLM_F_EXCL) with an ACK each', () => {
    expect(encoded.messages.map((m) => decode(m.body).set)).toEqual(attach.nftables.map((c) => (c.add!.element as { name: string }).name));
    for (const m of encoded.messages) {
      expect(m.type).toBe((10 << 8) | 12);
      expect(m.flags).toBe(0x1 | 0x4 | 0x400);
    }
    expect(byName.get('bridges')!.family).toBe(1); // NFPROTO_INET
    expect(byName.get('guard_ports')!.family).toBe(7); // NFPROTO_BRIDGE
    expect(byName.get('pub4_any_addr')!.what).toBe('add element inet tsrun pub4_any_addr');
  });

  it('encodes keys, data and the owner comment as nft does', () => {
    const comment = (c: string) => `\x00${String.fromCharCode(c.length + 1)}${c}\x00`;
    expect(byName.get('bridges')!.elements).toEqual([{ key: ifname('tsbr1'), userdata: comment('net:n1') }]);
    expect(byName.get('bridge_pairs')!.elements).toEqual([{ key: ifname('tsbr1') + ifname('tsbr1'), userdata: comment('net:n1') }]);
    // (proto . port) in 32-bit registers; the data as long as the map's type.
    expect(byName.get('pub4_any_addr')!.elements).toEqual([{ key: '06000000' + '1f900000', data: '0a580005', userdata: comment('ctr:c1') }]);
    expect(byName.get('pub4_any_port')!.elements).toEqual([{ key: '06000000' + '1f900000', data: '0050', userdata: comment('ctr:c1') }]);
    expect(byName.get('pub6_any_addr')!.elements[0]!.data).toBe('fd880000000000000000000000000005');
    expect(byName.get('pub4_ip_addr')!.elements).toEqual([{ key: '7f000001' + '11000000' + '00350000', data: '0a580005', userdata: comment('ctr:c1') }]);
    // (port . MAC) with the MAC padded to 8 bytes.
    expect(byName.get('guard_macs')!.elements).toEqual([{ key: ifname('tsv1234') + '0242ac1100020000', userdata: comment('ctr:c1') }]);
    // the port's link-local address (EUI-64 of its MAC), then its address
    expect(byName.get('guard_src6')!.elements.map((e) => e.key)).toEqual([ifname('tsv1234') + '0242ac1100020000' + 'fe800000000000000042acfffe110002', ifname('tsv1234') + '0242ac1100020000' + 'fd880000000000000000000000000005']);
  });

  it('sends an interval as its start (with the comment) and the next address flagged INTERVAL_END', () => {
    const end = { flags: 1 };
    expect(byName.get('subnets4')!.elements).toEqual([{ key: '0a580000', userdata: '\x00\x07net:n1\x00' }, { key: '0a590000', ...end }]);
    expect(byName.get('nat_src6')!.elements).toEqual([{ key: 'fd880000000000000000000000000000', userdata: '\x00\x07net:n1\x00' }, { key: 'fd880000000000010000000000000000', ...end }]);
    const host = encodeElementBatch(addNetworkBatch({ ...net, subnets4: ['10.89.3.7/32'], subnets6: [] }))!;
    expect(decode(host.messages.find((m) => decode(m.body).set === 'subnets4')!.body).elements).toEqual([{ key: '0a590307', userdata: '\x00\x07net:n1\x00' }, { key: '0a590308', ...end }]);
  });

  it('deletes by key alone (DELSETELEM), the port guard after its idempotent re-add', () => {
    const detach = encodeElementBatch({ nftables: [...removeGuardBatch(ep).nftables, ...deleteElements(endpointElements(ep))] })!;
    const dels = detach.messages.filter((m) => m.type === ((10 << 8) | 14));
    expect(dels.map((m) => decode(m.body).set)).toEqual(['guard_ports', 'guard_macs', 'guard_src4', 'guard_src6', 'nd_lladdrs', 'nd_targets', 'pub4_any_addr', 'pub4_any_port', 'pub6_any_addr', 'pub6_any_port', 'pub4_ip_addr', 'pub4_ip_port']);
    for (const m of dels) {
      expect(m.flags).toBe(0x1 | 0x4);
      for (const e of decode(m.body).elements) expect(e.data ?? e.userdata).toBeUndefined();
    }
    expect(decode(dels[6]!.body).elements).toEqual([{ key: '06000000' + '1f900000' }]);
    // table bridge tsrun_nd's raw keys: the port, then the MAC (padded to 32 bits) or the address
    const port = Buffer.from('tsv1234').toString('hex').padEnd(32, '0');
    expect(decode(dels[4]!.body).elements).toEqual([{ key: `${port}0242ac1100020000` }]);
    expect(decode(dels[5]!.body).elements).toEqual([{ key: `${port}fe800000000000000042acfffe110002` }, { key: `${port}fd880000000000000000000000000005` }]);
  });

  it('leaves a batch of more than 128 KiB to libnftables (it grows its socket buffer to fit)', () => {
    const many = (n: number): NftBatch => ({ nftables: Array.from({ length: n }, (_, i) => ({ add: { element: { family: 'inet', table: 'tsrun', name: 'bridges', elem: [{ elem: { val: `tsb${i}`, comment: `net:${'n'.repeat(60)}${i}` } }] } } })) });
    expect(encodeElementBatch(many(100))!.datagram.length).toBeLessThan(128 * 1024);
    expect(encodeElementBatch(many(2000))).toBeUndefined();
  });

  it('parses addresses and MACs exactly as the strict parser does', () => {
    const key = (name: string, val: unknown) => {
      const family = name.startsWith('guard_') ? 'bridge' : 'inet';
      const e = encodeElementBatch({ nftables: [{ add: { element: { family, table: 'tsrun', name, elem: [val] } } }] } as unknown as NftBatch);
      return e ? decode(e.messages[0]!.body).elements[0]!.key : undefined;
    };
    const hex = (a: string) => Buffer.from(addressBytes(parseAddress(a))).toString('hex');
    for (const a of ['10.0.0.1', '1.2.3.4', '255.255.255.254', '0.0.0.1']) expect([a, key('underlay_peers4', a)]).toEqual([a, hex(a)]);
    for (const a of ['fd88::5', 'FD88::A', '1:2:3:4:5:6:7:8', '::1', '1::', 'fe80::1:0:0:2', '2001:db8:0:0:1::1']) expect([a, key('subnets6', a)]).toEqual([a, hex(a)]);
    expect(key('subnets6', '::ffff:10.0.0.1')).toBeUndefined(); // IPv4-mapped: an IPv4 address to the strict parser
    for (const bad of ['10.0.0.256', '010.0.0.1', '10.0.0', '10.0.0.1.2', '10..0.1', ' 10.0.0.1', '10.0.0.1/32', '']) expect([bad, key('underlay_peers4', bad)]).toEqual([bad, undefined]);
    for (const bad of ['fd88:::1', 'fd88::1::2', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8', '12345::', 'fd88::g', 'fe80::1%eth0', ':1::', '10.0.0.1']) expect([bad, key('subnets6', bad)]).toEqual([bad, undefined]);
    const mac = (m: string) => key('guard_macs', { concat: ['tsv0', m] })?.slice(32, 44);
    expect(mac('02:42:AC:11:00:0f')).toBe('0242ac11000f');
    for (const bad of ['02:42:ac:11:00', '02:42:ac:11:00:0g', '02-42-ac-11-00-02', '02:42:ac:11:00:022']) expect([bad, mac(bad)]).toEqual([bad, undefined]);
  });

  it("builds a network's commands once and encodes them once, to the same bytes", () => {
    const again = networkBatchOf({ ...net, subnets4: [...net.subnets4] });
    expect(networkBatchOf(net)).toBe(again);
    expect(networkBatchOf({ ...net, icc: false })).not.toBe(again);
    expect(networkBatchOf(net)).toEqual(addNetworkBatch(net));
    const batch = (): NftBatch => ({ nftables: [...networkBatchOf(net).nftables, ...addEndpointBatch(ep).nftables] });
    const first = Buffer.from(encodeElementBatch(batch())!.datagram);
    const second = encodeElementBatch(batch())!; // the network's commands from the encoder's memory
    expect(second.datagram).toEqual(first);
    expect(second.messages.map((m) => m.what)).toEqual(encodeElementBatch({ nftables: [...addNetworkBatch(net).nftables, ...addEndpointBatch(ep).nftables] })!.messages.map((m) => m.what));
    expect(() => networkBatchOf(null as never)).toThrow(/expected an object/);
  });

  it('leaves every other batch to libnftables', () => {
    const el = (o: Record<string, unknown>) => ({ nftables: [{ add: { element: { family: 'inet', table: 'tsrun', name: 'bridges', elem: ['tsbr1'], ...o } } }] }) as unknown as NftBatch;
    expect(encodeElementBatch(el({}))).toBeDefined();
    expect(encodeElementBatch(baseTable())).toBeUndefined();
    expect(encodeElementBatch({ nftables: [...addNetworkBatch(net).nftables, { flush: { set: { family: 'inet', table: 'tsrun', name: 'bridges' } } }] })).toBeUndefined();
    expect(encodeElementBatch(el({ table: 'other' }))).toBeUndefined(); // not tsrun's table
    expect(encodeElementBatch(el({ family: 'ip' }))).toBeUndefined();
    expect(encodeElementBatch(el({ name: 'nosuchset' }))).toBeUndefined();
    expect(encodeElementBatch(el({ elem: ['an-interface-name-too-long'] }))).toBeUndefined();
    expect(encodeElementBatch(el({ elem: [{ elem: { val: 'tsbr1', timeout: 5 } }] }))).toBeUndefined();
    const sub = (val: unknown) => ({ nftables: [{ add: { element: { family: 'inet', table: 'tsrun', name: 'subnets4', elem: [val] } } }] }) as unknown as NftBatch;
    expect(encodeElementBatch(sub({ prefix: { addr: '10.0.0.0', len: 8 } }))).toBeDefined();
    // Ranges at either end of the address space, host bits set, a range given as such: nft's to handle.
    expect(encodeElementBatch(sub({ prefix: { addr: '0.0.0.0', len: 8 } }))).toBeUndefined();
    expect(encodeElementBatch(sub({ prefix: { addr: '255.0.0.0', len: 8 } }))).toBeUndefined();
    expect(encodeElementBatch(sub({ prefix: { addr: '10.0.0.1', len: 8 } }))).toBeUndefined();
    expect(encodeElementBatch(sub({ range: ['10.0.0.1', '10.0.0.9'] }))).toBeUndefined();
    expect(encodeElementBatch(sub('fd00::1'))).toBeUndefined(); // wrong family
    const pub = (elem: unknown) => ({ nftables: [{ add: { element: { family: 'inet', table: 'tsrun', name: 'pub4_any_port', elem: [elem] } } }] }) as unknown as NftBatch;
    expect(encodeElementBatch(pub([{ concat: ['tcp', 80] }, 8080]))).toBeDefined();
    expect(encodeElementBatch(pub([{ concat: ['sctp', 80] }, 8080]))).toBeUndefined();
    expect(encodeElementBatch(pub([{ concat: ['tcp', 70000] }, 8080]))).toBeUndefined();
    expect(encodeElementBatch(pub({ concat: ['tcp', 80] }))).toBeUndefined(); // an add without its data
  });
});

describe('batchDatagram', () => {
  it('wraps the messages in BATCH_BEGIN and BATCH_END for nf_tables, with consecutive sequence numbers', () => {
    const batch = encodeElementBatch(addNetworkBatch(net))!;
    const msgs = decodeMessages(batchDatagram(batch, 41));
    expect(msgs.map((m) => m.seq)).toEqual(msgs.map((_, i) => 41 + i));
    expect(msgs[0]!.type).toBe(16);
    expect(msgs.at(-1)!.type).toBe(17);
    for (const m of [msgs[0]!, msgs.at(-1)!]) expect([...m.data]).toEqual([0, 0, 0, 10]); // res_id NFNL_SUBSYS_NFTABLES, big-endian
    expect(msgs.slice(1, -1).map((m) => m.data)).toEqual(batch.messages.map((m) => m.body));
  });
});

describe('sendElementBatch', () => {
  /** A socket that answers each message of a batch with `answer(index)` (errno, 0 for ACK, undefined for none). */
  function fakeSys(answer: (i: number, seq: number) => number | undefined): Sys & { sent: Buffer[]; closed: number[] } {
    const queue: Buffer[] = [];
    const sent: Buffer[] = [];
    const closed: number[] = [];
    const sys: Sys & { sent: Buffer[]; closed: number[] } = {
      sent,
      closed,
      setns: () => undefined,
      unshare: () => undefined,
      mount: () => undefined,
      umount2: () => undefined,
      socket: () => 42,
      poll: () => 0,
      close: (fd) => void closed.push(fd),
      send: (_fd, buf) => {
        sent.push(Buffer.from(buf));
        decodeMessages(buf).forEach((m, i) => {
          const errno = answer(i, m.seq);
          if (errno === undefined) return;
          const data = Buffer.alloc(20);
          data.writeInt32LE(-errno, 0);
          queue.push(encodeMessage({ type: 2, flags: 0, seq: m.seq, port: 0, data }));
        });
        return buf.length;
      },
      recv: (_fd, buf) => {
        const next = queue.shift();
        if (!next) throw new ErrnoError(11, 'recv');
        next.copy(buf);
        return next.length;
      },
    };
    return sys;
  }
  const batch = encodeElementBatch(addEndpointBatch(ep))!;
  const n = batch.messages.length;

  it('succeeds when every command is acknowledged', () => {
    const sys = fakeSys((i) => (i === 0 || i === n + 1 ? undefined : 0));
    expect(sendElementBatch(batch, { sys, netns: '/proc/self/ns/net' })).toBeUndefined();
    expect(sys.sent).toHaveLength(1);
    expect(sys.closed).toEqual([42]); // a socket made for another namespace is closed after its batch
  });

  it("names the refused command in nft's words", () => {
    const sys = fakeSys((i) => (i === 3 ? 17 : i === 0 || i === n + 1 ? undefined : 0));
    expect(sendElementBatch(batch, { sys, netns: '/proc/self/ns/net' })).toEqual({
      errno: 17,
      what: 'add element inet tsrun pub6_any_addr',
      message: 'Error: Could not process rule: File exists\nadd element inet tsrun pub6_any_addr',
    });
  });

  it('reports a batch refused whole (the begin message answered with an error)', () => {
    const sys = fakeSys((i) => (i === 0 ? 1 : undefined));
    expect(sendElementBatch(batch, { sys, netns: '/proc/self/ns/net' })).toMatchObject({ errno: 1, what: 'nf_tables batch' });
  });

  it('says so when the batch does not fit the socket (nothing sent)', () => {
    const sys = fakeSys(() => 0);
    sys.send = () => {
      throw new ErrnoError(90, 'send');
    };
    expect(() => sendElementBatch(batch, { sys, netns: '/proc/self/ns/net' })).toThrow(BatchTooLarge);
  });

  it('throws when a command goes unanswered', () => {
    const sys = fakeSys((i) => (i === 1 ? 0 : undefined));
    expect(() => sendElementBatch(batch, { sys, netns: '/proc/self/ns/net' })).toThrow(`nf_tables answered 1 of the ${n} commands of the batch`);
  });
});

describe('the sets the netlink path encodes by name', () => {
  // The encoder takes a set's type from this version's definition, not from the kernel (that is
  // what spares libnftables' cache fill). An attach can reach a table made by an older tsrun
  // before any self-check replaced it, so a name must mean the same type in every version: a set
  // whose key, data or flags change gets a NEW name (the old table's set then is "missing": the
  // batch fails as not-found and the table is rebuilt). Every name tsrun ever used is pinned here
  // (git history of nft-rules.ts: no name has ever had two types). Never edit a line; add one.
  const EVER: Record<string, string> = {
    'inet bridges': 'ifname',
    'inet bridge_pairs': 'ifname . ifname',
    'inet internal_bridges': 'ifname',
    'inet subnets4': 'ipv4_addr interval',
    'inet subnets6': 'ipv6_addr interval',
    'inet nat_src4': 'ipv4_addr interval',
    'inet nat_src6': 'ipv6_addr interval',
    'inet notrack_bridges': 'ifname', // removed; its name stays taken
    'inet pub4_any_addr': 'inet_proto . inet_service : ipv4_addr',
    'inet pub4_any_port': 'inet_proto . inet_service : inet_service',
    'inet pub4_ip_addr': 'ipv4_addr . inet_proto . inet_service : ipv4_addr',
    'inet pub4_ip_port': 'ipv4_addr . inet_proto . inet_service : inet_service',
    'inet pub6_any_addr': 'inet_proto . inet_service : ipv6_addr',
    'inet pub6_any_port': 'inet_proto . inet_service : inet_service',
    'inet pub6_ip_addr': 'ipv6_addr . inet_proto . inet_service : ipv6_addr',
    'inet pub6_ip_port': 'ipv6_addr . inet_proto . inet_service : inet_service',
    'inet underlay_local4': 'ipv4_addr',
    'inet underlay_peers4': 'ipv4_addr',
    'inet underlay_ports': 'inet_service',
    'bridge guard_ports': 'ifname',
    'bridge guard_macs': 'ifname . ether_addr',
    'bridge guard_src4': 'ifname . ether_addr . ipv4_addr',
    'bridge guard_src6': 'ifname . ether_addr . ipv6_addr',
    'bridge nd_targets': 'ifname . raw128', // table bridge tsrun_nd: typeof iifname . @th,64,128
    'bridge nd_lladdrs': 'ifname . raw48', // typeof iifname . @th,208,48
    // and 'inet schema_<schema id>': always inet_service (the schema marker, nft-rules.ts)
  };
  it('never gives a name another type', () => {
    for (const t of tableDefinitions()) {
      for (const set of t.sets) {
        const type = [typeof set.type === 'string' ? set.type : set.type.join(' . '), set.interval ? 'interval' : '', set.map ? `: ${set.map}` : ''].filter(Boolean).join(' ');
        expect(`${t.family} ${set.name}: ${type}`).toBe(`${t.family} ${set.name}: ${EVER[`${t.family} ${set.name}`] ?? (t.family === 'inet' && set.name.startsWith('schema_') ? 'inet_service' : '(a new name: pin it above)')}`);
      }
    }
  });
});
