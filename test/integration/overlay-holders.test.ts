// Overlay correctness across hosts (issue 11): cluster leases and endpoints name their host as
// well as their container, so the same container id on two hosts never shares or frees the
// other's address; an explicit --ip another host holds is refused; this host's leases from
// another boot are taken over; `tsrun gc` collects this host's own stale cluster keys and never
// another host's; network create/rm on two hosts are serialized by the cluster lock. Real etcd,
// two simulated hosts with their own agents (test/harness/overlay-cluster.ts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { haveEtcd } from '../harness/etcd.js';
import { OverlayCluster, type OverlayHost } from '../harness/overlay-cluster.js';
import { isStopped, makeBundle, removeBundle, waitFor } from '../harness/sandbox.js';
import { decodeHolder, encodeHolder } from '../../runtime/ipam/holder.js';
import { bootId } from '../../runtime/boot.js';
import { endpointKey } from '../../runtime/overlay/keys.js';

if (!haveEtcd) console.warn('overlay holder tests skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
const maybe = haveEtcd ? describe : describe.skip;

const NET = 'ovh';
const SUBNET = '10.253.0.0/24';

let cluster: OverlayCluster;
let A: OverlayHost;
let B: OverlayHost;
let bundle: string;

const hostIdOf = (h: OverlayHost) => readFileSync(path.join(h.sandbox.root, 'lib', 'store', 'agent', 'host-id'), 'utf8').trim();

/** The leases of NET in etcd: address → holder. */
async function leases(): Promise<Map<string, ReturnType<typeof decodeHolder>>> {
  const store = cluster.store();
  try {
    return new Map((await store.list(`ipam/${NET}/`)).filter((e) => !e.key.includes('/_')).map((e) => [e.key.split('/').pop()!, decodeHolder(e.value)]));
  } finally {
    await store.close();
  }
}

function ok(h: OverlayHost, args: string[]): void {
  const r = h.tsrun(args);
  expect({ args, status: r.status, stderr: r.stderr }).toEqual({ args, status: 0, stderr: '' });
}

async function withStore<T>(fn: (s: ReturnType<OverlayCluster['store']>) => Promise<T>): Promise<T> {
  const store = cluster.store();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

maybe('overlay leases and endpoints keyed by host and container', () => {
  beforeAll(async () => {
    cluster = await OverlayCluster.create({ prefix: `ovh${process.pid}`, ttlSeconds: 10, resyncSeconds: 3600 });
    A = await cluster.addHost('hA', 11);
    B = await cluster.addHost('hB', 12);
    await A.startAgent();
    await B.startAgent();
    bundle = makeBundle();
    const r = A.tsrun(['network', 'create', NET, '--driver', 'overlay', '--subnet', SUBNET]);
    if (r.status !== 0) throw new Error(r.stderr);
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    if (bundle) removeBundle(bundle);
  }, 60_000);

  it('the same container id on two hosts gets two addresses, and stopping one keeps the other\'s lease and endpoint', async () => {
    const ipA = await A.runContainer('twin', NET, bundle);
    const ipB = await B.runContainer('twin', NET, bundle);
    expect(ipA).not.toBe(ipB);
    const held = await leases();
    expect(held.get(ipA)).toMatchObject({ container: 'twin', host: hostIdOf(A), boot: bootId() });
    expect(held.get(ipB)).toMatchObject({ container: 'twin', host: hostIdOf(B), boot: bootId() });
    await B.stopContainer('twin');
    const after = await leases();
    expect(after.get(ipA)).toEqual(held.get(ipA));
    expect(after.has(ipB)).toBe(false);
    await withStore(async (s) => {
      expect(await s.get(endpointKey(NET, hostIdOf(A), 'twin'))).toBeDefined();
      expect(await s.get(endpointKey(NET, hostIdOf(B), 'twin'))).toBeUndefined();
    });
    expect(A.containerIp('twin')).toBe(ipA);
    await A.stopContainer('twin');
    expect((await leases()).size).toBe(0);
  }, 60_000);

  it('an explicit --ip that host A holds is refused on host B with one line, leaving nothing', async () => {
    const ip = await A.runContainer('fixed', NET, bundle, ['--ip', '10.253.0.50']);
    expect(ip).toBe('10.253.0.50');
    for (const id of ['fixed', 'other']) {
      const r = B.tsrun(['run', '--name', id, '--net', NET, '--ip', '10.253.0.50', bundle, '--', 'true']);
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 125, stderr: `tsrun: address 10.253.0.50 is already in use by container fixed on host ${hostIdOf(A)} on network ${NET}\n` });
      // Cgroups are the machine's: 'fixed' is A's running container, so only 'other''s are B's to check.
      expect(B.sandbox.leaks(id === 'fixed' ? [] : [id])).toEqual([]);
    }
    expect((await leases()).get('10.253.0.50')).toMatchObject({ container: 'fixed', host: hostIdOf(A) });
    await A.stopContainer('fixed');
    // Once A let go, B may have it.
    const r = B.tsrun(['run', '--name', 'fixed', '--net', NET, '--ip', '10.253.0.50', bundle, '--', 'ip', '-4', 'addr', 'show', 'eth0']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('10.253.0.50/24');
    expect((await leases()).size).toBe(0);
  }, 60_000);

  it('a lease of this host from another boot is taken over by --ip; another host\'s stays refused', async () => {
    const stale = encodeHolder({ container: 'before-reboot', host: hostIdOf(A), boot: 'a-previous-boot', instance: 'x' });
    await withStore((s) => s.put(`ipam/${NET}/10.253.0.60`, stale));
    const refused = B.tsrun(['run', '--name', 'late', '--net', NET, '--ip', '10.253.0.60', bundle, '--', 'true']);
    expect(refused.status).toBe(125);
    expect(refused.stderr).toMatch(/^tsrun: address 10\.253\.0\.60 is already in use by container before-reboot on host /);
    const r = A.tsrun(['run', '--name', 'late', '--net', NET, '--ip', '10.253.0.60', bundle, '--', 'ip', '-4', 'addr', 'show', 'eth0']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('10.253.0.60/24');
    expect((await leases()).has('10.253.0.60')).toBe(false); // taken over, then released at exit
  }, 60_000);

  it('tsrun gc collects this host\'s stale cluster lease and endpoint, never another host\'s', async () => {
    const mine = encodeHolder({ container: 'ghost', host: hostIdOf(A), boot: bootId(), instance: 'a' });
    const theirs = encodeHolder({ container: 'ghost', host: hostIdOf(B), boot: bootId(), instance: 'b' });
    const ep = (h: OverlayHost, ip: string) => JSON.stringify({ containerId: 'ghost', network: NET, hostId: hostIdOf(h), mac: '02:42:0a:fd:00:46', ipv4: ip, netns: '0:1', boot: bootId() });
    await withStore(async (s) => {
      await s.put(`ipam/${NET}/10.253.0.70`, mine);
      await s.put(`ipam/${NET}/10.253.0.71`, theirs);
      await s.put(`ipam/${NET}/10.253.0.72`, 'ghost'); // a bare pre-upgrade value: no host known
      await s.put(endpointKey(NET, hostIdOf(A), 'ghost'), ep(A, '10.253.0.70'));
      await s.put(endpointKey(NET, hostIdOf(B), 'ghost'), ep(B, '10.253.0.71'));
    });
    const gc = A.tsrun(['gc']);
    expect({ status: gc.status, stderr: gc.stderr }).toEqual({ status: 0, stderr: '' });
    const report = JSON.parse(gc.stdout) as { leases: string[]; endpoints: string[] };
    expect(report.leases).toEqual([`ipam/${NET}/10.253.0.70`]);
    expect(report.endpoints).toEqual([endpointKey(NET, hostIdOf(A), 'ghost')]);
    await withStore(async (s) => {
      expect(await s.get(`ipam/${NET}/10.253.0.71`)).toBe(theirs);
      expect(await s.get(`ipam/${NET}/10.253.0.72`)).toBe('ghost');
      expect(await s.get(endpointKey(NET, hostIdOf(B), 'ghost'))).toBeDefined();
    });
    // B's gc takes its own.
    expect(B.tsrun(['gc']).status).toBe(0);
    await withStore(async (s) => {
      expect(await s.get(`ipam/${NET}/10.253.0.71`)).toBeUndefined();
      expect(await s.get(endpointKey(NET, hostIdOf(B), 'ghost'))).toBeUndefined();
      await s.deleteIf(`ipam/${NET}/10.253.0.72`);
    });
  }, 60_000);

  it('network rm on host B waits for a network create held on host A (the cluster lock), then removes it whole', async () => {
    const create = A.sandbox.spawnTsrun(['network', 'create', 'ovlk', '--driver', 'overlay', '--subnet', '10.248.0.0/24'], { TSRUN_FAULT_STOP_AFTER: 'record network' });
    let createErr = '';
    create.stderr!.on('data', (d: Buffer) => (createErr += d.toString()));
    create.stdout!.resume();
    // A's create stops itself right after recording the definition, holding the cluster lock.
    await waitFor('the create to stop after recording', () => isStopped(create.pid!), 20_000);
    const rm = B.sandbox.spawnTsrun(['network', 'rm', 'ovlk']);
    let rmErr = '';
    rm.stderr!.on('data', (d: Buffer) => (rmErr += d.toString()));
    rm.stdout!.resume();
    const rmExit = new Promise<number | null>((r) => rm.once('exit', (c) => r(c)));
    await waitFor('B to wait for the cluster lock', () => B.logLines().some((l) => l.msg === 'waiting for the cluster network lock'), 20_000);
    expect(rm.exitCode).toBeNull(); // still waiting: the definition A recorded is not removed under it
    const createExit = new Promise<number | null>((r) => create.once('exit', (c) => r(c)));
    process.kill(create.pid!, 'SIGCONT');
    expect(await createExit).toBe(0);
    expect(createErr).toBe('');
    expect(await rmExit).toBe(0);
    expect(rmErr).toBe('');
    await withStore(async (s) => {
      expect(await s.get('networks/ovlk')).toBeUndefined();
      expect((await s.list('overlay/vni/')).map((e) => e.value)).toEqual([NET]); // ovlk's id released
      expect(await s.list('locks/networks/')).toEqual([]);
    });
  }, 60_000);

  it('network rm of an overlay network whose definition is unreadable releases its VXLAN id too', async () => {
    ok(A, ['network', 'create', 'ovtorn', '--driver', 'overlay', '--subnet', '10.247.0.0/24', '--vni', '7777']);
    await withStore(async (s) => {
      const def = (await s.get('networks/ovtorn'))!;
      await s.put('networks/ovtorn', def.slice(0, 30)); // a torn definition: the VNI is named only there
    });
    ok(A, ['network', 'rm', 'ovtorn']);
    // Before: the reservation stayed for good (no definition names it any more), and --vni 7777
    // was refused to every later network ("already used by overlay network ovtorn").
    await withStore(async (s) => expect(await s.get('overlay/vni/7777')).toBeUndefined());
    ok(B, ['network', 'create', 'ovtorn2', '--driver', 'overlay', '--subnet', '10.247.0.0/24', '--vni', '7777']);
    ok(B, ['network', 'rm', 'ovtorn2']);
    await withStore(async (s) => expect((await s.list('overlay/vni/')).map((e) => e.value)).toEqual([NET]));
  }, 60_000);

  it('an overlay network removed on another host: the next network create here takes its subnet (its bridge left here goes)', () => {
    ok(A, ['network', 'create', 'ovgone', '--driver', 'overlay', '--subnet', '10.246.0.0/24']);
    ok(B, ['network', 'rm', 'ovgone']);
    // A's bridge of it stays until A's gc (its agent removes only devices of networks with a
    // VXLAN device, i.e. with containers): before, A refused the subnet ("overlaps a host route").
    ok(A, ['network', 'create', 'ovgone2', '--driver', 'overlay', '--subnet', '10.246.0.0/24']);
    expect(A.ns.linkNames()).not.toContain('ts-ovgone');
    ok(A, ['network', 'rm', 'ovgone2']);
    expect(A.ns.linkNames()).not.toContain('ts-ovgone2');
  }, 60_000);
});
