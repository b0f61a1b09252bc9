// The Store contract against a real etcd (started in a sandbox namespace), plus what only the
// etcd store does: leases, revision-exact watches, and failing fast with one line naming the
// endpoint when the cluster cannot be reached.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { storeContract } from '../../unit/store/contract.js';
import { EtcdServer, haveEtcd } from '../../harness/etcd.js';
import { Netns } from '../../harness/sandbox.js';
import { EtcdStore, type RevisionedEvent } from '../../../runtime/store/etcd.js';
import { UserError } from '../../../config/errors.js';

if (!haveEtcd) console.warn('etcd store tests skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
const maybe = haveEtcd ? describe : describe.skip;

let ns: Netns;
let etcd: EtcdServer;
let n = 0;

maybe('EtcdStore', () => {
  beforeAll(async () => {
    ns = await Netns.create('etcd-store');
    etcd = await EtcdServer.start(ns);
  }, 30_000);
  afterAll(async () => {
    await etcd?.destroy();
    ns?.destroy();
  });

  // Every fixture gets a fresh key prefix: the same server, an empty store each time.
  storeContract('EtcdStore', async () => ({ store: etcd.store(`contract${++n}`) }), { leafKeysOnly: false });

  it('lists keys without their values (CNI STATUS counts a clustered host\'s endpoints this way)', async () => {
    const s = etcd.store(`keys${++n}`);
    try {
      // The contract's listKeys check runs only for a store that has it: this one must.
      expect(typeof s.listKeys).toBe('function');
      await s.put('endpoints/c1/web', 'x'.repeat(100_000));
      await s.put('endpoints/c2/web', '{}');
      await s.put('endpointsx/c3', '{}');
      expect(await s.listKeys('endpoints/')).toEqual(['endpoints/c1/web', 'endpoints/c2/web']);
      expect(await s.listKeys('')).toEqual(['endpoints/c1/web', 'endpoints/c2/web', 'endpointsx/c3']);
      // Another store's keys (another prefix on the same server) are not this one's.
      const other = etcd.store(`keys${++n}`);
      expect(await other.listKeys('')).toEqual([]);
      await other.close();
    } finally {
      await s.close();
    }
  });

  describe('leases', () => {
    it('keys bound to a lease vanish when it is revoked, and renewals report the TTL', async () => {
      const s = etcd.store(`lease${++n}`);
      try {
        const id = await s.grantLease(5);
        expect(await s.leaseRemaining(id)).toBeGreaterThan(0);
        expect(await s.renewLease(id)).toBe(5);
        await s.putWithLease('overlay/hosts/h1', 'x', id);
        expect(await s.get('overlay/hosts/h1')).toBe('x');
        await s.revokeLease(id);
        expect(await s.get('overlay/hosts/h1')).toBeUndefined();
        expect(await s.leaseRemaining(id)).toBeLessThanOrEqual(0);
        expect(await s.renewLease(id)).toBe(0);
      } finally {
        await s.close();
      }
    });

    it('a lease nobody renews expires with its keys', async () => {
      const s = etcd.store(`lease${++n}`);
      try {
        const id = await s.grantLease(1);
        await s.putWithLease('k', 'v', id);
        const deadline = Date.now() + 8000;
        while ((await s.get('k')) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        expect(await s.get('k')).toBeUndefined();
      } finally {
        await s.close();
      }
    }, 15_000);
  });

  describe('listAt + watchFrom', () => {
    it('misses nothing between the listing and the watch', async () => {
      const s = etcd.store(`rev${++n}`);
      try {
        await s.put('p/a', '1');
        const { entries, revision } = await s.listAt('p/');
        expect(entries).toEqual([{ key: 'p/a', value: '1' }]);
        await s.put('p/b', '2'); // after the listing, before the watch
        const seen: RevisionedEvent[] = [];
        const stop = await s.watchFrom('p/', revision + 1n, { onEvent: (e) => seen.push(e), onError: () => {} });
        await s.deleteIf('p/a');
        const deadline = Date.now() + 3000;
        while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await stop();
        expect(seen.map(({ type, key, value }) => ({ type, key, value }))).toEqual([
          { type: 'put', key: 'p/b', value: '2' },
          { type: 'delete', key: 'p/a', value: undefined },
        ]);
        expect(seen[0]!.revision).toBeGreaterThan(revision);
      } finally {
        await s.close();
      }
    });
  });

  describe('an unreachable cluster', () => {
    it('fails within the deadline with one line naming the endpoint', async () => {
      const s = new EtcdStore({ endpoints: [`unix:${etcd.dir}/absent.sock`], prefix: '/x/', display: 'unix:absent.sock' }, { timeoutMs: 1000 });
      try {
        const started = Date.now();
        const err = await s.get('networks/web').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UserError);
        expect((err as UserError).shortMessage).toMatch(/^etcd at unix:absent\.sock is unreachable \(get networks\/web\): /);
        expect((err as UserError).shortMessage).not.toContain('\n');
        expect(Date.now() - started).toBeLessThan(3000);
      } finally {
        await s.close();
      }
    });
  });
});
