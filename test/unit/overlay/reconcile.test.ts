// The agent's decisions: desired VXLAN entries from the cluster's view, the add/delete lists
// against the kernel's, and which of this host's endpoint keys to (re)publish or withdraw.
import { describe, expect, it } from '@jest/globals';
import { desiredEntries, endpointValue, isEmptyPlan, planEntries, planOwnEndpoints } from '../../../runtime/overlay/reconcile.js';
import type { HostRecord, OverlayEndpoint } from '../../../runtime/overlay/keys.js';

const host = (hostId: string, address: string): HostRecord => ({
  hostId, hostname: hostId, address, vtepMac: '0e:00:00:00:00:01', underlay: 'eth0', underlayMtu: 1500, leaseId: '1', registered: '',
});
const ep = (network: string, hostId: string, containerId: string, ipv4: string, mac: string): OverlayEndpoint => ({ containerId, network, hostId, mac, ipv4, netns: '4:1' });

const hosts = new Map([['A', host('A', '192.0.2.1')], ['B', host('B', '192.0.2.2')], ['C', host('C', '192.0.2.3')]]);

describe('desiredEntries', () => {
  it('has one FDB and one neighbour entry per endpoint of the network on another live host', () => {
    const eps = [
      ep('web', 'A', 'a1', '10.200.0.2', '02:42:0A:C8:00:02'), // local to A: the bridge learns it
      ep('web', 'B', 'b1', '10.200.0.3', '02:42:0a:c8:00:03'),
      ep('web', 'C', 'c1', '10.200.0.4', '02:42:0a:c8:00:04'),
      ep('db', 'B', 'b2', '10.201.0.2', '02:42:0a:c9:00:02'), // other network
      ep('web', 'D', 'd1', '10.200.0.5', '02:42:0a:c8:00:05'), // host D is not registered (dead)
    ];
    expect(desiredEntries('web', 'A', hosts, eps)).toEqual({
      fdb: [{ mac: '02:42:0a:c8:00:03', dst: '192.0.2.2' }, { mac: '02:42:0a:c8:00:04', dst: '192.0.2.3' }],
      neigh: [{ ip: '10.200.0.3', mac: '02:42:0a:c8:00:03' }, { ip: '10.200.0.4', mac: '02:42:0a:c8:00:04' }],
    });
    expect(desiredEntries('web', 'B', hosts, eps).fdb.map((f) => f.mac)).toEqual(['02:42:0a:c8:00:02', '02:42:0a:c8:00:04']);
  });

  it('resolves a duplicate address the same way whatever the input order', () => {
    const x = ep('web', 'B', 'x', '10.200.0.9', '02:00:00:00:00:0b');
    const y = ep('web', 'C', 'y', '10.200.0.9', '02:00:00:00:00:0c');
    expect(desiredEntries('web', 'A', hosts, [x, y]).neigh).toEqual(desiredEntries('web', 'A', hosts, [y, x]).neigh);
  });
});

describe('planEntries', () => {
  const desired = {
    fdb: [{ mac: '02:00:00:00:00:01', dst: '192.0.2.2' }, { mac: '02:00:00:00:00:02', dst: '192.0.2.3' }],
    neigh: [{ ip: '10.0.0.1', mac: '02:00:00:00:00:01' }, { ip: '10.0.0.2', mac: '02:00:00:00:00:02' }],
  };

  it('touches nothing when the kernel already matches (MAC case does not matter)', () => {
    const actual = {
      fdb: [{ mac: '02:00:00:00:00:02', dst: '192.0.2.3' }, { mac: '02:00:00:00:00:01', dst: '192.0.2.2' }],
      neigh: [{ ip: '10.0.0.2', mac: '02:00:00:00:00:02' }, { ip: '10.0.0.1', mac: '02:00:00:00:00:01'.toUpperCase() }],
    };
    expect(isEmptyPlan(planEntries(desired, actual))).toBe(true);
  });

  it('adds what is missing and deletes what is stale, including entries of departed hosts and flood entries', () => {
    const actual = {
      fdb: [
        { mac: '02:00:00:00:00:01', dst: '192.0.2.9' }, // the container moved hosts
        { mac: '02:00:00:00:00:09', dst: '192.0.2.9' }, // host 9 left
        { mac: '00:00:00:00:00:00', dst: '192.0.2.2' }, // someone added flooding
      ],
      neigh: [{ ip: '10.0.0.1', mac: '02:00:00:00:00:07' }, { ip: '10.0.0.9', mac: '02:00:00:00:00:09' }],
    };
    expect(planEntries(desired, actual)).toEqual({
      fdbAdd: desired.fdb,
      fdbDel: actual.fdb,
      neighAdd: desired.neigh, // 10.0.0.1 has the wrong MAC: replaced
      neighDel: [{ ip: '10.0.0.9', mac: '02:00:00:00:00:09' }],
    });
  });

  it('from an empty kernel adds everything; towards an empty desire deletes everything', () => {
    const empty = { fdb: [], neigh: [] };
    expect(planEntries(desired, empty)).toEqual({ fdbAdd: desired.fdb, fdbDel: [], neighAdd: desired.neigh, neighDel: [] });
    expect(planEntries(empty, desired)).toEqual({ fdbAdd: [], fdbDel: desired.fdb, neighAdd: [], neighDel: desired.neigh });
  });
});

describe('planOwnEndpoints', () => {
  const a1 = ep('web', 'A', 'a1', '10.200.0.2', '02:42:0a:c8:00:02');
  const a2 = ep('web', 'A', 'a2', '10.200.0.3', '02:42:0a:c8:00:03');
  const a3 = ep('web', 'A', 'a3', '10.200.0.4', '02:42:0a:c8:00:04');

  it('publishes local endpoints that are missing or differ, and leaves matching ones alone', () => {
    const changed = { ...a2, mac: '02:42:0a:c8:00:99' };
    expect(planOwnEndpoints([a1, a2], [changed], () => true)).toEqual({ put: [a1, a2], remove: [] });
    expect(planOwnEndpoints([a1, a2], [a1, a2], () => true)).toEqual({ put: [], remove: [] });
  });

  it('withdraws a published endpoint without a record only when its container is gone', () => {
    const alive = (e: OverlayEndpoint) => e.containerId === 'a2'; // a2: attach in progress
    expect(planOwnEndpoints([a1], [a1, a2, a3], alive)).toEqual({ put: [], remove: [a3] });
  });

  it('compares stored values field by field, not by key order or MAC case', () => {
    expect(endpointValue({ ...a1, mac: a1.mac.toUpperCase() })).toBe(endpointValue(a1));
    expect(JSON.parse(endpointValue(a1))).toEqual(a1);
  });
});
