// The etcd store against a three-member etcd cluster (test/harness/etcd.ts EtcdCluster): the
// members run in one sandbox namespace on distinct loopback addresses, each with its own data
// directory. A store naming every member keeps serving when the leader dies, and the dead member
// rejoins. The overlay under a leader kill is test/integration/resilience/etcd-leader.test.ts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EtcdCluster, haveEtcd, type EtcdServer } from '../../harness/etcd.js';
import { Netns, waitFor } from '../../harness/sandbox.js';
import { EtcdStore } from '../../../runtime/store/etcd.js';

if (!haveEtcd) console.warn('etcd cluster tests skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
const maybe = haveEtcd ? describe : describe.skip;

let ns: Netns;
let cluster: EtcdCluster;
let leader: EtcdServer;
let newLeader: EtcdServer;
const prefix = `members${process.pid}`;

/** A store on one member's socket only. */
function storeOn(m: EtcdServer): EtcdStore {
  return new EtcdStore({ endpoints: [m.socketTarget], prefix: `/${prefix}/`, display: m.name });
}

maybe('EtcdStore on a three-member etcd cluster', () => {
  beforeAll(async () => {
    ns = await Netns.create('etcd-members');
    cluster = await EtcdCluster.start([11, 12, 13].map((n) => ({ ns, address: `127.0.0.${n}` })));
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
    ns?.destroy();
  });

  it('the members agree on one leader, and a write through one member is read through every other', async () => {
    leader = cluster.leader()!;
    expect(leader).toBeDefined();
    const ids = new Set(cluster.members.map((m) => m.status().memberId));
    expect(ids.size).toBe(3);
    const writer = storeOn(cluster.members.find((m) => m !== leader)!);
    try {
      expect(await writer.createIfAbsent('probe/one', 'x')).toBe(true);
    } finally {
      await writer.close();
    }
    for (const m of cluster.members) {
      const s = storeOn(m);
      try {
        expect(await s.get('probe/one')).toBe('x');
      } finally {
        await s.close();
      }
    }
  });

  it('the leader killed: the others elect a new one, and a store naming all three keeps serving', async () => {
    const s = cluster.store(prefix);
    try {
      expect(await s.get('probe/one')).toBe('x'); // connections to the members exist before the kill
      const lease = await s.grantLease(30);
      await leader.stop();
      newLeader = await cluster.waitForLeader({ not: leader });
      expect(cluster.running).toHaveLength(2);
      // Every call lands on a live member, whichever member the client tries first.
      for (let i = 0; i < 20; i++) expect(await s.createIfAbsent(`after/${i}`, String(i))).toBe(true);
      // Renewals too (streams, outside the client's retry policy): one that picked the dead member
      // first is tried on another, so none fails (the agent loses its lease after three that do).
      const ttls: number[] = [];
      for (let i = 0; i < 15; i++) {
        ttls.push(await s.renewLease(lease));
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(ttls.every((t) => t > 0)).toBe(true);
      expect((await s.list('after/')).map((e) => e.value).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    } finally {
      await s.close();
    }
  }, 60_000);

  it('the killed member rejoins with its data and follows the new leader', async () => {
    await leader.launch();
    const leaderId = newLeader.status().memberId;
    await waitFor('the restarted member to follow the new leader', () => {
      try {
        return leader.status().leaderId === leaderId;
      } catch {
        return false;
      }
    }, 20_000);
    const s = storeOn(leader);
    try {
      expect(await s.get('after/19')).toBe('19');
    } finally {
      await s.close();
    }
  }, 30_000);
});
