// `tsrun network connect` and `disconnect` end to end: real containers (run -d under conmon, and
// one in the foreground) on two bridge networks in a sandbox host, with real runc, nft and the
// resolver. A connection is eth1 in the container, resolves and is resolved by name on its new
// network, keeps the networks isolated from each other, survives a restart, and goes with rm, stop
// or the container's end; bad input is one line and leaves nothing; a signal or a SIGKILL during a
// connect leaves nothing that the next connect or the container's teardown does not take.
import { expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { withConmonWorld } from '../harness/conmon-world.js';
import { BridgeWorld } from '../harness/bridge-world.js';
import { uniqueId, waitFor } from '../harness/sandbox.js';

const A = 'u9cna';
const B = 'u9cnb';
const GW_B = '10.193.2.1';

let w: BridgeWorld;

const describeIf = withConmonWorld(
  'network connect',
  async () => {
    const world = await BridgeWorld.create('u9conn', { outside: false });
    world.tsrunOk(['network', 'create', A, '--subnet', '10.193.1.0/24']);
    world.tsrunOk(['network', 'create', B, '--subnet', '10.193.2.0/24', '--ipv6-subnet', 'fd00:193:2::/64']);
    return world;
  },
  (world) => (w = world),
  (world) => world.host.tsrun(['network', 'rm', A, B]),
);

function tsrun(args: string[], env?: NodeJS.ProcessEnv) {
  return w.host.tsrun(args, env ? { env } : {});
}

function ok(args: string[]): string {
  const r = tsrun(args);
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
  expect(r.stderr).toBe('');
  return r.stdout;
}

/** A one-line refusal: exit status and the line. */
function refused(args: string[], status: number, line: RegExp): void {
  const r = tsrun(args);
  expect({ status: r.status, stdout: r.stdout }).toEqual({ status, stdout: '' });
  expect(r.stderr.trim()).toMatch(line);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
}

function runD(args: string[], prefix = 'cn'): string {
  const id = uniqueId(prefix);
  w.ids.push(id);
  expect(ok(['run', '-d', '--name', id, ...args, w.bundle, '--', 'sleep', '1000']).trim()).toBe(id);
  return id;
}

/** `ip -o addr` inside, as "ifname address" lines of one family. */
function addrs(id: string, family: 4 | 6 = 4): string[] {
  const out = ok(['exec', id, 'ip', `-${family}`, '-o', 'addr']);
  return out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)).filter((f) => f[1] !== 'lo' && !f[3]!.startsWith('fe80')).map((f) => `${f[1]} ${f[3]!.split('/')[0]}`);
}

const reaches = (from: string, ip: string) => tsrun(['exec', from, 'ping', '-c1', '-W1', ip]).status === 0;
// A trailing dot: busybox's nslookup tries only the first search domain (NAME.<its first network>).
const resolves = (from: string, name: string) => (tsrun(['exec', from, 'nslookup', `${name}.`]).stdout.match(/^Address:\s+(\S+)$/gm) ?? []).map((l) => l.split(/\s+/)[1]!).filter((a) => !a.includes(':')); // IPv4 answers (the server line has :53)
const configured = (id: string) => (JSON.parse(ok(['inspect', id]))[0].config.connections ?? []).map((c: { network: string }) => c.network);

describeIf('tsrun network connect / disconnect', () => {
  it('connects a running container as eth1: names both ways, reachability, isolation kept, a restart keeps it, disconnect undoes it', async () => {
    const c1 = runD(['--net', A]);
    const c2 = runD(['--net', B, '--network-alias', 'bee']);
    const c3 = runD(['--net', A]);
    const ipC2 = w.ip(c2, B);
    expect(ok(['network', 'connect', '--alias', 'both', B, c1])).toBe('');

    const ipC1b = w.ip(c1, B);
    expect(addrs(c1)).toEqual([`eth0 ${w.ip(c1, A)}`, `eth1 ${ipC1b}`]);
    expect(addrs(c1, 6)).toEqual([`eth1 ${w.endpoint(c1, B).ipv6!.address}`]); // dual stack from B
    expect(ok(['exec', c1, 'ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.193\.1\.1 dev eth0/); // the first network keeps it
    // Names: c1 finds B's containers, B's containers find c1 by its id and its new alias.
    expect(resolves(c1, 'bee')).toEqual([ipC2]);
    expect(resolves(c2, c1)).toEqual([ipC1b]);
    expect(resolves(c2, 'both')).toEqual([ipC1b]);
    expect(reaches(c1, ipC2)).toBe(true);
    expect(reaches(c2, ipC1b)).toBe(true);
    // Isolation: c3 (A only) reaches neither B nor c1's B address; c1 does not forward for it.
    expect(reaches(c3, ipC2)).toBe(false);
    expect(reaches(c3, ipC1b)).toBe(false);
    expect(resolves(c3, 'bee')).toEqual([]);
    expect(ok(['ps', '--format', 'json'])).toContain(`"network": "${B}"`);

    // Twice: refused; on the network it already has: refused.
    refused(['network', 'connect', B, c1], 125, new RegExp(`^tsrun: container ${c1} is already connected to network ${B}$`));
    refused(['network', 'connect', A, c1], 125, /is already connected to network/);
    expect(configured(c1)).toEqual([B]);

    // stop + restart: created again with both networks (new leases), the alias too.
    ok(['stop', '-t', '0', c1]);
    expect(existsSync(path.join(w.host.root, 'lib', 'store', 'endpoints', c1))).toBe(false);
    ok(['restart', '-t', '0', c1]);
    const again = w.ip(c1, B);
    expect(addrs(c1)).toEqual([`eth0 ${w.ip(c1, A)}`, `eth1 ${again}`]);
    expect(resolves(c2, 'both')).toEqual([again]);
    expect(reaches(c1, ipC2)).toBe(true);

    // Disconnect its first network: eth0 goes, the default route and resolv.conf move to B.
    ok(['network', 'disconnect', A, c1]);
    expect(addrs(c1)).toEqual([`eth1 ${again}`]);
    expect(ok(['exec', c1, 'ip', 'route', 'show', 'default'])).toMatch(/^default via 10\.193\.2\.1 dev eth1/);
    expect(ok(['exec', c1, 'cat', '/etc/resolv.conf'])).toContain(`nameserver ${GW_B}`);
    expect(resolves(c1, 'bee')).toEqual([ipC2]);
    expect(resolves(c3, c1)).toEqual([]);
    expect(JSON.parse(ok(['inspect', c1]))[0].config.net).toEqual({ kind: 'network', network: B });
    // Its last network, and one it is not on: refused.
    refused(['network', 'disconnect', B, c1], 125, new RegExp(`^tsrun: container ${c1}: network ${B} is its only network`));
    refused(['network', 'disconnect', A, c1], 125, new RegExp(`^tsrun: container ${c1} is not connected to network ${A}$`));
    expect(ok(['network', 'disconnect', '-f', A, c1])).toBe('');

    // Connected again to A, as eth2 with a static address: then rm takes every endpoint.
    ok(['network', 'connect', '--ip', '10.193.1.77', A, c1]);
    expect(addrs(c1)).toEqual([`eth1 ${again}`, 'eth2 10.193.1.77']);
    expect(reaches(c3, '10.193.1.77')).toBe(true);
    // Stopped, it can still be disconnected (its configuration): the restart has only B.
    ok(['stop', '-t', '0', c1]);
    ok(['network', 'disconnect', A, c1]);
    expect(configured(c1)).toEqual([]);
    ok(['restart', '-t', '0', c1]);
    expect(addrs(c1).map((l) => l.split(' ')[0])).toEqual(['eth0']);
  });

  it('refuses what docker refuses, with one line and nothing left', () => {
    const host = runD(['--net', 'host']);
    const none = runD(['--net', 'none']);
    const owner = runD(['--net', A]);
    const joiner = runD(['--net', `container:${owner}`]);
    refused(['network', 'connect', B, host], 125, /uses the host's network \(--net host\)/);
    refused(['network', 'connect', B, none], 125, /has no network \(--net none\): it cannot be connected/);
    refused(['network', 'disconnect', A, none], 125, /cannot be disconnected/);
    refused(['network', 'connect', B, joiner], 125, new RegExp(`shares the network namespace of container ${owner}`));
    refused(['network', 'connect', B, 'u9-no-such'], 1, /^tsrun: no such container: u9-no-such$/);
    refused(['network', 'connect', 'u9-no-net', owner], 125, /network u9-no-net not found/);
    refused(['network', 'connect', '--ip', '10.193.2', B, owner], 125, /invalid --ip "10\.193\.2"/);
    refused(['network', 'connect', '--ip6', '10.193.2.9', B, owner], 125, /invalid --ip6/);
    refused(['network', 'connect', '--ip', '10.193.1.9', B, owner], 125, /not in subnet 10\.193\.2\.0\/24/);
    refused(['network', 'connect', '--alias', 'no good', B, owner], 125, /invalid --alias/);
    refused(['network', 'connect', '--mac', '01:00:5e:00:00:01', B, owner], 125, /invalid --mac/);
    refused(['network', 'connect', B], 125, /missing required argument 'container'/);
    ok(['stop', '-t', '0', owner]);
    refused(['network', 'connect', B, owner], 125, /is not running/);
    // None of it made anything: the owner has no B endpoint, no B lease.
    expect(existsSync(path.join(w.host.root, 'lib', 'store', 'endpoints', owner, B))).toBe(false);
    expect(w.host.storeLeaks().filter((l) => l.includes(`/${B}/`))).toEqual([]);
  });

  it('connects a container run in the foreground; its end takes the connection with it', async () => {
    const c = await w.start(['--net', A], 'sleep 1000', 'cnf');
    ok(['network', 'connect', B, c.id]);
    expect(addrs(c.id).map((l) => l.split(' ')[0])).toEqual(['eth0', 'eth1']);
    expect(w.ip(c.id, B)).toMatch(/^10\.193\.2\./);
    expect(await c.stop()).toBe(0);
    expect(existsSync(path.join(w.host.root, 'lib', 'store', 'endpoints', c.id))).toBe(false);
  });

  it('a signal during a connect undoes it; a connect SIGKILLed at any step is cleaned up by the next one', async () => {
    const c = runD(['--net', A]);
    const recordOf = path.join(w.host.root, 'lib', 'store', 'endpoints', c, B);
    // SIGTERM once attached (held there 3 s by the fault pause): one line, 125, nothing kept.
    const child = w.host.spawnTsrun(['network', 'connect', B, c], { TSRUN_FAULT_PAUSE_AT: 'connected:3000' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor('the connect to attach', () => existsSync(recordOf), 15_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(125);
    expect(stderr).toMatch(/^tsrun: interrupted by SIGTERM: not connected\n$/);
    expect(existsSync(recordOf)).toBe(false);
    expect(addrs(c).map((l) => l.split(' ')[0])).toEqual(['eth0']);
    expect(w.host.storeLeaks().filter((l) => l.includes(`/${B}/`))).toEqual([]);
    expect(ok(['exec', c, 'cat', '/etc/resolv.conf'])).not.toContain(GW_B);

    // SIGKILL after each setup step in turn (runtime/tx.ts TSRUN_FAULT_KILL_AFTER) until one
    // completes: each next connect first releases what the killed one left, and the connect that
    // was killed after its attach but before its configuration is finished by the next.
    let k = 1;
    for (; k < 40; k++) {
      const r = tsrun(['network', 'connect', B, c], { TSRUN_FAULT_KILL_AFTER: `setup:${k}` });
      if (r.status === 0) break;
      expect({ status: r.status, signal: r.signal }).toEqual({ status: null, signal: 'SIGKILL' });
    }
    expect(k).toBeGreaterThan(5);
    // Connected or finished by this one: one eth1, one B lease, in the configuration.
    const again = tsrun(['network', 'connect', B, c]);
    expect(again.stderr).toMatch(/already connected/);
    expect(addrs(c).map((l) => l.split(' ')[0])).toEqual(['eth0', 'eth1']);
    expect(w.host.storeLeaks().filter((l) => l.startsWith(`lease ipam/${B}/`))).toHaveLength(2); // IPv4 and IPv6
    expect(configured(c)).toEqual([B]);
    expect(readFileSync(recordOf, 'utf8')).toContain('"ifname":"eth1"');
  });
});
