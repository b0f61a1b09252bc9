// Lease holders (runtime/ipam/holder.ts) and what IPAM does with them: the pure encode/decode
// and judge rules, then IPAM over in-memory stores, with two simulated hosts sharing one
// in-memory "cluster" (each host a ScopedStore: its own local store, the same cluster).
import { describe, expect, it } from '@jest/globals';
import { ConflictError } from '../../../config/errors.js';
import { Ipam, keyLayout } from '../../../runtime/ipam/ipam.js';
import { decodeHolder, describeHolder, encodeHolder, isThisHost, judgeHolder, type LeaseHolder } from '../../../runtime/ipam/holder.js';
import { MemoryStore } from '../../../runtime/store/memory.js';
import { ScopedStore } from '../../../runtime/store/scoped.js';
import type { ClusterStore } from '../../../runtime/store/cluster.js';
import { LOCAL_HOST_ID_KEY } from '../../../runtime/overlay/keys.js';
import { bootId } from '../../../runtime/boot.js';

const ov = { name: 'ov', subnet: '10.251.0.0/24' };

describe('lease holder values', () => {
  it('round-trip, and leave out what a holder does not have', () => {
    const h: LeaseHolder = { container: 'c1', host: 'h1', boot: 'b1', instance: 'i1' };
    expect(decodeHolder(encodeHolder(h))).toEqual(h);
    expect(encodeHolder({ container: 'c1', boot: 'b1', instance: 'i1' })).toBe('{"container":"c1","boot":"b1","instance":"i1"}');
  });

  it('read a bare container id (written before holders were recorded) as that container alone', () => {
    expect(decodeHolder('c1')).toEqual({ container: 'c1' });
    expect(decodeHolder('{not json')).toEqual({ container: '{not json' });
    expect(decodeHolder('{"x":1}')).toEqual({ container: '{"x":1}' });
  });

  it('name this host: any local lease; in the cluster only one naming this host id', () => {
    const local = { cluster: false };
    const onA = { cluster: true, hostId: 'A' };
    expect(isThisHost({ container: 'c1' }, local)).toBe(true);
    expect(isThisHost({ container: 'c1', host: 'A' }, onA)).toBe(true);
    expect(isThisHost({ container: 'c1', host: 'B' }, onA)).toBe(false);
    expect(isThisHost({ container: 'c1' }, onA)).toBe(false); // bare: an unknown host
  });

  it('judge: another host holds; this host\'s other boot or this container is taken over', () => {
    const onA = { cluster: true, hostId: 'A' };
    const me: LeaseHolder = { container: 'c1', host: 'A', boot: 'now', instance: 'x' };
    expect(judgeHolder({ container: 'c1', host: 'B', boot: 'now', instance: 'y' }, me, onA)).toBe('held');
    expect(judgeHolder({ container: 'c1', host: 'B', boot: 'old', instance: 'y' }, me, onA)).toBe('held'); // never another host's
    expect(judgeHolder({ container: 'c2', host: 'A', boot: 'now', instance: 'y' }, me, onA)).toBe('held');
    expect(judgeHolder({ container: 'c2', host: 'A', boot: 'old', instance: 'y' }, me, onA)).toBe('takeover');
    expect(judgeHolder({ container: 'c1', host: 'A', boot: 'now', instance: 'y' }, me, onA)).toBe('takeover');
    expect(judgeHolder({ container: 'c1' }, me, onA)).toBe('held'); // bare value in the cluster
    expect(judgeHolder({ container: '' }, me, onA)).toBe('takeover'); // torn: names no container
    expect(judgeHolder(decodeHolder('{"container":"c1","bo'), me, onA)).toBe('takeover');
    const local = { cluster: false };
    const meHere: LeaseHolder = { container: 'c1', boot: 'now', instance: 'x' };
    expect(judgeHolder({ container: 'c1' }, meHere, local)).toBe('takeover'); // bare local: this container
    expect(judgeHolder({ container: 'c2' }, meHere, local)).toBe('held');
    expect(judgeHolder({ container: 'c2', boot: 'old', instance: 'y' }, meHere, local)).toBe('takeover');
  });

  it('describe the holder in one line', () => {
    expect(describeHolder({ container: 'c1', host: 'A' }, true)).toBe('container c1 on host A');
    expect(describeHolder({ container: 'c1' }, false)).toBe('container c1');
    expect(describeHolder({ container: 'c1' }, true)).toMatch(/^container c1 on an unknown host/);
  });
});

/** Two hosts on one cluster: each has its own local store (and so its own host id). */
async function twoHosts() {
  const cluster = new MemoryStore();
  const host = async (id: string) => {
    const local = new MemoryStore();
    await local.put(LOCAL_HOST_ID_KEY, id);
    const store = new ScopedStore(cluster as unknown as ClusterStore, local);
    return { store, ipam: new Ipam(store) };
  };
  return { cluster, A: await host('hostA'), B: await host('hostB') };
}

describe('cluster leases name host and container', () => {
  it('the same container id on two hosts gets two addresses; releasing one keeps the other', async () => {
    const { cluster, A, B } = await twoHosts();
    const a = await A.ipam.allocate(ov, 'web');
    const b = await B.ipam.allocate(ov, 'web');
    expect(a.ip).not.toBe(b.ip);
    expect(decodeHolder(a.lease)).toMatchObject({ container: 'web', host: 'hostA', boot: bootId() });
    // B releasing "its" web with A's address, by id or by its own value, frees nothing of A's.
    expect(await B.ipam.release('ov', a.ip, 'web')).toBe(false);
    expect(await B.ipam.release('ov', a.ip, 'web', b.lease)).toBe(false);
    expect(await B.ipam.releaseHeld('ov', a.ip, 'web')).toBe(false);
    expect(await B.ipam.releaseAll('web')).toEqual([{ network: 'ov', ip: b.ip }]);
    expect(await cluster.get(keyLayout.lease('ov', a.ip))).toBe(a.lease);
    expect(await A.ipam.release('ov', a.ip, 'web', a.lease)).toBe(true);
  });

  it('an explicit --ip held by host A is refused on host B with one line naming the holder', async () => {
    const { A, B } = await twoHosts();
    await A.ipam.allocate(ov, 'web', { staticIp: '10.251.0.50' });
    const err = await B.ipam.allocate(ov, 'web', { staticIp: '10.251.0.50' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).shortMessage).toBe('address 10.251.0.50 is already in use by container web on host hostA on network ov');
    // A retried attach of the same container on A still gets it (and now holds it with its new value).
    const again = await A.ipam.allocate(ov, 'web', { staticIp: '10.251.0.50' });
    expect(await A.store.get(keyLayout.lease('ov', '10.251.0.50'))).toBe(again.lease);
  });

  it('a bare (pre-upgrade) cluster lease is held by an unknown host: refused to all, freed by its own record', async () => {
    const { cluster, A } = await twoHosts();
    await cluster.put(keyLayout.lease('ov', '10.251.0.9'), 'web');
    await expect(A.ipam.allocate(ov, 'web', { staticIp: '10.251.0.9' })).rejects.toThrow(/in use by container web on an unknown host/);
    expect(await A.ipam.releaseAll('web')).toEqual([]); // not this host's, as far as anyone can tell
    expect(await A.ipam.release('ov', '10.251.0.9', 'web')).toBe(true); // an old record (no lease value) names the bare id
  });

  it('a lease of this host from another boot is taken over by an explicit --ip; another host\'s never is', async () => {
    const { cluster, A, B } = await twoHosts();
    const stale = encodeHolder({ container: 'old', host: 'hostA', boot: 'a-previous-boot', instance: 'i' });
    await cluster.put(keyLayout.lease('ov', '10.251.0.7'), stale);
    await expect(B.ipam.allocate(ov, 'new', { staticIp: '10.251.0.7' })).rejects.toThrow(/in use by container old on host hostA/);
    const got = await A.ipam.allocate(ov, 'new', { staticIp: '10.251.0.7' });
    expect(await cluster.get(keyLayout.lease('ov', '10.251.0.7'))).toBe(got.lease);
  });

  it('the host id is made on first use when no agent has run (and kept)', async () => {
    const cluster = new MemoryStore();
    const local = new MemoryStore();
    const ipam = new Ipam(new ScopedStore(cluster as unknown as ClusterStore, local));
    const a = await ipam.allocate(ov, 'c1');
    const id = await local.get(LOCAL_HOST_ID_KEY);
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(decodeHolder(a.lease).host).toBe(id);
  });
});

describe('local leases carry the boot', () => {
  it('an explicit --ip held by a container of another boot is taken over; of this boot, refused', async () => {
    const store = new MemoryStore();
    const ipam = new Ipam(store);
    await store.put(keyLayout.lease('web', '10.88.0.5'), encodeHolder({ container: 'gone', boot: 'a-previous-boot', instance: 'i' }));
    const got = await ipam.allocate({ name: 'web', subnet: '10.88.0.0/24' }, 'c1', { staticIp: '10.88.0.5' });
    expect(await store.get(keyLayout.lease('web', '10.88.0.5'))).toBe(got.lease);
    await expect(ipam.allocate({ name: 'web', subnet: '10.88.0.0/24' }, 'c2', { staticIp: '10.88.0.5' })).rejects.toThrow('address 10.88.0.5 is already in use by container c1 on network web');
  });

  it('a bare local lease is this container\'s own (a retried attach from before the upgrade)', async () => {
    const store = new MemoryStore();
    const ipam = new Ipam(store);
    await store.put(keyLayout.lease('web', '10.88.0.6'), 'c1');
    await expect(ipam.allocate({ name: 'web', subnet: '10.88.0.0/24' }, 'c2', { staticIp: '10.88.0.6' })).rejects.toThrow(/in use by container c1 on network web/);
    expect((await ipam.allocate({ name: 'web', subnet: '10.88.0.0/24' }, 'c1', { staticIp: '10.88.0.6' })).ip).toBe('10.88.0.6');
  });
});
