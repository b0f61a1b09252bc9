// Names across hosts on an overlay network: each host's resolver serves its own containers from
// its endpoint records and the other hosts' containers from the endpoints they publish in etcd,
// and follows them as they come and go (a watch on the cluster store).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { haveEtcd } from '../harness/etcd.js';
import { OverlayCluster, type OverlayHost } from '../harness/overlay-cluster.js';
import { PROJECT_ROOT, makeBundle, removeBundle, waitFor } from '../harness/sandbox.js';

const CLIENT = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/dns-client.js');
const GATEWAY = '10.253.0.1';

if (!haveEtcd) console.warn('overlay DNS tests skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
const maybe = haveEtcd ? describe : describe.skip;

let cluster: OverlayCluster;
let A: OverlayHost;
let B: OverlayHost;
let bundle: string;
const id = (s: string) => `dnsov-${process.pid}-${s}`;

function query(h: OverlayHost, container: string, name: string): { rcode?: string; answers?: { data: unknown }[] } {
  const r = h.inContainer(container, process.execPath, [CLIENT, 'query', GATEWAY, name, 'A']);
  if (r.status !== 0) throw new Error(`dns-client: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
const addresses = (a: { answers?: { data: unknown }[] }) => (a.answers ?? []).map((x) => String(x.data));

maybe('DNS on an overlay network', () => {
  beforeAll(async () => {
    cluster = await OverlayCluster.create({ prefix: `dnsov${process.pid}`, ttlSeconds: 5, resyncSeconds: 5 });
    A = await cluster.addHost('A', 1);
    B = await cluster.addHost('B', 2);
    await A.startAgent();
    await B.startAgent();
    bundle = makeBundle();
    const r = A.tsrun(['network', 'create', 'ovdns', '--driver', 'overlay', '--subnet', '10.253.0.0/24', '--vni', '4343']);
    if (r.status !== 0) throw new Error(r.stderr);
  }, 90_000);

  afterAll(async () => {
    await cluster?.destroy();
    if (bundle) removeBundle(bundle);
  }, 60_000);

  it('a container resolves containers of other hosts by name and alias, until they are gone', async () => {
    await A.runContainer(id('a'), 'ovdns', bundle);
    const ipB = await B.runContainer(id('b'), 'ovdns', bundle, ['--network-alias', 'faraway']);
    await waitFor('host A to learn of b', () => addresses(query(A, id('a'), 'faraway')).join() === ipB, 15_000);
    expect(addresses(query(A, id('a'), id('b')))).toEqual([ipB]);
    expect(addresses(query(A, id('a'), `faraway.ovdns`))).toEqual([ipB]);
    // and the other way round, from B's own resolver
    expect(addresses(query(B, id('b'), id('a')))).toEqual([A.containerIp(id('a'))]);
    await B.stopContainer(id('b'));
    await waitFor('host A to forget b', () => query(A, id('a'), 'faraway').rcode === 'NXDOMAIN', 15_000);
    await A.stopContainer(id('a'));
  });
});
