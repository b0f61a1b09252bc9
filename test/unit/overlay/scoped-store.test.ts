// The scoped store routes cluster-wide keys to the cluster and this host's keys to the local
// store; listing everything merges both in key order.
import { describe, expect, it } from '@jest/globals';
import { MemoryStore } from '../../../runtime/store/memory.js';
import { ScopedStore, clusterOf } from '../../../runtime/store/scoped.js';
import type { ClusterStore } from '../../../runtime/store/cluster.js';
import type { WatchEvent } from '../../../runtime/store/store.js';

function stores() {
  const cluster = new MemoryStore();
  const local = new MemoryStore();
  return { cluster, local, scoped: new ScopedStore(cluster as unknown as ClusterStore, local) };
}

describe('ScopedStore', () => {
  it('sends networks, ipam and overlay keys to the cluster and the rest to the local store', async () => {
    const { cluster, local, scoped } = stores();
    await scoped.put('networks/web', 'n');
    expect(await scoped.createIfAbsent('ipam/web/10.0.0.2', 'c1')).toBe(true);
    await scoped.put('overlay/hosts/h', 'x');
    await scoped.put('endpoints/c1/web', 'rec');
    await scoped.put('agent/host-id', 'h');
    expect((await cluster.list('')).map((e) => e.key)).toEqual(['ipam/web/10.0.0.2', 'networks/web', 'overlay/hosts/h']);
    expect((await local.list('')).map((e) => e.key)).toEqual(['agent/host-id', 'endpoints/c1/web']);
    expect(await scoped.get('ipam/web/10.0.0.2')).toBe('c1');
    expect(await scoped.deleteIf('ipam/web/10.0.0.2', 'c2')).toBe(false);
    expect(await scoped.deleteIf('endpoints/c1/web')).toBe(true);
    expect((await scoped.list('')).map((e) => e.key)).toEqual(['agent/host-id', 'ipam/web/10.0.0.2', 'networks/web', 'overlay/hosts/h']);
    expect((await scoped.list('networks/')).map((e) => e.key)).toEqual(['networks/web']);
  });

  it('refuses invalid keys before routing', async () => {
    const { scoped } = stores();
    await expect(scoped.put('../x', 'v')).rejects.toThrow(/invalid store key/);
  });

  it('watches on the side that holds the prefix', async () => {
    const { scoped } = stores();
    const seen: WatchEvent[] = [];
    const stop = await scoped.watch('overlay/', (e) => seen.push(e));
    await scoped.put('overlay/hosts/h', '1');
    await scoped.put('endpoints/c/n', '2');
    await new Promise((r) => setTimeout(r, 10));
    await stop();
    expect(seen).toEqual([{ type: 'put', key: 'overlay/hosts/h', value: '1' }]);
  });

  it('exposes its cluster; a plain store has none', () => {
    const { scoped } = stores();
    expect(clusterOf(scoped)).toBe(scoped.cluster);
    expect(clusterOf(new MemoryStore())).toBeUndefined();
  });
});
