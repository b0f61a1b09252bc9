// A container that publishes port 53 (a DNS server in a container: -p 53:53/udp, on every host
// address) must not take over the other containers' resolver. tsrun's resolver listens on each
// served network's gateway, which is a host address: a wildcard published port DNATs every local
// address, so without an exception the containers' (and the host's) queries to their gateway went
// to the publishing container instead of tsrun's resolver (names no longer resolved; a hostile
// publisher answered them). Real containers, real queries, UDP and TCP.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { PROJECT_ROOT } from '../../harness/sandbox.js';

const CLIENT = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/dns-client.js');
const SUBNET = '10.72.0.0/24';
const GW = '10.72.0.1';
const SUBNET6 = 'fd72:72::/64';
const GW6 = 'fd72:72::1';

let w: BridgeWorld;

interface Answer {
  rcode?: string;
  answers?: { type: string; data: unknown }[];
  timeout?: boolean;
}

function parse(r: { status: number | null; stdout: string; stderr: string }): Answer {
  if (r.status !== 0 && !/timeout|ECONNREFUSED|ETIMEDOUT|ECONNRESET/.test(r.stdout + r.stderr)) throw new Error(`dns-client: ${r.stdout} ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Answer) : { timeout: true };
}

function fromContainer(id: string, server: string, name: string, type: string, tcp = false): Answer {
  return parse(w.host.ns.exec('nsenter', [`--net=${w.endpoint(id, 'pub53').netnsPath}`, '--', process.execPath, CLIENT, 'query', server, name, type, ...(tcp ? ['tcp'] : []), 'timeout=1500']));
}

function fromHost(server: string, name: string, type: string): Answer {
  return parse(w.host.ns.exec(process.execPath, [CLIENT, 'query', server, name, type, 'timeout=1500']));
}

const data = (a: Answer) => (a.answers ?? []).map((x) => x.data);

beforeAll(async () => {
  w = await BridgeWorld.create('dnsp');
  w.tsrunOk(['network', 'create', 'pub53', '--subnet', SUBNET, '--ipv6-subnet', SUBNET6]);
});
afterAll(async () => {
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

it('a container publishing port 53 on every host address does not take the gateway resolver from the others or the host', async () => {
  const a = await w.start(['--net', 'pub53'], 'sleep 600');
  const ip4 = w.ip(a.id, 'pub53');
  const ip6 = w.endpoint(a.id, 'pub53').ipv6!.address;
  expect(data(fromContainer(a.id, GW, a.id, 'A'))).toEqual([ip4]);

  // A TCP server on the published port 53 (busybox has no DNS server): what the LAN still reaches.
  const dnsServer = await w.start(['--net', 'pub53', '-p', '53:53/udp', '-p', '53:53/tcp'], 'httpd -f -p 53 -h /var/www');
  await w.waitHttp(w.ip(dnsServer.id, "pub53"), 53);
  expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:53/`)?.trim()).toBe('tsrun busybox fixture');
  for (const tcp of [false, true]) {
    expect(data(fromContainer(a.id, GW, a.id, 'A', tcp))).toEqual([ip4]);
    expect(data(fromContainer(a.id, GW6, a.id, 'AAAA', tcp))).toEqual([ip6]);
    expect(data(fromContainer(dnsServer.id, GW, a.id, 'A', tcp))).toEqual([ip4]);
  }
  expect(data(fromHost(GW, a.id, 'A'))).toEqual([ip4]);
  expect(data(fromHost(GW6, a.id, 'AAAA'))).toEqual([ip6]);
});
