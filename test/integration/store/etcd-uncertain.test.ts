// etcd writes under an uncertain outcome: a real etcd (in a sandbox namespace) reached through a
// proxy that delivers a request and loses its answer, so the transaction commits while the client
// sees a dropped connection. The store must still give the right answer: a create that committed
// is ours (true), a compare-and-delete that committed deleted it (true), and someone else's key
// stays someone else's (false), each with the key in the state the answer says.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { EtcdServer, haveEtcd } from '../../harness/etcd.js';
import { LossyProxy } from '../../harness/lossy-proxy.js';
import { Netns } from '../../harness/sandbox.js';
import { EtcdStore } from '../../../runtime/store/etcd.js';

if (!haveEtcd) console.warn('etcd uncertain-outcome tests skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
const maybe = haveEtcd ? describe : describe.skip;

let ns: Netns;
let etcd: EtcdServer;
let proxy: LossyProxy;
let n = 0;

maybe('etcd writes whose answer is lost after the commit', () => {
  beforeAll(async () => {
    ns = await Netns.create('ovl-unc');
    etcd = await EtcdServer.start(ns);
    proxy = await LossyProxy.start(path.join(etcd.dir, 'etcd.sock:0'));
  }, 30_000);
  afterAll(async () => {
    await proxy?.close();
    await etcd?.destroy();
    ns?.destroy();
  });

  /** A client through the proxy and a direct one (the truth), on a fresh prefix. */
  async function pair(): Promise<{ lossy: EtcdStore; direct: EtcdStore; close: () => Promise<void> }> {
    const prefix = `unc${++n}`;
    const lossy = new EtcdStore({ endpoints: [proxy.target], prefix: `/${prefix}/`, display: 'lossy proxy' });
    const direct = etcd.store(prefix);
    await lossy.get('warm-up'); // connected before the proxy is armed
    return { lossy, direct, close: async () => void (await Promise.all([lossy.close(), direct.close()])) };
  }

  it('createIfAbsent that committed reports true, once, and the key holds its value', async () => {
    const { lossy, direct, close } = await pair();
    try {
      const before = proxy.dropped;
      proxy.dropNextReply();
      expect(await lossy.createIfAbsent('ipam/ov/10.251.0.7', 'holder-A')).toBe(true);
      expect(proxy.dropped).toBe(before + 1); // the answer really was lost
      expect(await direct.get('ipam/ov/10.251.0.7')).toBe('holder-A');
      // A second, ordinary create of the same key is refused as before.
      expect(await lossy.createIfAbsent('ipam/ov/10.251.0.7', 'holder-A')).toBe(false);
    } finally {
      await close();
    }
  });

  it('createIfAbsent on a key another holder has reports false, answer lost or not', async () => {
    const { lossy, direct, close } = await pair();
    try {
      await direct.put('overlay/vni/5000', 'other');
      const before = proxy.dropped;
      proxy.dropNextReply();
      expect(await lossy.createIfAbsent('overlay/vni/5000', 'mine')).toBe(false);
      expect(proxy.dropped).toBe(before + 1);
      expect(await direct.get('overlay/vni/5000')).toBe('other');
    } finally {
      await close();
    }
  });

  it('deleteIf that committed reports true and the key is gone', async () => {
    const { lossy, direct, close } = await pair();
    try {
      await direct.put('ipam/ov/10.251.0.8', 'holder-A');
      const before = proxy.dropped;
      proxy.dropNextReply();
      expect(await lossy.deleteIf('ipam/ov/10.251.0.8', 'holder-A')).toBe(true);
      expect(proxy.dropped).toBe(before + 1);
      expect(await direct.get('ipam/ov/10.251.0.8')).toBeUndefined();
    } finally {
      await close();
    }
  });

  it('deleteIf of a key holding another value reports false and leaves it', async () => {
    const { lossy, direct, close } = await pair();
    try {
      await direct.put('ipam/ov/10.251.0.9', 'holder-B');
      proxy.dropNextReply();
      expect(await lossy.deleteIf('ipam/ov/10.251.0.9', 'holder-A')).toBe(false);
      expect(await direct.get('ipam/ov/10.251.0.9')).toBe('holder-B');
    } finally {
      await close();
    }
  });

  it('put whose answer was lost leaves the value written', async () => {
    const { lossy, direct, close } = await pair();
    try {
      proxy.dropNextReply();
      await lossy.put('networks/x', 'def');
      expect(await direct.get('networks/x')).toBe('def');
    } finally {
      await close();
    }
  });
});
