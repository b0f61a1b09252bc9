// What the firewall's fingerprint reads of tsrun's tables (nft-rules.ts baseMatches, guardMatches:
// the sets' and chains' declarations and the rules' comments, chain by chain), gathered without
// reading a single set element.
//
// Why: a terse `list table` through libnftables (1.0.6) fills its whole cache first, set elements
// included, and prints none of them, so the self-check every detach runs (NftFirewall.intact) grew
// with the containers on the host: 1.7 ms with one, 4.2 ms with 200 (the sets hold a few elements
// per container). Here the declarations come from `list sets`, `list maps` and `list chains`
// (libnftables answers those without elements, in constant time) and the rules from one NFT_MSG_GETRULE dump
// per table over netlink, which carries each rule's chain and its comment (userdata).
// (`list sets` shows no maps: `list maps` does.)
import { NLM_F_REQUEST, attr, attrString, encodeAttrs, parseAttrs } from '../netlink/codec.js';
import { SyncNlSocket } from '../netlink/sync-socket.js';
import { withNetnsSync } from '../netns/netns.js';
import { NETLINK_NETFILTER, libcSys, type Sys } from '../netns/sys.js';
import { NFPROTO, NFTA_RULE, NFT_MSG_GETRULE, userdataComment } from './kernel-inventory.js';
import { nftType } from './nfnl.js';
import { runLibnft } from './libnft.js';
import { FAMILY, GUARD_FAMILY, ND_TABLE, TABLE, type NftJson, type NftListing } from './nft-rules.js';

// include/uapi/linux/netfilter/nf_tables.h
const NFT_MSG_NEWRULE = 6;

/**
 * The rules of table `family` `table` as listing objects ({"rule": {family, table, chain,
 * comment}}), in the kernel's order: what a terse `nft -j list table` shows of them that the
 * fingerprint reads. None when the table does not exist. `netns`: read in that namespace.
 */
export function dumpRules(family: string, table: string, opts: { netns?: string | undefined; sys?: Sys } = {}): Record<'rule', Record<string, NftJson>>[] {
  const sys = opts.sys ?? libcSys;
  const open = () => new SyncNlSocket(sys, NETLINK_NETFILTER);
  const sock = opts.netns === undefined ? open() : withNetnsSync(opts.netns, open, sys);
  try {
    // nfgenmsg: the family, NFNETLINK_V0, resource id 0; the table as the dump's filter.
    const proto = NFPROTO[family];
    if (proto === undefined) throw new Error(`no nfproto for family ${family}`);
    const head = Buffer.from([proto, 0, 0, 0]);
    const body = Buffer.concat([head, encodeAttrs([attr.str(NFTA_RULE.TABLE, table)])]);
    const out: Record<'rule', Record<string, NftJson>>[] = [];
    for (const m of sock.dumpSync(nftType(NFT_MSG_GETRULE), NLM_F_REQUEST, body)) {
      if (m.type !== nftType(NFT_MSG_NEWRULE) || m.data.length < 4 || m.data[0] !== proto) continue;
      const a = parseAttrs(m.data.subarray(4));
      if (attrString(a.get(NFTA_RULE.TABLE)) !== table) continue;
      const comment = ruleComment(a.get(NFTA_RULE.USERDATA));
      out.push({ rule: { family, table, chain: attrString(a.get(NFTA_RULE.CHAIN)) ?? '', ...(comment !== undefined ? { comment } : {}) } });
    }
    return out;
  } finally {
    sock.close();
  }
}

/** The comment TLV of a rule's userdata (NUL-terminated), if it has one. */
export function ruleComment(udata: Buffer | undefined): string | undefined {
  return udata ? userdataComment(udata) : undefined;
}

/**
 * A listing holding what the fingerprint compares (sets and chains of every table, the rules of
 * tsrun's inet and bridge tables), or undefined when it could not be gathered this way (the caller
 * then lists the tables as before).
 */
export function baseListing(opts: { netns?: string | undefined } = {}): NftListing | undefined {
  try {
    const lists = ['list sets', 'list maps', 'list chains'].map((cmd) => runLibnft(cmd, { netns: opts.netns, terse: true }));
    if (lists.some((r) => !r.ok)) return undefined;
    const objects = lists.flatMap((r) => (JSON.parse(r.out) as NftListing).nftables ?? []);
    return { nftables: [...objects, ...dumpRules(FAMILY, TABLE, opts), ...dumpRules(GUARD_FAMILY, TABLE, opts), ...dumpRules(GUARD_FAMILY, ND_TABLE, opts)] };
  } catch {
    return undefined;
  }
}
