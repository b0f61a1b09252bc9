// A container flooding tsrun's resolver with names forwarded to a dead server (its own --dns):
// each forwarded query held a socket until its 2.5 s deadline, with no cap, so the flood grew the
// resolver's descriptors without bound, to the open-file limit; from then on no forwarded query
// of any container got a socket (EMFILE) and every one of them failed. The same with TCP
// connections held open. Real containers, a real resolver, real queries; the resolver's limit is
// lowered to 1024 descriptors (a common default) to reach the end sooner.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BridgeWorld, OUTSIDE_IP } from '../../harness/bridge-world.js';
import { PROJECT_ROOT, waitFor } from '../../harness/sandbox.js';

const FIXTURES = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures');
const CLIENT = path.join(FIXTURES, 'dns-client.js');
const NET = 'dnsflood';
const GW = '10.64.0.1';
const DEAD = '198.51.100.9'; // on the uplink's subnet, nobody there: queries vanish

let w: BridgeWorld;
let resolvDir: string;
let upstream: ChildProcess | undefined;

function resolverPid(): number {
  const file = path.join(w.host.root, 'run', 'dns', 'resolver.pid');
  if (!existsSync(file)) throw new Error('no resolver pid file');
  return (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
}

function query(netnsPath: string, name: string, ...extra: string[]): { rcode?: string; answers?: { data: unknown }[]; timeout?: boolean } {
  const r = w.host.ns.exec('nsenter', [`--net=${netnsPath}`, '--', process.execPath, CLIENT, 'query', GW, name, 'A', ...extra]);
  if (r.status !== 0) throw new Error(`dns-client: ${r.stderr}`);
  return JSON.parse(r.stdout) as { rcode?: string; answers?: { data: unknown }[] };
}

beforeAll(async () => {
  resolvDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-dnsflood-'));
  const hostResolv = path.join(resolvDir, 'resolv.conf');
  writeFileSync(hostResolv, `nameserver ${OUTSIDE_IP}\n`);
  w = await BridgeWorld.create('dnsfl', { env: { TSRUN_RESOLV_CONF: hostResolv } });
  upstream = w.outside.spawn(process.execPath, [path.join(FIXTURES, 'dns-upstream.js'), OUTSIDE_IP, 'outside']);
  let out = '';
  upstream.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the upstream to listen', () => out.includes('listening'));
  w.tsrunOk(['network', 'create', NET, '--subnet', '10.64.0.0/24']);
});
afterAll(async () => {
  upstream?.kill();
  let pid: number | undefined;
  try {
    pid = resolverPid();
  } catch {
    // never started
  }
  await w.stopAll();
  w.host.tsrun(['network', 'rm', '--force', NET]);
  await w.destroy();
  if (pid !== undefined && existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  rmSync(resolvDir, { recursive: true, force: true });
});

it('a container flooding forwarded names and TCP connections holds a bounded share: descriptors stay bounded, another container is answered', async () => {
  const flooder = await w.start(['--net', NET, '--dns', DEAD], 'sleep 600');
  const victim = await w.start(['--net', NET], 'sleep 600');
  const victimNs = w.endpoint(victim.id, NET).netnsPath;
  const flooderNs = w.endpoint(flooder.id, NET).netnsPath;
  expect(query(victimNs, 'before.example.test').answers).toEqual([{ type: 'A', data: '203.0.113.7' }]);
  const pid = resolverPid();
  w.host.ns.sh(`prlimit --pid ${pid} --nofile=1024:1024`);
  const fds = () => Number(w.host.ns.sh(`ls /proc/${pid}/fd | wc -l`).trim());
  const before = fds();

  // The descriptors, sampled every 50 ms by a shell loop while the flood runs (the test's own
  // process blocks in the queries below).
  const sampler = w.host.ns.spawn('sh', ['-c', `for i in $(seq 120); do ls /proc/${pid}/fd 2>/dev/null | wc -l; sleep 0.05; done`]);
  let samples = '';
  sampler.stdout!.on('data', (d: Buffer) => (samples += d.toString()));
  const flood = w.host.ns.spawn('nsenter', [`--net=${flooderNs}`, '--', process.execPath, CLIENT, 'flood', GW, 'dead.example.test', '5000', 'tcp=300', 'hold=2000']);
  let floodOut = '';
  flood.stdout!.on('data', (d: Buffer) => (floodOut += d.toString()));
  try {
    await new Promise((r) => setTimeout(r, 1000));
    // In the middle of the flood, the other container's forwarded names are answered, over UDP
    // and TCP (before: no socket left for them, SERVFAIL after the deadline, or no answer).
    expect(query(victimNs, 'during.example.test', 'timeout=2000').answers).toEqual([{ type: 'A', data: '203.0.113.7' }]);
    expect(query(victimNs, 'during-tcp.example.test', 'tcp', 'timeout=2000').answers).toEqual([{ type: 'A', data: '203.0.113.7' }]);
  } finally {
    await new Promise((r) => flood.once('exit', r));
    await new Promise((r) => sampler.once('exit', r));
  }
  const result = JSON.parse(floodOut) as { sent: number; answers: number; servfail: number; connected: number; closedEarly: number };
  const most = Math.max(...samples.split('\n').filter(Boolean).map(Number));
  // At most 128 forwarded queries (a socket each) and 32 TCP connections of one client, and a few
  // for the victim's: before, one per query in flight (thousands) up to the limit.
  expect(most - before).toBeLessThanOrEqual(128 + 32 + 16);
  // What the flood asked beyond its share was answered SERVFAIL at once; its extra TCP
  // connections were closed.
  expect(result.servfail).toBeGreaterThan(result.sent / 2);
  expect(result.closedEarly).toBeGreaterThanOrEqual(300 - 32 - 8);
  // And afterwards, as before.
  expect(query(victimNs, 'after.example.test').answers).toEqual([{ type: 'A', data: '203.0.113.7' }]);
});

it('a client that sends over TCP and never reads its answers does not grow the resolver\'s memory', async () => {
  const hog = await w.start(['--net', NET], 'sleep 600');
  const other = await w.start(['--net', NET], 'sleep 600');
  const hogNs = w.endpoint(hog.id, NET).netnsPath;
  const pid = resolverPid();
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  const before = rss();
  const r = w.host.ns.exec('nsenter', [`--net=${hogNs}`, '--', process.execPath, path.join(FIXTURES, 'dns-tcp-hog.js'), GW, other.id, '8']);
  const { queued } = JSON.parse(r.stdout) as { queued: number };
  const grown = rss() - before;
  expect(queued).toBeGreaterThan(0);
  // The resolver stops reading a connection whose answers are not being read (its write buffer
  // full): what the client got in is what the kernel's buffers hold, and the resolver's memory
  // stays (measured: +5.7 MB). Before, it read on and kept every answer in memory: +142 MB and
  // +193 MB in two runs of these 8 seconds, from one connection.
  expect(grown).toBeLessThan(32 * 1024 * 1024);
  expect(query(w.endpoint(other.id, NET).netnsPath, other.id).answers).toEqual([{ type: 'A', data: w.ip(other.id, NET) }]);
});
