// Endpoint records are volatile keys (written without fdatasync: store/open.ts), so after a power
// loss one can be empty or zero-filled. Reading must take such a record for what it is, one of a
// container from before the crash, instead of failing every command that lists endpoints.
import { describe, expect, it } from '@jest/globals';
import { allEndpoints, endpointsOf, parseRecord, saveEndpoint, tornRecordKeys, type EndpointRecord } from '../../../runtime/records.js';
import { MemoryStore } from '../../../runtime/store/memory.js';

const rec = (containerId: string, network: string): EndpointRecord => ({
  containerId, network, driver: 'bridge', ifname: 'eth0', hostIfname: 'tsv00000000', mac: '02:00:00:00:00:01', ports: [],
  hostNetns: '4:1', containerNetns: '4:2', netnsPath: '/run/tsrun/netns/x', created: '2026-11-29T00:00:00.000Z',
});

describe('endpoint records', () => {
  it.each(['', '\0\0\0\0\0\0', '{"containerId":"c1"', 'null', '42', '{"network":"web"}'])('%j is not a record', (value) => {
    expect(parseRecord(value)).toBeUndefined();
  });

  it('a whole record parses', () => {
    expect(parseRecord(JSON.stringify(rec('c1', 'web')))).toEqual(rec('c1', 'web'));
  });

  it("a record that is not its key's (a reused file's old value after a power loss) is torn", async () => {
    const store = new MemoryStore();
    await store.put('endpoints/c1/web', JSON.stringify(rec('c2', 'web')));
    await store.put('endpoints/c3/web', JSON.stringify(rec('c3', 'db')));
    await saveEndpoint(store, rec('c4', 'web'));
    expect(parseRecord(JSON.stringify(rec('c2', 'web')), 'endpoints/c1/web')).toBeUndefined();
    expect(await endpointsOf(store, 'c1')).toEqual([]);
    expect((await allEndpoints(store)).map((r) => r.containerId)).toEqual(['c4']);
    expect(await tornRecordKeys(store)).toEqual(['endpoints/c1/web', 'endpoints/c3/web']);
  });

  it('listings skip torn records, and tornRecordKeys names them for gc', async () => {
    const store = new MemoryStore();
    await saveEndpoint(store, rec('c1', 'web'));
    await saveEndpoint(store, rec('c2', 'web'));
    await store.put('endpoints/c1/db', '');
    await store.put('endpoints/c3/web', '\0\0\0\0');
    expect((await endpointsOf(store, 'c1')).map((r) => r.network)).toEqual(['web']);
    expect(await endpointsOf(store, 'c3')).toEqual([]);
    expect((await allEndpoints(store)).map((r) => r.containerId)).toEqual(['c1', 'c2']);
    expect(await tornRecordKeys(store)).toEqual(['endpoints/c1/db', 'endpoints/c3/web']);
  });
});
