import { describe, expect, it } from '@jest/globals';
import { DnsTable, keptListeners, listenerBridges, ptrToIp } from '../../../runtime/dns/table.js';
import type { NetworkDef } from '../../../config/networks.js';
import type { EndpointRecord } from '../../../runtime/records.js';

const net = (name: string, n: number, extra: Partial<NetworkDef> = {}): NetworkDef => ({
  name, driver: 'bridge', bridge: `ts-${name}`, subnet4: `10.${n}.0.0/24`, gateway4: `10.${n}.0.1`, internal: false, icc: true, mtu: 1500, options: {}, created: '', ...extra,
});
const ep = (containerId: string, network: string, ip: string, extra: Partial<EndpointRecord> = {}): EndpointRecord => ({
  containerId, network, driver: 'bridge', ifname: 'eth0', hostIfname: 'tsv0', mac: '', ipv4: { address: ip, prefixLength: 24 }, ports: [], hostNetns: '', containerNetns: '', netnsPath: '', created: '', resolver: true, ...extra,
});

const nets = [net('a', 1, { subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' }), net('b', 2), net('tsrun', 88), net('vault', 3, { internal: true })];
const table = new DnsTable(nets, [
  ep('db', 'a', '10.1.0.2', { aliases: ['primary'], ipv6: { address: 'fd00:1::2', prefixLength: 64 } }),
  ep('web', 'a', '10.1.0.3', { dnsServers: ['192.0.2.53'] }),
  ep('web', 'b', '10.2.0.3', { aliases: ['front'] }),
  ep('other', 'b', '10.2.0.4'),
  ep('plain', 'tsrun', '10.88.0.2'),
  ep('safe', 'vault', '10.3.0.2'),
]);

describe('DnsTable', () => {
  it('answers names and aliases on the networks the client shares', () => {
    expect(table.lookup('db', 'A', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'answer', addresses: ['10.1.0.2'] });
    expect(table.lookup('PRIMARY.', 'AAAA', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'answer', addresses: ['fd00:1::2'] });
    expect(table.lookup('db.a', 'A', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'answer', addresses: ['10.1.0.2'] });
    expect(table.lookup('db', 'MX', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'nodata' });
    expect(table.lookup('other', 'AAAA', '10.2.0.3', '10.2.0.1')).toEqual({ kind: 'nodata' });
  });

  it('a container on two networks sees both; others see only what they share', () => {
    expect(table.lookup('other', 'A', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'answer', addresses: ['10.2.0.4'] });
    expect(table.lookup('other', 'A', '10.1.0.2', '10.1.0.1')).toEqual({ kind: 'nxdomain' });
    expect(table.lookup('db', 'A', '10.2.0.4', '10.2.0.1')).toEqual({ kind: 'nxdomain' });
    expect(table.lookup('web', 'A', '10.2.0.4', '10.2.0.1')).toEqual({ kind: 'answer', addresses: ['10.2.0.3'] });
    expect(table.lookup('front', 'A', '10.1.0.2', '10.1.0.1')).toEqual({ kind: 'nxdomain' });
  });

  it('PTR for visible addresses, NXDOMAIN inside a visible subnet, forwarding elsewhere', () => {
    expect(table.lookup('2.0.1.10.in-addr.arpa', 'PTR', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'ptr', names: ['db.a'] });
    expect(table.lookup('9.0.1.10.in-addr.arpa', 'PTR', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'nxdomain' });
    expect(table.lookup('4.3.2.1.in-addr.arpa', 'PTR', '10.1.0.2', '10.1.0.1')).toEqual({ kind: 'forward', upstreams: undefined });
  });

  it('forwards other names with the client\'s own upstreams; refuses on internal networks', () => {
    expect(table.lookup('example.com', 'A', '10.1.0.2', '10.1.0.1')).toEqual({ kind: 'forward', upstreams: undefined });
    expect(table.lookup('example.com', 'A', '10.1.0.3', '10.1.0.1')).toEqual({ kind: 'forward', upstreams: ['192.0.2.53'] });
    expect(table.lookup('example.com', 'A', '10.3.0.2', '10.3.0.1')).toEqual({ kind: 'refused' });
    expect(table.lookup('safe', 'A', '10.3.0.2', '10.3.0.1')).toEqual({ kind: 'answer', addresses: ['10.3.0.2'] });
  });

  it('the default network serves no names (only forwards), unless its definition turns DNS on', () => {
    expect(table.lookup('plain', 'A', '10.88.0.2', '10.88.0.1')).toEqual({ kind: 'forward', upstreams: undefined });
    const on = new DnsTable([net('tsrun', 88, { dns: true })], [ep('plain', 'tsrun', '10.88.0.2')]);
    expect(on.lookup('plain', 'A', '10.88.0.2', '10.88.0.1')).toEqual({ kind: 'answer', addresses: ['10.88.0.2'] });
  });

  it('listens on the gateways of networks with endpoints that use it, and counts them', () => {
    expect(table.listenAddresses().sort()).toEqual(['10.1.0.1', '10.2.0.1', '10.3.0.1', '10.88.0.1', 'fd00:1::1']);
    expect(table.endpointCount).toBe(6);
    expect(new DnsTable(nets, [ep('x', 'b', '10.2.0.9', { resolver: undefined })]).listenAddresses()).toEqual([]);
    expect(new DnsTable([net('m', 5, { driver: 'macvlan', bridge: '' })], [ep('x', 'm', '10.5.0.9')]).listenAddresses()).toEqual([]);
  });

  it('the host (a source inside the network) sees the names of the gateway it asks; strangers get nothing', () => {
    expect(table.lookup('db', 'A', '10.1.0.1', '10.1.0.1')).toEqual({ kind: 'answer', addresses: ['10.1.0.2'] });
    expect(table.lookup('other', 'A', '10.1.0.1', '10.1.0.1')).toEqual({ kind: 'nxdomain' });
    expect(table.lookup('db', 'A', '192.0.2.77', '10.1.0.1')).toEqual({ kind: 'refused' });
    const withHost = new DnsTable(nets, [ep('db', 'a', '10.1.0.2')], [], new Set(['192.0.2.77']));
    expect(withHost.lookup('db', 'A', '192.0.2.77', '10.1.0.1')).toEqual({ kind: 'answer', addresses: ['10.1.0.2'] });
    expect(table.lookup('example.com', 'A', '192.0.2.77', '10.1.0.1')).toEqual({ kind: 'refused' });
  });

  it('changed in place for one container answers as a table built whole from the same records', () => {
    let records: EndpointRecord[] = [
      ep('db', 'a', '10.1.0.2', { aliases: ['primary'], ipv6: { address: 'fd00:1::2', prefixLength: 64 } }),
      ep('web', 'a', '10.1.0.3', { dnsServers: ['192.0.2.53'] }),
      ep('web', 'b', '10.2.0.3', { aliases: ['front'] }),
      ep('other', 'b', '10.2.0.4'),
      ep('plain', 'tsrun', '10.88.0.2'),
    ];
    const live = new DnsTable(nets, records, [], new Set(['192.0.2.77']));
    const names = ['db', 'primary', 'web', 'front', 'other', 'plain', 'x', 'safe', 'db.a', 'web.b', 'x.a', '2.0.1.10.in-addr.arpa', '9.0.2.10.in-addr.arpa', 'example.com'];
    const sources = ['10.1.0.2', '10.1.0.3', '10.2.0.4', '10.2.0.9', '10.1.0.9', '10.3.0.2', '10.88.0.2', '192.0.2.77', '198.51.100.1'];
    const gateways = ['10.1.0.1', '10.2.0.1', '10.3.0.1', '10.88.0.1', 'fd00:1::1'];
    const answers = (t: DnsTable) => {
      const out: unknown[] = [t.listenAddresses().sort(), t.endpointCount];
      for (const n of names) for (const type of ['A', 'AAAA', 'PTR']) for (const src of sources) for (const gw of gateways) {
        const l = t.lookup(n, type, src, gw);
        out.push(l.kind === 'answer' ? { ...l, addresses: [...l.addresses].sort() } : l.kind === 'ptr' ? { ...l, names: [...l.names].sort() } : l);
      }
      return out;
    };
    const change = (id: string, mine: EndpointRecord[]) => {
      records = [...records.filter((r) => r.containerId !== id), ...mine];
      expect(live.replaceContainer(id, mine)).toBe(true);
      expect(answers(live)).toEqual(answers(new DnsTable(nets, records, [], new Set(['192.0.2.77']))));
    };
    answers(live); // clients cached before the changes must not survive them
    change('x', [ep('x', 'a', '10.1.0.9', { aliases: ['primary'] })]); // a second holder of an alias
    change('web', [ep('web', 'b', '10.2.0.3')]); // off network a, alias and --dns gone
    change('db', []); // gone
    change('safe', [ep('safe', 'vault', '10.3.0.2')]); // the first endpoint of a network: it is served
    change('quiet', [ep('quiet', 'b', '10.2.0.9', { resolver: undefined })]); // on b without the resolver
    change('other', []);
    change('web', []); // b keeps only an endpoint that does not use the resolver: b is no longer served
    change('safe', []);
    change('x', []);
    change('plain', []);
    change('quiet', []);
    expect(live.endpointCount).toBe(0);
    expect(live.listenAddresses()).toEqual([]);
  });

  it('is not changed in place while it holds other hosts\' containers', () => {
    const t = new DnsTable([net('o', 7, { driver: 'overlay' })], [ep('a', 'o', '10.7.0.2')], [{ containerId: 'r', network: 'o', ipv4: '10.7.0.3' }]);
    expect(t.replaceContainer('a', [])).toBe(false);
    expect(t.endpointCount).toBe(1);
  });

  it('reverse names', () => {
    expect(ptrToIp('4.3.2.1.in-addr.arpa.')).toBe('1.2.3.4');
    expect(ptrToIp(`${'2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f'}.ip6.arpa`)).toBe('fd00:1::2');
    expect(ptrToIp('3.2.1.in-addr.arpa')).toBeUndefined();
  });
});

describe('keptListeners', () => {
  const defs = [net('a', 1, { subnet6: 'fd00:1::/64', gateway6: 'fd00:1::1' }), net('b', 2), net('m', 4, { driver: 'macvlan', bridge: undefined, parent: 'eth0' })];
  const ifs = (o: Record<string, string[]>) => new Map(Object.entries(o));
  it('keeps a gateway of a defined bridge network while its bridge holds the address', () => {
    expect([...keptListeners(['10.1.0.1', 'fd00:1::1', '10.2.0.1'], defs, ifs({ 'ts-a': ['10.1.0.1', 'fd00:1::1'], 'ts-b': ['10.2.0.1'] }))].sort()).toEqual(['10.1.0.1', '10.2.0.1', 'fd00:1::1']);
  });
  it('closes it when the network is gone, the bridge is gone, or the address is off the bridge', () => {
    expect(keptListeners(['10.9.0.1'], defs, ifs({ 'ts-a': ['10.9.0.1'] })).size).toBe(0); // no network has it
    expect(keptListeners(['10.2.0.1'], defs, ifs({ 'ts-a': ['10.1.0.1'] })).size).toBe(0); // no bridge ts-b
    expect(keptListeners(['10.2.0.1'], defs, ifs({ 'ts-b': [] })).size).toBe(0); // address gone
    // the address on another interface than the network's bridge is not the network's
    expect(keptListeners(['10.2.0.1'], defs, ifs({ 'ts-a': ['10.2.0.1'], 'ts-b': ['10.2.0.2'] })).size).toBe(0);
    // a network that is not a bridge (its gateway is not the host's to listen on)
    expect(keptListeners(['10.4.0.1'], defs, ifs({ eth0: ['10.4.0.1'] })).size).toBe(0);
  });
  it('compares addresses in their normal form', () => {
    expect(keptListeners(['fd00:1:0:0:0:0:0:1'], defs, ifs({ 'ts-a': ['fd00:1::1'] })).size).toBe(1);
  });
  it('names the bridge of each address it could keep', () => {
    expect(listenerBridges(['10.1.0.1', 'fd00:1::1', '10.2.0.1', '10.9.0.1', '10.4.0.1'], defs)).toEqual(new Map([['10.1.0.1', 'ts-a'], ['fd00:1::1', 'ts-a'], ['10.2.0.1', 'ts-b']]));
  });
});
