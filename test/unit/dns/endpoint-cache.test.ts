// The resolver's cache of the Store (runtime/dns/endpoint-cache.ts): a change named by its
// container re-reads that container's records only, and anything it cannot vouch for (nothing
// loaded yet, the networks changed) asks for a full read instead.
import { describe, expect, it } from '@jest/globals';
import { EndpointCache } from '../../../runtime/dns/endpoint-cache.js';
import { tableInputs } from '../../../runtime/dns/server.js';
import { deleteEndpoint, saveEndpoint, type EndpointRecord } from '../../../runtime/records.js';
import { MemoryStore } from '../../../runtime/store/memory.js';
import type { StoreEntry } from '../../../runtime/store/store.js';

const rec = (containerId: string, network: string, address: string): EndpointRecord => ({
  containerId, network, driver: 'bridge', ifname: 'eth0', hostIfname: 'tsv00000000', mac: '02:00:00:00:00:01', ports: [], ipv4: { address, prefixLength: 24 },
  hostNetns: '4:1', containerNetns: '4:2', netnsPath: '/run/tsrun/netns/x', resolver: true, created: '2026-11-29T00:00:00.000Z',
});

/** A MemoryStore that remembers which prefixes were listed. */
class CountingStore extends MemoryStore {
  listed: string[] = [];
  override async list(prefix: string): Promise<StoreEntry[]> {
    this.listed.push(prefix);
    return super.list(prefix);
  }
}

async function world(containers: number): Promise<CountingStore> {
  const store = new CountingStore();
  await store.put('networks/web', JSON.stringify({ name: 'web', driver: 'bridge', bridge: 'tsweb0', subnet4: '10.1.0.0/24', gateway4: '10.1.0.1' }));
  for (let i = 0; i < containers; i++) await saveEndpoint(store, rec(`c${i}`, 'web', `10.1.0.${i + 2}`));
  return store;
}
const names = (c: EndpointCache) => c.records().map((r) => `${r.containerId}/${r.network}=${r.ipv4?.address}`).sort();

describe('the resolver endpoint cache', () => {
  it('reads every record once, then only the records of the containers a change names', async () => {
    const store = await world(200);
    const cache = new EndpointCache(store);
    await cache.loadAll();
    expect(cache.records()).toHaveLength(200);
    store.listed = [];
    await saveEndpoint(store, rec('new', 'web', '10.1.0.250'));
    expect(await cache.update(['new'])).toBe(true);
    expect(store.listed).toEqual(['networks/', 'endpoints/new/']);
    expect(cache.records()).toHaveLength(201);
    expect(names(cache)).toContain('new/web=10.1.0.250');
  });

  it('forgets a container whose records are gone, and takes a container on a second network', async () => {
    const store = await world(3);
    await store.put('networks/db', JSON.stringify({ name: 'db', driver: 'bridge', bridge: 'tsdb0', subnet4: '10.2.0.0/24', gateway4: '10.2.0.1' }));
    const cache = new EndpointCache(store);
    await cache.loadAll();
    await deleteEndpoint(store, 'c1', 'web');
    await saveEndpoint(store, rec('c2', 'db', '10.2.0.2'));
    expect(await cache.update(['c1', 'c2'])).toBe(true);
    expect(names(cache)).toEqual(['c0/web=10.1.0.2', 'c2/db=10.2.0.2', 'c2/web=10.1.0.4']);
  });

  it('asks for a full read before its first load and when the networks changed', async () => {
    const store = await world(2);
    const cache = new EndpointCache(store);
    expect(await cache.update(['c0'])).toBe(false);
    await cache.loadAll();
    await store.put('networks/db', JSON.stringify({ name: 'db', driver: 'bridge', bridge: 'tsdb0', subnet4: '10.2.0.0/24', gateway4: '10.2.0.1' }));
    await saveEndpoint(store, rec('c9', 'db', '10.2.0.2'));
    expect(await cache.update(['c9'])).toBe(false);
    // nothing taken from the refused update: the full read brings both the network and the record
    expect(cache.networks().map((n) => n.name)).toEqual(['web']);
    await cache.loadAll();
    expect(cache.networks().map((n) => n.name)).toEqual(['db', 'web']);
    expect(names(cache)).toContain('c9/db=10.2.0.2');
  });

  it('a full read replaces what it knew: a record removed behind its back is gone', async () => {
    const store = await world(2);
    const cache = new EndpointCache(store);
    await cache.loadAll();
    await deleteEndpoint(store, 'c0', 'web');
    await cache.loadAll();
    expect(names(cache)).toEqual(['c1/web=10.1.0.3']);
  });
});

describe('what a table is built from (tableInputs: an unchanged full re-read keeps the table)', () => {
  const inputs = (c: EndpointCache, hosts: string[] = ['10.1.0.1', '127.0.0.1']) => tableInputs(c.networksText(), c.records(), [], new Set(hosts));

  it('is the same after a re-read that found nothing new, whatever order the host addresses come in', async () => {
    const store = await world(3);
    const cache = new EndpointCache(store);
    await cache.loadAll();
    const first = inputs(cache);
    await cache.loadAll();
    expect(inputs(cache, ['127.0.0.1', '10.1.0.1'])).toBe(first);
  });

  it('differs after any change: a record, a network, a host address, another host\'s container', async () => {
    const store = await world(3);
    const cache = new EndpointCache(store);
    await cache.loadAll();
    const first = inputs(cache);
    expect(inputs(cache, ['10.1.0.1'])).not.toBe(first);
    expect(tableInputs(cache.networksText(), cache.records(), [{ name: 'x' } as never], new Set(['10.1.0.1', '127.0.0.1']))).not.toBe(first);
    await saveEndpoint(store, { ...rec('c1', 'web', '10.1.0.3'), aliases: ['db'] });
    await cache.loadAll();
    const aliased = inputs(cache);
    expect(aliased).not.toBe(first);
    await deleteEndpoint(store, 'c2', 'web');
    await cache.loadAll();
    expect(inputs(cache)).not.toBe(aliased);
    await store.put('networks/web', JSON.stringify({ name: 'web', driver: 'bridge', bridge: 'tsweb0', subnet4: '10.1.0.0/24', gateway4: '10.1.0.1', internal: true }));
    const before = inputs(cache);
    await cache.loadAll();
    expect(inputs(cache)).not.toBe(before);
  });
});
