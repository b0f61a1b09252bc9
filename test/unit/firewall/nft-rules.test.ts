import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { UserError } from '../../../config/errors.js';
import { hostVethName } from '../../../runtime/drivers/linux-bridge.js';
import { vxlanName } from '../../../runtime/overlay/keys.js';
import {
  GUARDED_PORT_PREFIX,
  VXLAN_PORT_PREFIX,
  GUARD_RULE_COUNT,
  RULE_COUNT,
  schemaDefinition,
  schemaId,
  addEndpointBatch,
  addNetworkBatch,
  baseMatches,
  baseTable,
  canon,
  conflictingElements,
  countRulesIn,
  deleteEndpointBatch,
  deleteNetworkBatch,
  endpointElements,
  listElements,
  networkElements,
  normalizeEndpoint,
  normalizeNetwork,
  ownerComment,
  ownedElements,
  replaceBaseBatch,
  restoreBatch,
  underlayBatch,
  guardMatches,
  guardElements,
  removeGuardBatch,
  addElements,
  ndElementsOf,
  ndMatches,
  ndTableText,
  tableDefinitions,
  type NftJson,
  type NftListing,
} from '../../../runtime/firewall/nft-rules.js';
import type { FirewallEndpoint, FirewallNetwork } from '../../../runtime/firewall/types.js';
import { expectGolden } from './golden.js';

const web: FirewallNetwork = { name: 'web', bridge: 'tsrun0', subnets4: ['10.88.0.0/16'], subnets6: ['fd00:88::/64'], internal: false, icc: true };
const db: FirewallNetwork = { name: 'db', bridge: 'tsrun1', subnets4: ['10.89.3.7/24'], subnets6: [], internal: true, icc: false };

const ep: FirewallEndpoint = {
  containerId: 'c0ffee',
  ipv4: '10.88.0.2',
  ipv6: 'fd00:88:0:0::2',
  ports: [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' }, // every local address, v4 and v6
    { hostPort: 5353, containerPort: 53, protocol: 'udp' },
    { hostIp: '127.0.0.1', hostPort: 9090, containerPort: 9090, protocol: 'tcp' }, // one host address v4
    { hostIp: '2001:db8::10', hostPort: 9090, containerPort: 90, protocol: 'udp' }, // one host address v6
    { hostIp: '0.0.0.0', hostPort: 4443, containerPort: 443, protocol: 'tcp' }, // v4 only, any address
  ],
};

/** What `nft -j list table inet tsrun` would print right after baseTable() (minus handles). */
function listingOf(commands: { [verb: string]: Record<string, NftJson> }[]): NftListing {
  const nftables: Record<string, NftJson>[] = [{ metainfo: { version: '1.0.6' } }];
  for (const cmd of commands) {
    for (const [verb, body] of Object.entries(cmd)) {
      if (verb !== 'add' && verb !== 'create') continue;
      for (const [kind, obj] of Object.entries(body)) {
        if (kind === 'element') continue;
        const o = { ...(obj as Record<string, NftJson>) };
        if (kind === 'set' || kind === 'map' || kind === 'chain') o.table = 'tsrun';
        nftables.push({ [kind]: o });
      }
    }
  }
  return { nftables };
}

describe('baseTable', () => {
  it('matches the golden file', () => {
    expectGolden('base-table', baseTable());
  });

  it('starts with `create table`, so re-applying it fails whole instead of duplicating rules', () => {
    const cmds = baseTable().nftables;
    expect(cmds[0]).toEqual({ create: { table: { family: 'inet', name: 'tsrun' } } });
    const creates = cmds.filter((c) => Object.keys(c)[0] === 'create');
    expect(creates).toEqual([{ create: { table: { family: 'inet', name: 'tsrun' } } }, { create: { table: { family: 'bridge', name: 'tsrun' } } }]);
    expect(cmds.every((c) => ['add', 'create'].includes(Object.keys(c)[0]!))).toBe(true);
    expect(cmds.some((c) => 'delete' in c || 'flush' in c)).toBe(false);
  });

  it('guards every container veth name (tsv + hex) and exempts only the overlay\'s VXLAN port', () => {
    const veth = hostVethName('c0ffee', 'net1');
    expect(veth.startsWith(GUARDED_PORT_PREFIX)).toBe(true);
    expect(veth.startsWith(VXLAN_PORT_PREFIX)).toBe(false);
    expect(vxlanName(42).startsWith(VXLAN_PORT_PREFIX)).toBe(true);
  });

  it('has a fixed number of rules, each tagged with the schema id in a comment nft accepts', () => {
    const rules = baseTable().nftables.filter((c) => c.add && 'rule' in c.add).map((c) => c.add!.rule as Record<string, NftJson>);
    expect(rules).toHaveLength(RULE_COUNT + GUARD_RULE_COUNT);
    expect(RULE_COUNT).toBe(29);
    expect(GUARD_RULE_COUNT).toBe(10);
    for (const r of rules) {
      expect(String(r.comment)).toContain(`tsrun ${schemaId()}`);
      expect(Buffer.byteLength(String(r.comment))).toBeLessThanOrEqual(128);
    }
    expect(schemaId()).toMatch(/^v1-[0-9a-f]{10}$/);
  });

  it('names its schema by the SHA-256 of the definitions (written in nft-rules.ts: update SCHEMA_ID there when this fails)', () => {
    expect(schemaId()).toBe(`v1-${createHash('sha256').update(schemaDefinition()).digest('hex').slice(0, 10)}`);
  });

  it('touches nothing outside tsrun\'s two tables (inet tsrun, and bridge tsrun for the port guard)', () => {
    const seen = JSON.stringify(baseTable());
    for (const m of seen.matchAll(/"table":\s*("[^"]*"|\{[^}]*\})/g)) expect(m[1]).toMatch(/tsrun/);
    expect(seen).not.toMatch(/"family":\s*"(ip|ip6|arp|netdev)"\s*,\s*"(table|name)"/);
  });
});

describe('baseMatches', () => {
  const good = listingOf(baseTable().nftables);

  it('accepts the table as created', () => {
    expect(baseMatches(good)).toBe(true);
    expect(countRulesIn(good)).toBe(RULE_COUNT);
  });

  it('rejects a table with a rule missing, a rule from another schema, or a changed set', () => {
    const missing = { nftables: good.nftables.filter((o, i) => !('rule' in o && i === good.nftables.findIndex((x) => 'rule' in x))) };
    expect(baseMatches(missing)).toBe(false);
    const old = { nftables: good.nftables.map((o) => ('rule' in o ? { rule: { ...(o.rule as object), comment: 'b: something (tsrun v0-0000000000)' } } : o)) };
    expect(baseMatches(old)).toBe(false);
    const changed = { nftables: good.nftables.map((o) => ('set' in o && (o.set as { name: string }).name === 'bridges' ? { set: { ...(o.set as object), type: 'ipv4_addr' } } : o)) };
    expect(baseMatches(changed)).toBe(false);
    const extraChain = { nftables: [...good.nftables, { chain: { family: 'inet', table: 'tsrun', name: 'mine' } }] };
    expect(baseMatches(extraChain)).toBe(false);
  });

  it('ignores objects of other tables in a listing', () => {
    const other = { nftables: [...good.nftables, { rule: { family: 'ip', table: 'filter', chain: 'forward', expr: [] } }] };
    expect(baseMatches(other)).toBe(true);
  });
});

describe('replaceBaseBatch', () => {
  it('deletes and recreates the table in one batch and carries the elements of unchanged sets', () => {
    const listing: NftListing = {
      nftables: [
        { set: { family: 'inet', table: 'tsrun', name: 'bridges', type: 'ifname', elem: [{ elem: { val: 'tsrun0', comment: 'net:web' } }, 'tsrun9'] } },
        { set: { family: 'inet', table: 'tsrun', name: 'gone_in_this_version', type: 'ifname', elem: ['x'] } },
        { set: { family: 'inet', table: 'tsrun', name: 'nat_src4', type: 'ipv4_addr', flags: ['interval'], elem: [{ elem: { val: { prefix: { addr: '10.88.0.0', len: 16 } }, comment: 'net:web' } }] } },
        { map: { family: 'inet', table: 'tsrun', name: 'pub4_any_addr', type: ['inet_proto', 'inet_service'], map: 'ipv4_addr', elem: [[{ elem: { val: { concat: ['tcp', 8080] }, comment: 'ctr:a' } }, '10.88.0.2']] } },
        { map: { family: 'inet', table: 'tsrun', name: 'pub4_any_port', type: ['inet_proto', 'inet_service'], map: 'ipv4_addr', elem: [[{ concat: ['tcp', 8080] }, '10.88.0.9']] } },
      ],
    };
    const cmds = replaceBaseBatch(listing).nftables;
    expect(cmds.slice(0, 5)).toEqual([
      { add: { table: { family: 'inet', name: 'tsrun' } } },
      { delete: { table: { family: 'inet', name: 'tsrun' } } },
      { add: { table: { family: 'bridge', name: 'tsrun' } } },
      { delete: { table: { family: 'bridge', name: 'tsrun' } } },
      { create: { table: { family: 'inet', name: 'tsrun' } } },
    ]);
    const adds = cmds.filter((c) => c.add && 'element' in c.add).map((c) => c.add!.element as Record<string, NftJson>).filter((e) => !String(e.name).startsWith('schema_'));
    // pub4_any_port changed its data type, gone_in_this_version is gone: neither is carried.
    expect(adds).toEqual([
      { family: 'inet', table: 'tsrun', name: 'bridges', elem: [{ elem: { val: 'tsrun0', comment: 'net:web' } }, 'tsrun9'] },
      { family: 'inet', table: 'tsrun', name: 'nat_src4', elem: [{ elem: { val: { prefix: { addr: '10.88.0.0', len: 16 } }, comment: 'net:web' } }] },
      { family: 'inet', table: 'tsrun', name: 'pub4_any_addr', elem: [[{ elem: { val: { concat: ['tcp', 8080] }, comment: 'ctr:a' } }, '10.88.0.2']] },
    ]);
  });
});

describe('network elements', () => {
  it('match the golden files (add, delete, internal)', () => {
    expectGolden('network-add', addNetworkBatch(web));
    expectGolden('network-delete', deleteNetworkBatch(web));
    expectGolden('network-internal-add', addNetworkBatch(db));
  });

  it('put a non-internal network in the bridge, pair, subnet and masquerade sets', () => {
    expect(networkElements(web).map((e) => e.set)).toEqual(['bridges', 'bridge_pairs', 'subnets4', 'nat_src4', 'subnets6', 'nat_src6']);
  });

  it('keep an internal network out of the masquerade sets and in internal_bridges', () => {
    const els = networkElements(db);
    expect(els.map((e) => e.set)).toEqual(['bridges', 'internal_bridges', 'subnets4']); // icc=false: no same-bridge pair
    expect(els.find((e) => e.set === 'subnets4')!.key).toEqual({ prefix: { addr: '10.89.3.0', len: 24 } });
    expect(els.every((e) => e.comment === 'net:db')).toBe(true);
  });

  it('write a full-length prefix as a plain address', () => {
    const els = networkElements({ ...web, subnets4: ['192.0.2.7/32'], subnets6: ['2001:db8::1/128'] });
    expect(els.filter((e) => e.set.startsWith('subnets')).map((e) => e.key)).toEqual(['192.0.2.7', '2001:db8::1']);
  });

  it('delete by key, one command per set', () => {
    const cmds = deleteNetworkBatch(web).nftables;
    expect(cmds.map((c) => Object.keys(c)[0])).toEqual(Array(6).fill('delete'));
    expect(cmds[0]).toEqual({ delete: { element: { family: 'inet', table: 'tsrun', name: 'bridges', elem: ['tsrun0'] } } });
  });
});

describe('endpoint elements', () => {
  it('match the golden files (add and delete)', () => {
    expectGolden('endpoint-add', addEndpointBatch(ep));
    expectGolden('endpoint-delete', deleteEndpointBatch(ep));
  });

  it('map every published port to the container address and port, per family', () => {
    const els = endpointElements(ep).map((e) => [e.set, e.key, e.value]);
    expect(els).toEqual([
      ['pub4_any_addr', { concat: ['tcp', 8080] }, '10.88.0.2'],
      ['pub4_any_port', { concat: ['tcp', 8080] }, 80],
      ['pub6_any_addr', { concat: ['tcp', 8080] }, 'fd00:88::2'],
      ['pub6_any_port', { concat: ['tcp', 8080] }, 80],
      ['pub4_any_addr', { concat: ['udp', 5353] }, '10.88.0.2'],
      ['pub4_any_port', { concat: ['udp', 5353] }, 53],
      ['pub6_any_addr', { concat: ['udp', 5353] }, 'fd00:88::2'],
      ['pub6_any_port', { concat: ['udp', 5353] }, 53],
      ['pub4_ip_addr', { concat: ['127.0.0.1', 'tcp', 9090] }, '10.88.0.2'],
      ['pub4_ip_port', { concat: ['127.0.0.1', 'tcp', 9090] }, 9090],
      ['pub6_ip_addr', { concat: ['2001:db8::10', 'udp', 9090] }, 'fd00:88::2'],
      ['pub6_ip_port', { concat: ['2001:db8::10', 'udp', 9090] }, 90],
      ['pub4_any_addr', { concat: ['tcp', 4443] }, '10.88.0.2'],
      ['pub4_any_port', { concat: ['tcp', 4443] }, 443],
    ]);
  });

  it('publish only the families the container has', () => {
    const v4only = endpointElements({ containerId: 'a', ipv4: '10.88.0.3', ports: [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }] });
    expect(v4only.map((e) => e.set)).toEqual(['pub4_any_addr', 'pub4_any_port']);
    const v6any = endpointElements({ containerId: 'a', ipv4: '10.88.0.3', ipv6: 'fd00::3', ports: [{ hostIp: '::', hostPort: 80, containerPort: 80, protocol: 'tcp' }] });
    expect(v6any.map((e) => e.set)).toEqual(['pub6_any_addr', 'pub6_any_port']);
  });

  it('have no elements without ports', () => {
    expect(endpointElements({ containerId: 'a', ipv4: '10.88.0.3', ports: [] })).toEqual([]);
    expect(addEndpointBatch({ containerId: 'a', ipv4: '10.88.0.3', ports: [] }).nftables).toEqual([]);
    expect(deleteEndpointBatch({ containerId: 'a', ipv4: '10.88.0.3', ports: [] }).nftables).toEqual([]);
  });

  it('tag every element with the container', () => {
    expect(new Set(endpointElements(ep).map((e) => e.comment))).toEqual(new Set(['ctr:c0ffee']));
  });
});

describe('validation', () => {
  const badNetworks: [string, Partial<FirewallNetwork>, RegExp][] = [
    ['bad name', { name: '-web' }, /invalid network name/],
    ['long bridge', { bridge: 'a-very-long-bridge-name' }, /invalid bridge name of network web/],
    ['bridge with @', { bridge: '@bridges' }, /invalid bridge name/],
    ['not a CIDR', { subnets4: ['10.88.0.0'] }, /subnets4\[0\]: "10.88.0.0" is not an IPv4 CIDR/],
    ['v6 in subnets4', { subnets4: ['fd00::/64'] }, /subnets4\[0\].*not an IPv4 CIDR/],
    ['v4 in subnets6', { subnets6: ['10.0.0.0/8'] }, /subnets6\[0\].*not an IPv6 CIDR/],
    ['the whole internet', { subnets4: ['0.0.0.0/0'] }, /covers every address/],
    ['duplicate subnet', { subnets4: ['10.88.0.0/16', '10.88.1.0/16'] }, /lists 10.88.0.0\/16 twice/],
    ['not a list', { subnets6: 'fd00::/64' as unknown as string[] }, /subnets6 must be a list/],
    ['internal not boolean', { internal: 'no' as unknown as boolean }, /internal must be true or false/],
  ];
  it.each(badNetworks)('refuses a network with %s', (_what, patch, message) => {
    expect(() => networkElements({ ...web, ...patch })).toThrow(UserError);
    expect(() => networkElements({ ...web, ...patch })).toThrow(message);
  });

  const badEndpoints: [string, Partial<FirewallEndpoint>, RegExp][] = [
    ['bad id', { containerId: '../x' }, /invalid container id/],
    ['v6 in ipv4', { ipv4: 'fd00::2' }, /ipv4: "fd00::2" is not an IPv4 address/],
    ['prefix in ipv4', { ipv4: '10.88.0.2/16' }, /ipv4: "10.88.0.2\/16" is not an IP address/],
    ['port 0', { ports: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] }, /ports\[0\].hostPort: must be an integer 1-65535, got 0/],
    ['port 65536', { ports: [{ hostPort: 80, containerPort: 65536, protocol: 'tcp' }] }, /ports\[0\].containerPort: must be an integer/],
    ['fractional port', { ports: [{ hostPort: 80.5, containerPort: 80, protocol: 'tcp' }] }, /hostPort: must be an integer/],
    ['sctp', { ports: [{ hostPort: 80, containerPort: 80, protocol: 'sctp' as 'tcp' }] }, /protocol: must be tcp or udp, got "sctp"/],
    ['bad host ip', { ports: [{ hostIp: 'localhost', hostPort: 80, containerPort: 80, protocol: 'tcp' }] }, /hostIp: "localhost" is not an IP address/],
    ['zoned host ip', { ports: [{ hostIp: 'fe80::1%eth0', hostPort: 80, containerPort: 80, protocol: 'tcp' }] }, /not an IP address/],
    [
      'a v6 host ip for a v4-only container',
      { ipv6: undefined, ports: [{ hostIp: '::1', hostPort: 80, containerPort: 80, protocol: 'tcp' }] },
      /hostIp: ::1 is IPv6 but the container has no IPv6 address/,
    ],
    ['no addresses', { ipv4: undefined, ipv6: undefined }, /the container has no IPv4 or IPv6 address/],
    [
      'the same host port twice',
      { ports: [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }, { hostPort: 80, containerPort: 81, protocol: 'tcp' }] },
      /ports\[1\]: host port 80\/tcp is already published by ports\[0\]/,
    ],
    [
      'the same host port twice, once as 0.0.0.0',
      { ports: [{ hostPort: 80, containerPort: 80, protocol: 'tcp' }, { hostIp: '0.0.0.0', hostPort: 80, containerPort: 81, protocol: 'tcp' }] },
      /host port 80\/tcp is already published/,
    ],
  ];
  it.each(badEndpoints)('refuses an endpoint with %s', (_what, patch, message) => {
    expect(() => endpointElements({ ...ep, ...patch })).toThrow(UserError);
    expect(() => endpointElements({ ...ep, ...patch })).toThrow(message);
  });

  it('accepts the same port on two protocols or two host addresses', () => {
    expect(() =>
      normalizeEndpoint({
        containerId: 'a',
        ipv4: '10.0.0.2',
        ports: [
          { hostPort: 53, containerPort: 53, protocol: 'tcp' },
          { hostPort: 53, containerPort: 53, protocol: 'udp' },
          { hostIp: '127.0.0.1', hostPort: 54, containerPort: 53, protocol: 'udp' },
          { hostIp: '127.0.0.2', hostPort: 54, containerPort: 53, protocol: 'udp' },
        ],
      }),
    ).not.toThrow();
  });

  it('normalizes addresses and masks host bits', () => {
    expect(normalizeNetwork({ ...web, subnets4: ['10.88.7.1/16'], subnets6: ['FD00:88:0:0:0:0:0:1/64'] })).toMatchObject({ subnets4: ['10.88.0.0/16'], subnets6: ['fd00:88::/64'] });
    expect(normalizeEndpoint({ ...ep, ipv6: 'FD00:88::0:2', ports: [{ hostIp: '', hostPort: 1, containerPort: 1, protocol: 'tcp' }] })).toMatchObject({
      ipv6: 'fd00:88::2',
      ports: [{ hostPort: 1, containerPort: 1, protocol: 'tcp' }],
    });
    // One canonical form (config/address.ts): an IPv4-mapped host address is its IPv4 address.
    expect(normalizeEndpoint({ ...ep, ports: [{ hostIp: '::ffff:127.0.0.1', hostPort: 1, containerPort: 1, protocol: 'tcp' }] }).ports[0]?.hostIp).toBe('127.0.0.1');
  });
});

describe('owners and listings', () => {
  it('fits long container ids into nft comments deterministically', () => {
    expect(ownerComment('ctr', 'abc')).toBe('ctr:abc');
    const long = 'x'.repeat(128);
    const c = ownerComment('ctr', long);
    expect(Buffer.byteLength(c)).toBeLessThanOrEqual(128);
    expect(c).toBe(ownerComment('ctr', long));
    expect(c).not.toBe(ownerComment('ctr', `${'x'.repeat(127)}y`));
  });

  // Shapes as nft 1.0.6 prints them.
  const listing: NftListing = {
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'tsrun', handle: 1 } },
      { set: { family: 'inet', name: 'bridges', table: 'tsrun', type: 'ifname', handle: 2, elem: [{ elem: { val: 'tsrun0', comment: 'net:web' } }] } },
      {
        map: {
          family: 'inet',
          name: 'pub4_any_addr',
          table: 'tsrun',
          type: ['inet_proto', 'inet_service'],
          handle: 3,
          map: 'ipv4_addr',
          elem: [
            [{ elem: { val: { concat: ['tcp', 8080] }, comment: 'ctr:c0ffee' } }, '10.88.0.2'],
            [{ elem: { val: { concat: ['udp', 5353] }, comment: 'ctr:other' } }, '10.88.0.7'],
          ],
        },
      },
      { map: { family: 'inet', name: 'pub6_any_addr', table: 'tsrun', type: ['inet_proto', 'inet_service'], handle: 4, map: 'ipv6_addr', elem: [[{ concat: ['tcp', 8080] }, 'fd00:88::2']] } },
      { set: { family: 'ip', name: 'bridges', table: 'other', type: 'ifname', elem: ['eth0'] } },
    ],
  };

  it('reads elements with and without comments, and only from table inet tsrun', () => {
    expect(listElements(listing)).toEqual([
      { set: 'bridges', key: 'tsrun0', comment: 'net:web' },
      { set: 'pub4_any_addr', key: { concat: ['tcp', 8080] }, value: '10.88.0.2', comment: 'ctr:c0ffee' },
      { set: 'pub4_any_addr', key: { concat: ['udp', 5353] }, value: '10.88.0.7', comment: 'ctr:other' },
      { set: 'pub6_any_addr', key: { concat: ['tcp', 8080] }, value: 'fd00:88::2' },
    ]);
  });

  it('finds which wanted elements are still ours (key, data and owner), and which keys another holds', () => {
    const wanted = endpointElements(ep);
    // pub6_any_addr tcp/8080 has our key and data but no owner tag: not ours to delete.
    expect(ownedElements(listing, wanted).map((e) => [e.set, e.key])).toEqual([['pub4_any_addr', { concat: ['tcp', 8080] }]]);
    const sameDataOtherOwner = endpointElements({ ...ep, containerId: 'next' });
    expect(ownedElements(listing, sameDataOtherOwner)).toEqual([]);
    const clashes = conflictingElements(listing, wanted);
    expect(clashes.map((c) => [c.wanted.key, c.held.comment])).toEqual([[{ concat: ['udp', 5353] }, 'ctr:other']]);
  });

  it('compares addresses in canonical form', () => {
    expect(canon('FD00:88:0::2')).toBe(canon('fd00:88::2'));
    expect(canon({ prefix: { addr: '10.0.0.1', len: 32 } })).toBe(canon('10.0.0.1'));
    expect(canon('tsrun0')).toBe('"tsrun0"');
  });
});

describe('restoreBatch', () => {
  it('rebuilds the base and every element from the state in one batch, replacing or creating', () => {
    const state = { networks: [web, db], endpoints: [ep] };
    const replace = restoreBatch(state);
    expect(replace.nftables.slice(0, 5)).toEqual([
      { add: { table: { family: 'inet', name: 'tsrun' } } },
      { delete: { table: { family: 'inet', name: 'tsrun' } } },
      { add: { table: { family: 'bridge', name: 'tsrun' } } },
      { delete: { table: { family: 'bridge', name: 'tsrun' } } },
      { create: { table: { family: 'inet', name: 'tsrun' } } },
    ]);
    const create = restoreBatch(state, 'create');
    expect(create.nftables[0]).toEqual({ create: { table: { family: 'inet', name: 'tsrun' } } });
    // (the schema marker's element, part of the base, aside)
    const added = (b: typeof replace) => b.nftables.filter((c) => c.add && 'element' in c.add && !String((c.add.element as { name: string }).name).startsWith('schema_')).flatMap((c) => (c.add!.element as { elem: NftJson[] }).elem);
    expect(added(replace)).toHaveLength(networkElements(web).length + networkElements(db).length + endpointElements(ep).length);
    expect(added(create)).toEqual(added(replace));
  });

  it('keeps the first holder of a key wanted twice instead of failing the batch', () => {
    const rival = { ...ep, containerId: 'rival', ipv4: '10.88.0.9' };
    const b = restoreBatch({ networks: [web], endpoints: [ep, rival] });
    const comments = JSON.stringify(b).match(/ctr:rival/g) ?? [];
    expect(comments).toHaveLength(0);
  });
});

describe('port guard (anti-spoofing)', () => {
  const port = { ifname: 'tsv0123abcd', mac: '02:42:AC:11:00:02' };
  it('has one element per port, MAC and address, in table bridge tsrun', () => {
    const els = guardElements({ ...ep, port });
    expect(els.map((e) => [e.set, e.key])).toEqual([
      ['guard_ports', 'tsv0123abcd'],
      ['guard_macs', { concat: ['tsv0123abcd', '02:42:ac:11:00:02'] }],
      ['guard_src4', { concat: ['tsv0123abcd', '02:42:ac:11:00:02', '10.88.0.2'] }],
      // its link-local address, the kernel's EUI-64 of the MAC (02 -> 00), and its IPv6 address
      ['guard_src6', { concat: ['tsv0123abcd', '02:42:ac:11:00:02', 'fe80::42:acff:fe11:2'] }],
      ['guard_src6', { concat: ['tsv0123abcd', '02:42:ac:11:00:02', 'fd00:88::2'] }],
      // table bridge tsrun_nd: the raw payloads' keys, as hex as nft prints them (no leading zeros)
      ['nd_lladdrs', { concat: ['tsv0123abcd', '0x242ac110002'] }],
      ['nd_targets', { concat: ['tsv0123abcd', '0xfe800000000000000042acfffe110002'] }],
      ['nd_targets', { concat: ['tsv0123abcd', '0xfd000088000000000000000000000002'] }],
    ]);
    const cmds = addEndpointBatch(ep).nftables.length; // ports only: no guard without a port
    expect(cmds).toBeGreaterThan(0);
    expect(guardElements(ep)).toEqual([]);
    expectGolden('guard-remove', removeGuardBatch({ ...ep, port }));
  });

  it('refuses a bad port name or MAC', () => {
    expect(() => guardElements({ ...ep, port: { ifname: 'x'.repeat(16), mac: port.mac } })).toThrow(UserError);
    expect(() => guardElements({ ...ep, port: { ifname: 'tsv1', mac: 'nope' } })).toThrow(/not a MAC address/);
  });

  it('is rebuilt with the rest by restoreBatch', () => {
    const b = JSON.stringify(restoreBatch({ networks: [web], endpoints: [{ ...ep, port }] }));
    expect(b).toContain('"family":"bridge","table":"tsrun","name":"guard_src4"');
  });
});

describe('underlayBatch (VXLAN source filter)', () => {
  it('flushes and refills the underlay sets in one batch, the port (the filter on) with a local address', () => {
    const b = underlayBatch(['10.250.0.1'], ['10.250.0.2', '10.250.0.3']);
    expect(b.nftables.slice(0, 3)).toEqual([
      { flush: { set: { family: 'inet', table: 'tsrun', name: 'underlay_local4' } } },
      { flush: { set: { family: 'inet', table: 'tsrun', name: 'underlay_peers4' } } },
      { flush: { set: { family: 'inet', table: 'tsrun', name: 'underlay_ports' } } },
    ]);
    expect(JSON.stringify(b.nftables.slice(3))).toContain('10.250.0.3');
    expect(JSON.stringify(b.nftables.slice(3))).toContain('"name":"underlay_ports","elem":[{"elem":{"val":4789');
    expect(JSON.stringify(underlayBatch([], []).nftables.slice(3))).not.toContain('underlay_ports');
    expect(() => underlayBatch(['fd00::1'], [])).toThrow(UserError);
  });
});

describe('table bridge tsrun_nd (neighbour discovery)', () => {
  const port = { ifname: 'tsv0123abcd', mac: '02:42:AC:11:00:02' };
  it('is written in nft\'s own syntax, replacing the table whole, with the endpoints\' elements', () => {
    const els = ndElementsOf([{ ...ep, port }, { ...ep, containerId: 'v4only', ipv6: undefined, ports: [], port: { ifname: 'tsv9', mac: '02:42:ac:11:00:09' } }]);
    expect(els.map((e) => e.set)).toEqual(['nd_lladdrs', 'nd_targets', 'nd_targets', 'nd_lladdrs', 'nd_targets']);
    expectGolden('nd-table', ndTableText(els).split('\n'));
    // created only where none is (EEXIST otherwise, as baseTable's `create table`)
    expect(ndTableText(els, 'create').split('\n').slice(0, 2)).toEqual(['create table bridge tsrun_nd', 'add set bridge tsrun_nd nd_targets { typeof iifname . @th,64,128; }']);
  });

  it('is not part of the JSON batches, which cannot declare its sets', () => {
    const b = JSON.stringify(restoreBatch({ networks: [web], endpoints: [{ ...ep, port }] }));
    expect(b).not.toContain('tsrun_nd');
    expect(b).not.toContain('nd_targets');
    // the attach's batch adds its elements (JSON and netlink can: only declaring the sets cannot)
    expect(JSON.stringify(addElements(guardElements({ ...ep, port })))).toContain('"family":"bridge","table":"tsrun_nd","name":"nd_targets"');
  });

  it('reads listed elements back in the form it writes them (nft prints a 48-bit field as a number)', () => {
    const listing = { nftables: [{ set: { family: 'bridge', table: 'tsrun_nd', name: 'nd_lladdrs', elem: [{ elem: { val: { concat: ['tsv0123abcd', 0x242ac110002] }, comment: 'ctr:c0ffee' } }] } }] } as unknown as NftListing;
    expect(listElements(listing, 'bridge', 'tsrun_nd')).toEqual(guardElements({ ...ep, port }).filter((e) => e.set === 'nd_lladdrs'));
  });

  it('refuses to write an element it cannot quote', () => {
    expect(() => ndTableText([{ set: 'nd_lladdrs', key: { concat: ['tsv1" drop', '0x01'] } }])).toThrow(UserError);
    expect(() => ndTableText([{ set: 'nd_lladdrs', key: { concat: ['tsv1', '1; flush ruleset'] } }])).toThrow(UserError);
  });

  it('ndMatches accepts the table as listed and refuses one with a rule missing', () => {
    const rules = tableDefinitions().find((t) => t.table === 'tsrun_nd')!.rules;
    const objs: Record<string, NftJson>[] = [
      { set: { family: 'bridge', table: 'tsrun_nd', name: 'nd_targets' } },
      { set: { family: 'bridge', table: 'tsrun_nd', name: 'nd_lladdrs' } },
      ...rules.map((r) => ({ rule: { family: 'bridge', table: 'tsrun_nd', chain: r.chain, comment: r.comment } })),
    ];
    expect(ndMatches({ nftables: objs })).toBe(true);
    expect(ndMatches({ nftables: objs.slice(0, -1) })).toBe(false);
    expect(ndMatches({ nftables: [] })).toBe(false);
  });
});

describe('guardMatches', () => {
  it('accepts the guard as created and refuses one with a rule missing', () => {
    const cmds = baseTable().nftables.filter((c) => JSON.stringify(c).includes('"family":"bridge"'));
    const objs: Record<string, NftJson>[] = [];
    for (const c of cmds) for (const [kind, o] of Object.entries(c.add ?? {})) objs.push({ [kind]: { ...(o as Record<string, NftJson>), ...(kind === 'table' ? {} : { table: 'tsrun' }) } });
    expect(guardMatches({ nftables: objs })).toBe(true);
    const oneLess = objs.filter((o, i) => !('rule' in o) || i !== objs.findIndex((x) => 'rule' in x));
    expect(guardMatches({ nftables: oneLess })).toBe(false);
    expect(guardMatches({ nftables: [] })).toBe(false);
  });
});
