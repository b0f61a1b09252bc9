// The firewall self-check (FirewallBackend.intact) over netlink: tsrun's two tables as the kernel
// holds them, read with three dumps (sets, chains, rules) and compared with this version's
// definition (nft-rules.ts tableDefinitions). The same questions baseMatches and guardMatches
// ask of a libnftables listing: exactly these sets with these types, these chains on these
// hooks, these rules (by their comments, which carry the schema id) in this order. Reading the
// listing cost ~2 ms through libnftables (its cache fill, twice) on every detach, and loading the
// library in a process that needed nothing else of it; the dumps cost ~0.3 ms.
import { tableDefinitions, type TableDefinition } from './nft-rules.js';
import type { DumpedObject } from './nfnl.js';
import { u16le } from '../netlink/codec.js';

// include/uapi/linux/netfilter/nf_tables.h
export const NFT_MSG_GETCHAIN = 4;
export const NFT_MSG_GETRULE = 7;
export const NFT_MSG_GETSET = 10;
const NFTA_SET = { TABLE: 1, NAME: 2, FLAGS: 3, KEY_TYPE: 4, KEY_LEN: 5, DATA_TYPE: 6, DATA_LEN: 7 } as const;
const NFTA_CHAIN = { TABLE: 1, NAME: 3, HOOK: 4, POLICY: 5, TYPE: 7 } as const;
const NFTA_HOOK = { HOOKNUM: 1, PRIORITY: 2 } as const;
export const NFTA_RULE = { TABLE: 1, CHAIN: 2, USERDATA: 7 } as const;
const NFT_SET_ANONYMOUS = 0x1;
/** The set flags a definition decides (constant, interval, map, timeout, eval, object); the rest
 * (concat, expr) follow from the types. */
const SET_FLAGS_CHECKED = 0x7e;
const NFT_SET_INTERVAL = 0x4;
const NFT_SET_MAP = 0x8;
export const NFPROTO: Record<string, number> = { inet: 1, bridge: 7 };
const HOOKS: Record<string, number> = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 };
const NF_ACCEPT = 1;
/** libnftnl's rule userdata: a TLV whose type 0 is the comment. */
const NFTNL_UDATA_RULE_COMMENT = 0;

/** nft's datatypes as the kernel stores them: the id nft gives it, and its length in bytes. */
const DATATYPES: Record<string, { id: number; len: number }> = {
  ipv4_addr: { id: 7, len: 4 },
  ipv6_addr: { id: 8, len: 16 },
  ether_addr: { id: 9, len: 6 },
  inet_proto: { id: 12, len: 1 },
  inet_service: { id: 13, len: 2 },
  ifname: { id: 41, len: 16 },
  // A raw payload's integer (TYPE_INTEGER) in table bridge tsrun_nd's typeof keys.
  raw128: { id: 4, len: 16 },
  raw48: { id: 4, len: 6 },
};
/** nft composes a concatenation's type id from its fields', 6 bits each. */
const TYPE_BITS = 6;

/** Type id and length of a key or data type; a concatenation's fields take 32-bit registers. */
function typeOf(t: string | readonly string[]): { id: number; len: number } {
  if (typeof t === 'string') {
    const d = DATATYPES[t];
    if (!d) throw new Error(`no kernel datatype known for ${t}`);
    return d;
  }
  let id = 0;
  let len = 0;
  for (const f of t) {
    const d = typeOf(f);
    id = (id << TYPE_BITS) | d.id;
    len += (d.len + 3) & ~3;
  }
  return { id, len };
}

/** The dumps a check needs. */
export interface KernelDumps {
  sets: DumpedObject[];
  chains: DumpedObject[];
  rules: DumpedObject[];
}

// Attributes are read in place by offset: a Buffer view per attribute (parseAttrs) made the
// comparison cost more than the dumps in a cold process. And byte by byte: Buffer's
// readUInt16LE and toString are JavaScript functions of Node's that a cold process runs in the
// interpreter, with their argument checks, thousands of times here (the check's comparison cost a
// poststop ~2 ms, most of it those calls; indexed reads are the interpreter's own).

/** Where the payload of the first top-level attribute `type` in buf[from, to) starts, or -1. */
function find(buf: Buffer, type: number, from = 0, to = buf.length): number {
  for (let off = from; off + 4 <= to; ) {
    const len = u16le(buf, off);
    if (len < 4) return -1;
    if ((u16le(buf, off + 2) & 0x3fff) === type) return off + 4;
    off += (len + 3) & ~3;
  }
  return -1;
}
const lenAt = (buf: Buffer, payload: number): number => u16le(buf, payload - 4) - 4;

/** buf[from, to) as UTF-8 text; ASCII (every name and comment tsrun writes) without a call
 * into Buffer's decoder. */
function text(buf: Buffer, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) {
    const c = buf[i]!;
    if (c >= 0x80) return buf.toString('utf8', from, to);
    s += String.fromCharCode(c);
  }
  return s;
}

/** A NUL-terminated string attribute (undefined when absent). */
function str(buf: Buffer, type: number): string | undefined {
  const at = find(buf, type);
  if (at < 0) return undefined;
  let end = at;
  const stop = at + lenAt(buf, at);
  while (end < stop && buf[end] !== 0) end++;
  return text(buf, at, end);
}

function u32(buf: Buffer, type: number, from?: number, to?: number): number | undefined {
  const at = find(buf, type, from, to);
  return at >= 0 && lenAt(buf, at) >= 4 ? ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0 : undefined;
}

/** The comment in a rule's userdata TLVs ('' without one, as a listing shows no comment). */
function ruleComment(buf: Buffer, type: number): string {
  const at = find(buf, type);
  return at < 0 ? '' : (userdataComment(buf, at, at + lenAt(buf, at)) ?? '');
}

/**
 * The comment of libnftnl's rule userdata in buf[from, to): TLVs of (type u8, length u8, value),
 * the comment being type 0, NUL-terminated. Undefined without one, or when a TLV runs past the end.
 */
export function userdataComment(buf: Buffer, from = 0, to = buf.length): string | undefined {
  for (let off = from; off + 2 <= to; off += 2 + buf[off + 1]!) {
    const stop = off + 2 + buf[off + 1]!;
    if (stop > to) return undefined;
    if (buf[off] !== NFTNL_UDATA_RULE_COMMENT) continue;
    let end = off + 2;
    while (end < stop && buf[end] !== 0) end++;
    return text(buf, off + 2, end);
  }
  return undefined;
}

interface Shapes {
  sets: string[];
  chains: string[];
  rules: Record<string, string[]>;
}

const expectedCache = new Map<string, Shapes>();

function expected(def: TableDefinition): Shapes {
  const cached = expectedCache.get(`${def.family} ${def.table}`);
  if (cached) return cached;
  const shapes = expectedOf(def);
  expectedCache.set(`${def.family} ${def.table}`, shapes);
  return shapes;
}

function expectedOf(def: TableDefinition): Shapes {
  const sets = def.sets.map((s) => {
    const key = typeOf(s.type);
    const data = s.map ? typeOf(s.map) : undefined;
    const flags = (s.interval ? NFT_SET_INTERVAL : 0) | (s.map ? NFT_SET_MAP : 0);
    return JSON.stringify([s.name, key.id, key.len, flags, data?.id ?? null, data?.len ?? null]);
  });
  const chains = def.chains.map((c) => JSON.stringify([c.name, c.base?.type ?? null, c.base ? HOOKS[c.base.hook] : null, c.base?.prio ?? null, c.base ? NF_ACCEPT : null]));
  const rules: Record<string, string[]> = Object.fromEntries(def.chains.map((c) => [c.name, []]));
  for (const r of def.rules) rules[r.chain]!.push(r.comment);
  return { sets: sets.sort(), chains: chains.sort(), rules };
}

function found(dumps: KernelDumps, family: number, table: string): Shapes {
  const mine = (o: DumpedObject, tableAttr: number) => o.family === family && str(o.attrs, tableAttr) === table;
  const sets: string[] = [];
  for (const o of dumps.sets) {
    if (!mine(o, NFTA_SET.TABLE)) continue;
    const a = o.attrs;
    const flags = u32(a, NFTA_SET.FLAGS) ?? 0;
    if (flags & NFT_SET_ANONYMOUS) continue; // a rule's inline set: not listed, checked with its rule
    sets.push(JSON.stringify([str(a, NFTA_SET.NAME), u32(a, NFTA_SET.KEY_TYPE) ?? null, u32(a, NFTA_SET.KEY_LEN) ?? null, flags & SET_FLAGS_CHECKED, u32(a, NFTA_SET.DATA_TYPE) ?? null, u32(a, NFTA_SET.DATA_LEN) ?? null]));
  }
  const chains: string[] = [];
  const rules: Record<string, string[]> = {};
  for (const o of dumps.chains) {
    if (!mine(o, NFTA_CHAIN.TABLE)) continue;
    const a = o.attrs;
    const name = str(a, NFTA_CHAIN.NAME) ?? '';
    const hook = find(a, NFTA_CHAIN.HOOK);
    const hookEnd = hook < 0 ? -1 : hook + lenAt(a, hook);
    const hookNum = hook < 0 ? null : u32(a, NFTA_HOOK.HOOKNUM, hook, hookEnd) ?? null;
    const prioAt = hook < 0 ? -1 : find(a, NFTA_HOOK.PRIORITY, hook, hookEnd);
    const prio = prioAt < 0 ? null : a.readInt32BE(prioAt);
    chains.push(JSON.stringify([name, str(a, NFTA_CHAIN.TYPE) ?? null, hookNum, prio, u32(a, NFTA_CHAIN.POLICY) ?? null]));
    rules[name] ??= [];
  }
  for (const o of dumps.rules) {
    if (!mine(o, NFTA_RULE.TABLE)) continue;
    (rules[str(o.attrs, NFTA_RULE.CHAIN) ?? ''] ??= []).push(ruleComment(o.attrs, NFTA_RULE.USERDATA));
  }
  return { sets: sets.sort(), chains: chains.sort(), rules };
}

/** Why the kernel's tables differ from this version's (undefined: both intact). */
export function kernelTablesMismatch(dumps: KernelDumps): string | undefined {
  for (const def of tableDefinitions()) {
    const want = expected(def);
    const have = found(dumps, NFPROTO[def.family]!, def.table);
    if (have.chains.length === 0 && have.sets.length === 0) return `table ${def.family} ${def.table} is missing`;
    if (JSON.stringify(have.sets) !== JSON.stringify(want.sets)) return `table ${def.family} ${def.table}: its sets differ`;
    if (JSON.stringify(have.chains) !== JSON.stringify(want.chains)) return `table ${def.family} ${def.table}: its chains differ`;
    const chains = Object.keys(want.rules);
    if (Object.keys(have.rules).length !== chains.length || chains.some((c) => JSON.stringify(have.rules[c] ?? null) !== JSON.stringify(want.rules[c]))) return `table ${def.family} ${def.table}: its rules differ`;
  }
  return undefined;
}
