// The self-check over netlink against the kernel's own answers: the sets, chains and rules below
// are what nf_tables dumps (kernel 6.18) for the base tables nft 1.0.6 creates from baseTable().
import { describe, expect, it } from '@jest/globals';
import { kernelTablesMismatch, userdataComment, type KernelDumps } from '../../../runtime/firewall/kernel-inventory.js';
import { schemaId, tableDefinitions } from '../../../runtime/firewall/nft-rules.js';
import { attr, encodeAttrs, type Attr } from '../../../runtime/netlink/codec.js';
import type { DumpedObject } from '../../../runtime/firewall/nfnl.js';

const be32 = (type: number, v: number): Attr => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return attr.bytes(type, b);
};
const obj = (family: number, attrs: Attr[]): DumpedObject => ({ family, attrs: encodeAttrs(attrs) });

// name, flags, key type, key length, data type, data length: as dumped.
type SetRow = [number, string, number, number, number, number?, number?];
const SETS: SetRow[] = [
  [1, 'bridges', 0, 41, 16], [1, 'bridge_pairs', 0, 2665, 32], [1, 'internal_bridges', 0, 41, 16],
  [1, 'subnets4', 4, 7, 4], [1, 'subnets6', 4, 8, 16], [1, 'nat_src4', 4, 7, 4], [1, 'nat_src6', 4, 8, 16],
  [1, 'pub4_any_addr', 8, 781, 8, 7, 4], [1, 'pub4_any_port', 8, 781, 8, 13, 2],
  [1, 'pub4_ip_addr', 8, 29453, 12, 7, 4], [1, 'pub4_ip_port', 8, 29453, 12, 13, 2],
  [1, 'pub6_any_addr', 8, 781, 8, 8, 16], [1, 'pub6_any_port', 8, 781, 8, 13, 2],
  [1, 'pub6_ip_addr', 8, 33549, 24, 8, 16], [1, 'pub6_ip_port', 8, 33549, 24, 13, 2],
  [1, 'underlay_local4', 0, 7, 4], [1, 'underlay_peers4', 0, 7, 4], [1, 'underlay_ports', 0, 13, 2],
  [1, `schema_${schemaId().replace(/-/g, '_')}`, 0, 13, 2], // the schema marker (nft-rules.ts)
  [7, 'guard_ports', 0, 41, 16], [7, 'guard_macs', 0, 2633, 24], [7, 'guard_src4', 0, 168519, 28], [7, 'guard_src6', 0, 168520, 40],
  [7, '__set0', 3, 29, 1], [7, '__set1', 7, 8, 16], // the guard rules' anonymous sets
];
// table bridge tsrun_nd: typeof sets keyed by a raw payload (TYPE_INTEGER, 4), and its rules' anonymous sets
const ND_SETS: SetRow[] = [[7, 'nd_targets', 0, 2628, 32], [7, 'nd_lladdrs', 0, 2628, 24], [7, '__set0', 3, 29, 1], [7, '__set1', 3, 4, 2]];
// name, type, hook, priority (policy accept) or a regular chain
const CHAINS: [number, string, string?, number?, number?][] = [
  [1, 'publish'], [1, 'prerouting_raw', 'filter', 0, -300], [1, 'prerouting', 'nat', 0, -100], [1, 'output', 'nat', 3, -100],
  [1, 'postrouting', 'nat', 4, 100], [1, 'forward', 'filter', 2, 0], [7, 'guard', 'filter', 0, -300],
];

function setObj([family, name, flags, keyType, keyLen, dataType, dataLen]: SetRow, table = 'tsrun'): DumpedObject {
  const a = [attr.str(1, table), attr.str(2, name), be32(4, keyType), be32(5, keyLen)];
  if (flags) a.push(be32(3, flags));
  if (dataType !== undefined) a.push(be32(6, dataType), be32(7, dataLen!));
  return obj(family, a);
}

function chainObj([family, name, type, hook, prio]: (typeof CHAINS)[number], policy = 1, table = 'tsrun'): DumpedObject {
  const a = [attr.str(1, table), attr.str(3, name)];
  if (type !== undefined) a.push(attr.nest(4, [be32(1, hook!), be32(2, prio!)]), be32(5, policy), attr.str(7, type));
  return obj(family, a);
}

function ruleObj(family: number, chain: string, comment: string | undefined, table = 'tsrun'): DumpedObject {
  const a = [attr.str(1, table), attr.str(2, chain)];
  if (comment !== undefined) {
    const text = Buffer.from(`${comment}\0`);
    a.push(attr.bytes(7, Buffer.concat([Buffer.from([0, text.length]), text])));
  }
  return obj(family, a);
}

function intact(): KernelDumps {
  const rules = tableDefinitions().flatMap((t) => t.rules.map((r) => ruleObj(t.family === 'inet' ? 1 : 7, r.chain, r.comment, t.table)));
  return {
    sets: [...SETS.map((s) => setObj(s)), ...ND_SETS.map((s) => setObj(s, 'tsrun_nd'))],
    chains: [...CHAINS.map((c) => chainObj(c)), chainObj([7, 'nd_check'], 1, 'tsrun_nd'), chainObj([7, 'nd', 'filter', 0, -300], 1, 'tsrun_nd')],
    rules,
  };
}

describe('kernelTablesMismatch', () => {
  it('finds the tables nft creates from baseTable() intact', () => {
    expect(kernelTablesMismatch(intact())).toBeUndefined();
    expect(intact().rules).toHaveLength(48);
    expect(tableDefinitions()[0]!.rules[0]!.comment).toContain(schemaId());
  });

  it('ignores tables of other names and families', () => {
    const d = intact();
    d.sets.push(setObj([1, 'other', 0, 7, 4], 'filter'), setObj([2, 'bridges', 0, 7, 4]));
    d.chains.push(chainObj([2, 'forward', 'filter', 2, 0]));
    d.rules.push(ruleObj(2, 'forward', undefined));
    expect(kernelTablesMismatch(d)).toBeUndefined();
  });

  it.each([
    ['a set of another key type', (d: KernelDumps) => (d.sets[16] = setObj([1, 'underlay_peers4', 0, 8, 16])), 'table inet tsrun: its sets differ'],
    ['a set with the interval flag', (d: KernelDumps) => (d.sets[16] = setObj([1, 'underlay_peers4', 4, 7, 4])), 'table inet tsrun: its sets differ'],
    ['a map with another data type', (d: KernelDumps) => (d.sets[8] = setObj([1, 'pub4_any_port', 8, 781, 8, 7, 4])), 'table inet tsrun: its sets differ'],
    ['a set with a timeout flag', (d: KernelDumps) => (d.sets[0] = setObj([1, 'bridges', 0x10, 41, 16])), 'table inet tsrun: its sets differ'],
    ['a set missing', (d: KernelDumps) => d.sets.splice(3, 1), 'table inet tsrun: its sets differ'],
    ['a guard set of another type', (d: KernelDumps) => (d.sets[20] = setObj([7, 'guard_src6', 0, 168519, 28])), 'table bridge tsrun: its sets differ'],
    ['a chain on another hook', (d: KernelDumps) => (d.chains[1] = chainObj([1, 'prerouting_raw', 'filter', 1, -300])), 'table inet tsrun: its chains differ'],
    ['a chain of another priority', (d: KernelDumps) => (d.chains[5] = chainObj([1, 'forward', 'filter', 2, 10])), 'table inet tsrun: its chains differ'],
    ['a chain with policy drop', (d: KernelDumps) => (d.chains[5] = chainObj([1, 'forward', 'filter', 2, 0], 0)), 'table inet tsrun: its chains differ'],
    ['a rule without its comment', (d: KernelDumps) => (d.rules[3] = ruleObj(1, 'publish', undefined)), 'table inet tsrun: its rules differ'],
    ['two rules swapped', (d: KernelDumps) => ([d.rules[14], d.rules[15]] = [d.rules[15]!, d.rules[14]!]), 'table inet tsrun: its rules differ'],
    ['a rule in another chain', (d: KernelDumps) => d.rules.push(ruleObj(1, 'output', 'x')), 'table inet tsrun: its rules differ'],
    ['an older schema', (d: KernelDumps) => (d.rules[0] = ruleObj(1, 'publish', tableDefinitions()[0]!.rules[0]!.comment.replace(schemaId(), 'v1-0000000000'))), 'table inet tsrun: its rules differ'],
    ['a guard rule missing', (d: KernelDumps) => d.rules.splice(d.rules.findIndex((r, i) => r.family === 7 && d.rules[i + 1]?.family === 7), 1), 'table bridge tsrun: its rules differ'],
    ['a neighbour-discovery rule missing', (d: KernelDumps) => d.rules.pop(), 'table bridge tsrun_nd: its rules differ'],
    ['a neighbour-discovery set of another type', (d: KernelDumps) => (d.sets[d.sets.length - 4] = setObj([7, 'nd_targets', 0, 168520, 40], 'tsrun_nd')), 'table bridge tsrun_nd: its sets differ'],
    ['the neighbour-discovery table missing', (d: KernelDumps) => {
      d.sets = d.sets.slice(0, -4);
      d.chains = d.chains.slice(0, -2);
      d.rules = d.rules.slice(0, -9);
    }, 'table bridge tsrun_nd is missing'],
    ['the guard table missing', (d: KernelDumps) => {
      d.sets = d.sets.filter((s) => s.family !== 7);
      d.chains = d.chains.filter((s) => s.family !== 7);
      d.rules = d.rules.filter((s) => s.family !== 7);
    }, 'table bridge tsrun is missing'],
    ['everything missing', (d: KernelDumps) => {
      d.sets = [];
      d.chains = [];
      d.rules = [];
    }, 'table inet tsrun is missing'],
  ])('finds %s', (_what, damage, why) => {
    const d = intact();
    damage(d);
    expect(kernelTablesMismatch(d)).toBe(why);
  });
});

describe('userdataComment', () => {
  const tlv = (type: number, value: Buffer) => Buffer.concat([Buffer.from([type, value.length]), value]);
  it('reads the comment TLV, ASCII or not, up to its NUL', () => {
    expect(userdataComment(Buffer.concat([tlv(1, Buffer.from([9, 9])), tlv(0, Buffer.from('allow dns (tsrun v1)\0'))]))).toBe('allow dns (tsrun v1)');
    expect(userdataComment(tlv(0, Buffer.from('caf\u00e9 \u2713\0', 'utf8')))).toBe('caf\u00e9 \u2713');
    expect(userdataComment(tlv(1, Buffer.from('x')))).toBeUndefined();
    expect(userdataComment(Buffer.from([0, 9, 65]))).toBeUndefined(); // runs past the end
  });
});
