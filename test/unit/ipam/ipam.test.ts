import { beforeEach, describe, expect, it } from '@jest/globals';
import { ConflictError, UserError } from '../../../config/errors.js';
import { Ipam, keyLayout, parseLeaseKey } from '../../../runtime/ipam/ipam.js';
import { parseSubnet } from '../../../config/address.js';
import { MemoryStore } from '../../../runtime/store/memory.js';
import { decodeHolder } from '../../../runtime/ipam/holder.js';
import { bootId } from '../../../runtime/boot.js';

const web = { name: 'web', subnet: '10.88.0.0/24' };
const small = { name: 'small', subnet: '10.77.0.0/29' }; // .2-.6 free, gateway .1
const v6 = { name: 'web', subnet: 'fd00:88::/64' };

/** A MemoryStore that counts createIfAbsent calls, to check the allocator's work. */
class CountingStore extends MemoryStore {
  creates = 0;
  override async createIfAbsent(key: string, value: string): Promise<boolean> {
    this.creates++;
    return super.createIfAbsent(key, value);
  }
}

describe('Ipam over MemoryStore', () => {
  let store: CountingStore;
  let ipam: Ipam;
  beforeEach(() => {
    store = new CountingStore();
    ipam = new Ipam(store);
  });

  describe('dynamic allocation', () => {
    it('hands out addresses in order after the gateway, with prefix and gateway', async () => {
      expect(await ipam.allocate(web, 'c1')).toEqual({ ip: '10.88.0.2', prefixLength: 24, gateway: '10.88.0.1', family: 4, subnet: '10.88.0.0/24', lease: expect.any(String) });
      expect((await ipam.allocate(web, 'c2')).ip).toBe('10.88.0.3');
      expect((await ipam.allocate(web, 'c3')).ip).toBe('10.88.0.4');
      expect(await ipam.leases('web')).toEqual([
        { ip: '10.88.0.2', containerId: 'c1' },
        { ip: '10.88.0.3', containerId: 'c2' },
        { ip: '10.88.0.4', containerId: 'c3' },
      ]);
    });

    it('stores leases and the hint under the documented keys', async () => {
      const { lease } = await ipam.allocate(web, 'c1');
      expect(decodeHolder(lease)).toEqual({ container: 'c1', host: undefined, boot: bootId(), instance: expect.stringMatching(/^[0-9a-f]{12}$/) });
      expect(await store.list('ipam/')).toEqual([
        { key: 'ipam/web/10.88.0.2', value: lease },
        { key: 'ipam/web/_last.10.88.0.0_24', value: '10.88.0.2' },
      ]);
      expect(keyLayout.hint('web', parseSubnet('fd00:88::/64'))).toBe('ipam/web/_last.fd00:88::_64');
    });

    it('costs one create per allocation in a sparse pool (the hint)', async () => {
      for (let i = 0; i < 100; i++) await ipam.allocate(web, `c${i}`);
      expect(store.creates).toBe(100);
    });

    it('honours a custom gateway and range', async () => {
      const net = { name: 'r', subnet: '10.9.0.0/24', gateway: '10.9.0.254', rangeStart: '10.9.0.100', rangeEnd: '10.9.0.101' };
      expect(await ipam.allocate(net, 'a')).toMatchObject({ ip: '10.9.0.100', gateway: '10.9.0.254' });
      expect((await ipam.allocate(net, 'b')).ip).toBe('10.9.0.101');
      await expect(ipam.allocate(net, 'c')).rejects.toThrow('network r has no free addresses in 10.9.0.0/24');
    });

    it('ignores a corrupt hint', async () => {
      await store.put(keyLayout.hint('web', parseSubnet(web.subnet)), 'not an address');
      expect((await ipam.allocate(web, 'c1')).ip).toBe('10.88.0.2');
    });

    it('keeps one hint per subnet, so two subnets of one network do not disturb each other', async () => {
      await ipam.allocate(web, 'c1');
      await ipam.allocate({ name: 'web', subnet: '10.99.0.0/24' }, 'c1');
      expect((await ipam.allocate(web, 'c2')).ip).toBe('10.88.0.3');
    });

    it('gives 50 concurrent callers 50 distinct addresses', async () => {
      const got = await Promise.all(Array.from({ length: 50 }, (_, i) => ipam.allocate(web, `c${i}`)));
      expect(new Set(got.map((a) => a.ip)).size).toBe(50);
      expect(await ipam.leases('web')).toHaveLength(50);
    });
  });

  describe('release and reuse', () => {
    it('reuses a released address only after wrapping around', async () => {
      const got = [];
      for (let i = 0; i < 3; i++) got.push(await ipam.allocate(small, `c${i}`));
      expect(got.map((a) => a.ip)).toEqual(['10.77.0.2', '10.77.0.3', '10.77.0.4']);
      expect(await ipam.release('small', '10.77.0.3', 'c1', got[1]!.lease)).toBe(true);
      expect((await ipam.allocate(small, 'c3')).ip).toBe('10.77.0.5');
      expect((await ipam.allocate(small, 'c4')).ip).toBe('10.77.0.6');
      expect((await ipam.allocate(small, 'c5')).ip).toBe('10.77.0.3');
    });

    it('is idempotent and only frees the holder\'s lease', async () => {
      const { ip, lease } = await ipam.allocate(small, 'c1');
      expect(await ipam.release('small', ip, 'someone-else')).toBe(false);
      expect(await ipam.release('small', ip, 'c1')).toBe(false); // the bare id is not this lease's value
      expect(await ipam.release('small', ip, 'c1', lease.replace(/"instance":"\w+"/, '"instance":"000000000000"'))).toBe(false); // another attach of c1
      expect(await ipam.leases('small')).toEqual([{ ip, containerId: 'c1' }]);
      expect(await ipam.release('small', ip, 'c1', lease)).toBe(true);
      expect(await ipam.release('small', ip, 'c1', lease)).toBe(false);
      expect(await ipam.leases('small')).toEqual([]);
    });

    it('canonicalizes the released address', async () => {
      const { ip, lease } = await ipam.allocate(v6, 'c1');
      expect(ip).toBe('fd00:88::2');
      expect(await ipam.release('web', 'FD00:88:0:0::2', 'c1', lease)).toBe(true);
    });

    it('releaseAll frees a container\'s leases on every network and family, and nothing else', async () => {
      await ipam.allocate(web, 'c1');
      await ipam.allocate(v6, 'c1');
      await ipam.allocate(small, 'c1');
      const c2 = await ipam.allocate(web, 'c2');
      const freed = await ipam.releaseAll('c1');
      expect(freed.sort((a, b) => a.ip.localeCompare(b.ip))).toEqual([
        { network: 'small', ip: '10.77.0.2' },
        { network: 'web', ip: '10.88.0.2' },
        { network: 'web', ip: 'fd00:88::2' },
      ]);
      expect((await store.list('ipam/')).filter((e) => parseLeaseKey(e.key))).toEqual([{ key: 'ipam/web/10.88.0.3', value: c2.lease }]);
      expect(await ipam.releaseAll('c1')).toEqual([]);
    });
  });

  describe('exhaustion', () => {
    it('fills a /29 and then says which network and subnet are full', async () => {
      for (let i = 0; i < 5; i++) await ipam.allocate(small, `c${i}`);
      await expect(ipam.allocate(small, 'c6')).rejects.toThrow(new UserError('network small has no free addresses in 10.77.0.0/29'));
    });

    it('fills a /30 with one container', async () => {
      const p2p = { name: 'p2p', subnet: '10.0.0.0/30' };
      expect((await ipam.allocate(p2p, 'c1')).ip).toBe('10.0.0.2');
      await expect(ipam.allocate(p2p, 'c2')).rejects.toThrow('network p2p has no free addresses in 10.0.0.0/30');
    });

    it('switches to one listing in a dense pool instead of a create per taken address', async () => {
      const dense = { name: 'dense', subnet: '10.5.0.0/22' }; // 1021 candidates
      for (let i = 2; i < 1000; i++) await store.createIfAbsent(`ipam/dense/10.5.${i >> 8}.${i & 255}`, `pre${i}`);
      store.creates = 0;
      const { ip } = await ipam.allocate(dense, 'late');
      expect(ip).toBe('10.5.3.232'); // 1000 = 3*256 + 232
      expect(store.creates).toBeLessThanOrEqual(17);
    });

    it('reports a full /18 after a few creates and one listing, not a create per address', async () => {
      const big = { name: 'big', subnet: '10.6.0.0/18' };
      const ipamBig = new Ipam(store, { denseAfter: 4 });
      // Mark everything taken through the store directly (16381 leases).
      for (let i = 2; i < 16383; i++) await store.createIfAbsent(`ipam/big/10.6.${i >> 8}.${i & 255}`, 'x');
      store.creates = 0;
      await expect(ipamBig.allocate(big, 'c')).rejects.toThrow('network big has no free addresses in 10.6.0.0/18');
      expect(store.creates).toBe(4);
    });
  });

  describe('static addresses', () => {
    it('leases the requested address without moving the hint', async () => {
      expect(await ipam.allocate(web, 'c1', { staticIp: '10.88.0.50' })).toMatchObject({ ip: '10.88.0.50', prefixLength: 24 });
      expect((await ipam.allocate(web, 'c2')).ip).toBe('10.88.0.2');
    });

    it('is idempotent for the holder and a ConflictError naming the holder otherwise', async () => {
      await ipam.allocate(web, 'c1', { staticIp: '10.88.0.5' });
      expect((await ipam.allocate(web, 'c1', { staticIp: '10.88.0.5' })).ip).toBe('10.88.0.5');
      const err = await ipam.allocate(web, 'c2', { staticIp: '10.88.0.5' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect((err as ConflictError).shortMessage).toBe('address 10.88.0.5 is already in use by container c1 on network web');
    });

    it.each(['', '\0\0\0\0'])('takes over a lease torn by a power loss (%j: names no container)', async (torn) => {
      await store.put(keyLayout.lease('web', '10.88.0.5'), torn);
      const got = await ipam.allocate(web, 'c2', { staticIp: '10.88.0.5' });
      expect(got.ip).toBe('10.88.0.5');
      expect(await store.get(keyLayout.lease('web', '10.88.0.5'))).toBe(got.lease);
    });

    it('conflicts with a dynamically allocated address', async () => {
      const { ip } = await ipam.allocate(web, 'c1');
      await expect(ipam.allocate(web, 'c2', { staticIp: ip })).rejects.toThrow(ConflictError);
    });

    it.each(['10.88.0.1', '10.88.0.0', '10.88.0.255', '10.89.0.5', 'fd00:88::5', 'ten'])('refuses %s', async (ip) => {
      await expect(ipam.allocate(web, 'c1', { staticIp: ip })).rejects.toThrow(UserError);
      expect(await store.list('ipam/')).toEqual([]);
    });

    it('is not handed out dynamically afterwards', async () => {
      await ipam.allocate(small, 's', { staticIp: '10.77.0.3' });
      const ips = [];
      for (let i = 0; i < 4; i++) ips.push((await ipam.allocate(small, `c${i}`)).ip);
      expect(ips).toEqual(['10.77.0.2', '10.77.0.4', '10.77.0.5', '10.77.0.6']);
    });
  });

  describe('IPv6 and dual stack', () => {
    it('allocates from a /64 in order', async () => {
      expect(await ipam.allocate(v6, 'c1')).toEqual({ ip: 'fd00:88::2', prefixLength: 64, gateway: 'fd00:88::1', family: 6, subnet: 'fd00:88::/64', lease: expect.any(String) });
      expect((await ipam.allocate(v6, 'c2')).ip).toBe('fd00:88::3');
    });

    it('canonicalizes a static IPv6 address', async () => {
      expect((await ipam.allocate(v6, 'c1', { staticIp: 'FD00:88:0:0:0:0:0:10' })).ip).toBe('fd00:88::10');
      await expect(ipam.allocate(v6, 'c2', { staticIp: 'fd00:88::10' })).rejects.toThrow('address fd00:88::10 is already in use by container c1 on network web');
    });

    it('keeps both families of one network side by side, listed IPv4 first in address order', async () => {
      await ipam.allocate(v6, 'c1', { staticIp: 'fd00:88::a' });
      await ipam.allocate(v6, 'c2', { staticIp: 'fd00:88::9' });
      await ipam.allocate(web, 'c1', { staticIp: '10.88.0.10' });
      await ipam.allocate(web, 'c2', { staticIp: '10.88.0.9' });
      expect((await ipam.leases('web')).map((l) => l.ip)).toEqual(['10.88.0.9', '10.88.0.10', 'fd00:88::9', 'fd00:88::a']);
    });

    it('wraps around at the end of a /64', async () => {
      await store.put(keyLayout.hint('web', parseSubnet(v6.subnet)), 'fd00:88::ffff:ffff:ffff:fffe');
      expect((await ipam.allocate(v6, 'c1')).ip).toBe('fd00:88::ffff:ffff:ffff:ffff');
      expect((await ipam.allocate(v6, 'c2')).ip).toBe('fd00:88::2');
    });
  });

  describe('input checks', () => {
    it('refuses bad network names and container ids before touching the store', async () => {
      await expect(ipam.allocate({ name: '../x', subnet: '10.1.0.0/24' }, 'c1')).rejects.toThrow(/invalid network name/);
      await expect(ipam.allocate(web, 'bad id')).rejects.toThrow(/invalid container id/);
      await expect(ipam.release('web', 'not-an-ip', 'c1')).rejects.toThrow(UserError);
      expect(await store.list('')).toEqual([]);
    });

    it('refuses an invalid subnet with a message naming the network', async () => {
      await expect(ipam.allocate({ name: 'web', subnet: '10.88.0.1/24' }, 'c1')).rejects.toThrow('invalid subnet of network web "10.88.0.1/24": host bits are set; did you mean 10.88.0.0/24?');
    });
  });
});

describe('parseLeaseKey', () => {
  it('recognizes leases only', () => {
    expect(parseLeaseKey('ipam/web/10.88.0.5')).toEqual({ network: 'web', ip: '10.88.0.5' });
    expect(parseLeaseKey('ipam/web/fd00::5')).toEqual({ network: 'web', ip: 'fd00::5' });
    expect(parseLeaseKey('ipam/web/_last.10.88.0.0_16')).toBeUndefined();
    expect(parseLeaseKey('ipam/web/FD00::5')).toBeUndefined(); // not canonical: never written by Ipam
    expect(parseLeaseKey('endpoints/c1/web')).toBeUndefined();
  });
});
