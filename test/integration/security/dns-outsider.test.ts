// What a LAN neighbour can reach of tsrun's DNS listeners. The resolver listens on each served
// network's gateway addresses, which are the host's own addresses: a neighbour that routes the
// container subnet via the host (or simply sends to the gateway address at the host's MAC) reaches
// them as local input, which tsrun's forward rules never see. Whatever the resolver would answer
// (REFUSED to a stranger; a container's names and a forwarded answer to a spoofed container or
// subnet source, sent into the bridge), a neighbour must not be able to query it at all: the
// listener then serves as a probe of which networks exist, a reflector, and a place to pile up
// TCP connections. tsrun's table drops port 53 to a tsrun subnet's local address from anywhere
// but a tsrun bridge or the host itself. Real containers, a real neighbour, real queries (UDP
// and TCP), live listener and kept listener alike.
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP } from '../../harness/bridge-world.js';
import { PROJECT_ROOT } from '../../harness/sandbox.js';

const CLIENT = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/dns-client.js');
const SUBNET = '10.71.0.0/24';
const GW = '10.71.0.1';
const SUBNET6 = 'fd71:71::/64';
const GW6 = 'fd71:71::1';

let w: BridgeWorld;

interface Answer {
  rcode?: string;
  answers?: { type: string; data: unknown }[];
  timeout?: boolean;
}

function query(ns: { exec: BridgeWorld['outside']['exec'] }, server: string, name: string, tcp = false): Answer {
  const r = ns.exec(process.execPath, [CLIENT, 'query', server, name, 'A', ...(tcp ? ['tcp'] : []), 'timeout=700']);
  if (r.status !== 0 && !/timeout|ECONNREFUSED|ETIMEDOUT/.test(r.stdout + r.stderr)) throw new Error(`dns-client: ${r.stdout} ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Answer) : { timeout: true };
}

/** A TCP connect from the neighbour: 'connected', an error code, or 'timeout'. */
function connectResult(host: string, port: number): string {
  const script = `const s=require('net').connect({host:${JSON.stringify(host)},port:${port}});s.setTimeout(1500,()=>{console.log('timeout');process.exit(0)});s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)})`;
  return w.outside.exec(process.execPath, ['-e', script]).stdout.trim();
}

beforeAll(async () => {
  w = await BridgeWorld.create('dnso');
  w.tsrunOk(['network', 'create', 'outsdr', '--subnet', SUBNET, '--ipv6-subnet', SUBNET6]);
  // The neighbour routes the container network via the host, as a LAN router would.
  w.outside.sh(`ip route add ${SUBNET} via ${HOST_UPLINK_IP}`);
  w.outside.sh(`ip -6 addr add fd70::2/64 dev uplink1 nodad && ip -6 route add ${SUBNET6} via fd70::1`);
  w.host.ns.sh('ip -6 addr add fd70::1/64 dev uplink0 nodad');
});
afterAll(async () => {
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

it('a LAN neighbour gets nothing from a live or a kept listener, over UDP or TCP, IPv4 or IPv6; the host and the containers still get answers', async () => {
  const c = await w.start(['--net', 'outsdr'], 'sleep 600');
  const name = c.id;
  // Served: the container and the host get the container's address.
  expect((query(w.host.ns, GW, name).answers ?? []).map((a) => a.data)).toEqual([w.ip(c.id, 'outsdr')]);
  const inside = w.host.ns.exec('nsenter', [`--net=${w.endpoint(c.id, 'outsdr').netnsPath}`, '--', process.execPath, CLIENT, 'query', GW, name, 'A', 'timeout=1500']);
  expect(JSON.parse(inside.stdout).answers.map((a: { data: unknown }) => a.data)).toEqual([w.ip(c.id, 'outsdr')]);

  for (const server of [GW, GW6]) {
    // The neighbour does reach the gateway (a closed port answers with a reset), so what follows
    // is the rule, not routing.
    expect(connectResult(server, 54)).toBe('ECONNREFUSED');
    expect(query(w.outside, server, name)).toEqual({ timeout: true });
    expect(query(w.outside, server, name, true).timeout).toBe(true);
  }

  // Kept after the last container: still bound, and still out of the neighbour's reach.
  await c.stop();
  expect((JSON.parse(w.tsrunOk(['resolver', '--stats'])) as { listening: string[] }).listening).toContain(GW);
  expect(query(w.host.ns, GW, name)).toMatchObject({ rcode: 'REFUSED' });
  for (const server of [GW, GW6]) {
    expect(query(w.outside, server, name)).toEqual({ timeout: true });
    expect(query(w.outside, server, name, true).timeout).toBe(true);
  }
});
