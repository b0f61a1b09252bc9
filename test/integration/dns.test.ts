// The DNS resolver end to end: real containers on user networks in a sandbox host, real queries
// from inside them (busybox nslookup through the generated resolv.conf, and a small client for
// exact answers), an upstream server in the "outside" namespace and one on the host's loopback.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BridgeWorld, HOST_UPLINK_IP, OUTSIDE_IP } from '../harness/bridge-world.js';
import { PROJECT_ROOT, waitFor } from '../harness/sandbox.js';

const FIXTURES = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures');
const CLIENT = path.join(FIXTURES, 'dns-client.js');
const GW_A = '10.61.0.1';
const GW_B = '10.62.0.1';
const DEAD = '198.51.100.9'; // on the uplink's subnet, nobody there: queries vanish

let w: BridgeWorld;
let resolvDir: string;
let hostResolv: string;
const upstreams: ChildProcess[] = [];

function setHostResolvers(text: string): void {
  writeFileSync(hostResolv, text);
}

async function startUpstream(where: 'outside' | 'host', address: string, tag: string, ...mode: string[]): Promise<ChildProcess & { out: () => string }> {
  const ns = where === 'outside' ? w.outside : w.host.ns;
  const child = ns.spawn(process.execPath, [path.join(FIXTURES, 'dns-upstream.js'), address, tag, ...mode]);
  upstreams.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`upstream ${tag} to listen`, () => out.includes('listening'));
  return Object.assign(child, { out: () => out });
}

interface Answer {
  rcode?: string;
  tc?: boolean;
  answers?: { type: string; data: unknown }[];
  timeout?: boolean;
}

/** One query from inside container `id` (attached to `network`) to `server`. */
function query(id: string, network: string, server: string, name: string, type = 'A', ...extra: string[]): Answer {
  const r = w.host.ns.exec('nsenter', [`--net=${w.endpoint(id, network).netnsPath}`, '--', process.execPath, CLIENT, 'query', server, name, type, ...extra]);
  if (r.status !== 0) throw new Error(`dns-client: ${r.stderr}`);
  return JSON.parse(r.stdout) as Answer;
}
const addresses = (a: Answer) => (a.answers ?? []).map((x) => String(x.data)).sort();

function resolverPid(): number | undefined {
  const file = path.join(w.host.root, 'run', 'dns', 'resolver.pid');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid : undefined;
}
const alive = (pid: number) => existsSync(`/proc/${pid}`);

beforeAll(async () => {
  resolvDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-dns-'));
  hostResolv = path.join(resolvDir, 'resolv.conf');
  setHostResolvers(`nameserver ${OUTSIDE_IP}\nsearch corp.example\n`);
  w = await BridgeWorld.create('dns', { env: { TSRUN_RESOLV_CONF: hostResolv } });
  await startUpstream('outside', OUTSIDE_IP, 'outside');
  w.tsrunOk(['network', 'create', 'dnsa', '--subnet', '10.61.0.0/24', '--ipv6-subnet', 'fd00:61::/64']);
  w.tsrunOk(['network', 'create', 'dnsb', '--subnet', '10.62.0.0/24']);
});
afterAll(async () => {
  for (const u of upstreams) u.kill();
  const pid = resolverPid();
  await w.destroy();
  if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(resolvDir, { recursive: true, force: true });
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
  setHostResolvers(`nameserver ${OUTSIDE_IP}\nsearch corp.example\n`);
});

describe('names on a user network', () => {
  it('resolves a container by name and by each alias (A, AAAA, PTR, NAME.NETWORK) through its resolv.conf', async () => {
    const db = await w.start(['--net', 'dnsa', '--network-alias', 'db', '--network-alias', 'primary'], 'sleep 600');
    const ip = w.ip(db.id, 'dnsa');
    const ip6 = w.endpoint(db.id, 'dnsa').ipv6!.address;
    // busybox's own resolver, reading the generated /etc/resolv.conf (search domain included)
    const r = w.run(['--net', 'dnsa'], ['sh', '-c', `cat /etc/resolv.conf; nslookup db; nslookup -type=aaaa primary; nslookup ${db.id}.dnsa; nslookup ${ip}`]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`nameserver ${GW_A}\nnameserver fd00:61::1\n`);
    expect(r.stdout).toContain('search dnsa corp.example\n');
    expect(r.stdout).not.toContain(`nameserver ${OUTSIDE_IP}`);
    expect(r.stdout).toMatch(new RegExp(`Name:\\s+db(\\.dnsa)?\\nAddress: ${ip.replace(/\./g, '\\.')}`));
    expect(r.stdout).toContain(`Address: ${ip6}`);
    expect(r.stdout).toContain(`name = ${db.id}.dnsa`);

    const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
    expect(addresses(query(cl.id, 'dnsa', GW_A, db.id))).toEqual([ip]);
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'PRIMARY'))).toEqual([ip]);
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'db.dnsa'))).toEqual([ip]);
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'db', 'AAAA'))).toEqual([ip6]);
    expect(query(cl.id, 'dnsa', GW_A, `${ip.split('.').reverse().join('.')}.in-addr.arpa`, 'PTR').answers).toEqual([{ type: 'PTR', data: `${db.id}.dnsa` }]);
    expect(query(cl.id, 'dnsa', GW_A, 'nobody').rcode).toBe('NXDOMAIN');
    expect(query(cl.id, 'dnsa', GW_A, 'db', 'MX')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    // the same over TCP, and on the network's IPv6 gateway
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'db', 'A', 'tcp'))).toEqual([ip]);
    expect(addresses(query(cl.id, 'dnsa', 'fd00:61::1', 'db', 'AAAA'))).toEqual([ip6]);
    expect(addresses(query(cl.id, 'dnsa', 'fd00:61::1', 'db', 'A', 'tcp'))).toEqual([ip]);
    // Asked again: answered from the listener's cache through the batched socket (udp-batch.ts),
    // with this query's own ID (the client drops an answer with another), on both families.
    for (let i = 0; i < 2; i++) {
      expect(addresses(query(cl.id, 'dnsa', GW_A, 'PRIMARY'))).toEqual([ip]);
      expect(addresses(query(cl.id, 'dnsa', 'fd00:61::1', 'db', 'AAAA'))).toEqual([ip6]);
      expect(query(cl.id, 'dnsa', GW_A, 'nobody').rcode).toBe('NXDOMAIN');
    }
  });

  it('scopes names to the networks a container shares; a container on two networks sees both', async () => {
    const a = await w.start(['--net', 'dnsa', '--network-alias', 'alpha'], 'sleep 600');
    const b = await w.start(['--net', 'dnsb', '--network-alias', 'beta'], 'sleep 600');
    expect(query(a.id, 'dnsa', GW_A, 'beta').rcode).toBe('NXDOMAIN');
    expect(query(a.id, 'dnsa', GW_A, 'beta.dnsb').rcode).toBe('NXDOMAIN');
    expect(query(b.id, 'dnsb', GW_B, 'alpha').rcode).toBe('NXDOMAIN');
    expect(addresses(query(b.id, 'dnsb', GW_B, 'beta'))).toEqual([w.ip(b.id, 'dnsb')]);

    // `tsrun run` takes one --net: the second network is attached through the engine, as the
    // hook and the CNI plugin do for a runtime that connects a container to several networks.
    const c = await w.start(['--net', 'dnsa', '--network-alias', 'gamma'], 'sleep 600');
    const connect = w.host.ns.exec(process.execPath, [path.join(FIXTURES, 'dns-churn.js'), 'connect', c.id, 'dnsb', 'eth1', 'gamma2'], { env: w.host.env });
    expect(connect.stderr).toBe('');
    expect(connect.status).toBe(0);
    // c asks its first network's gateway and sees the names of both
    expect(addresses(query(c.id, 'dnsa', GW_A, 'alpha'))).toEqual([w.ip(a.id, 'dnsa')]);
    expect(addresses(query(c.id, 'dnsa', GW_A, 'beta'))).toEqual([w.ip(b.id, 'dnsb')]);
    // b sees c by its address on the network they share, by name and by its alias there only
    expect(addresses(query(b.id, 'dnsb', GW_B, 'gamma2'))).toEqual([w.ip(c.id, 'dnsb')]);
    expect(addresses(query(b.id, 'dnsb', GW_B, c.id))).toEqual([w.ip(c.id, 'dnsb')]);
    expect(query(b.id, 'dnsb', GW_B, 'gamma').rcode).toBe('NXDOMAIN');
  });

  it('a detached container (run -d) gets the same resolv.conf and is resolved by name', async () => {
    const id = `det-${process.pid}`;
    w.ids.push(id);
    const started = w.host.tsrun(['run', '-d', '--name', id, '--net', 'dnsa', '--network-alias', 'detached', w.bundle, '--', 'sh', '-c', 'cat /etc/resolv.conf; sleep 600']);
    expect(started.stderr).toBe('');
    try {
      const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
      expect(addresses(query(cl.id, 'dnsa', GW_A, 'detached'))).toEqual([w.ip(id, 'dnsa')]);
      await waitFor('its log', () => w.host.tsrun(['logs', id]).stdout.includes('search dnsa'));
      expect(w.host.tsrun(['logs', id]).stdout).toContain(`nameserver ${GW_A}\n`);
    } finally {
      w.host.tsrun(['rm', '-f', id]);
    }
    await w.stopAll();
  });

  it('answers the host at the gateway; a stranger that can route to it gets nothing (tsrun\'s table drops it)', async () => {
    const db = await w.start(['--net', 'dnsa', '--network-alias', 'db'], 'sleep 600');
    const fromHost = w.host.ns.exec(process.execPath, [CLIENT, 'query', GW_A, 'db', 'A']);
    expect(addresses(JSON.parse(fromHost.stdout) as Answer)).toEqual([w.ip(db.id, 'dnsa')]);
    w.outside.sh(`ip route replace 10.61.0.0/24 via ${HOST_UPLINK_IP}`);
    try {
      for (const name of ['db', 'www.example.test']) {
        // Not even REFUSED: see test/integration/security/dns-outsider.test.ts.
        const r = w.outside.exec(process.execPath, [CLIENT, 'query', GW_A, name, 'A', 'timeout=700']);
        expect(JSON.parse(r.stdout)).toEqual({ timeout: true });
      }
    } finally {
      w.outside.sh('ip route del 10.61.0.0/24');
    }
  });

  it('resolves containers started after the resolver, and answers NXDOMAIN once they are gone', async () => {
    const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
    expect(query(cl.id, 'dnsa', GW_A, 'late').rcode).toBe('NXDOMAIN');
    const late = await w.start(['--net', 'dnsa', '--network-alias', 'late'], 'sleep 600');
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'late'))).toEqual([w.ip(late.id, 'dnsa')]);
    await late.stop();
    expect(query(cl.id, 'dnsa', GW_A, 'late').rcode).toBe('NXDOMAIN');
    expect(query(cl.id, 'dnsa', GW_A, late.id).rcode).toBe('NXDOMAIN');
  });

  it('serves a network created while it runs from its first container on (a full re-read: the networks changed)', async () => {
    const a = await w.start(['--net', 'dnsa', '--network-alias', 'first'], 'sleep 600');
    const pid = resolverPid()!;
    w.tsrunOk(['network', 'create', 'dnsc', '--subnet', '10.65.0.0/24']);
    try {
      const c = await w.start(['--net', 'dnsc', '--network-alias', 'third'], 'sleep 600');
      const d = await w.start(['--net', 'dnsc'], 'sleep 600');
      expect(resolverPid()).toBe(pid); // the same resolver took the new network
      expect(addresses(query(d.id, 'dnsc', '10.65.0.1', 'third'))).toEqual([w.ip(c.id, 'dnsc')]);
      expect(query(d.id, 'dnsc', '10.65.0.1', 'first').rcode).toBe('NXDOMAIN');
      expect(addresses(query(a.id, 'dnsa', GW_A, 'first'))).toEqual([w.ip(a.id, 'dnsa')]);
      const fromHost = w.host.ns.exec(process.execPath, [CLIENT, 'query', '10.65.0.1', 'third', 'A']);
      expect(addresses(JSON.parse(fromHost.stdout) as Answer)).toEqual([w.ip(c.id, 'dnsc')]);
      await d.stop();
      expect(query(c.id, 'dnsc', '10.65.0.1', d.id).rcode).toBe('NXDOMAIN');
      await w.stopAll();
    } finally {
      w.tsrunOk(['network', 'rm', 'dnsc']);
    }
  });
});

describe('full re-reads', () => {
  const generation = () => (JSON.parse(w.tsrunOk(['resolver', '--stats'])) as { generation: number }).generation;
  const reread = async (pid: number, until: (g: number) => boolean, what: string) => {
    process.kill(pid, 'SIGHUP'); // a full re-read, as the periodic one every 10 s
    await new Promise((r) => setTimeout(r, 300));
    await waitFor(what, () => until(generation()), 5000);
  };

  it('a re-read that finds nothing new keeps the table and its cached answers; one that finds a change made behind its back serves it', async () => {
    const a = await w.start(['--net', 'dnsa', '--network-alias', 'kept'], 'sleep 600');
    const pid = resolverPid()!;
    expect(addresses(query(a.id, 'dnsa', GW_A, 'kept'))).toEqual([w.ip(a.id, 'dnsa')]);
    // Nothing changed: the same generation (no cached answer dropped), the same answers. (The host's
    // addresses are part of the table, and a new veth's IPv6 link-local address comes a moment
    // after it is up: re-read until one finds nothing new; before, every re-read was a new table.)
    let before = generation();
    let kept = false;
    for (let i = 0; i < 10 && !kept; i++) {
      process.kill(pid, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 500));
      const now = generation();
      kept = now === before;
      before = now;
    }
    expect(kept).toBe(true);
    expect(addresses(query(a.id, 'dnsa', GW_A, 'kept'))).toEqual([w.ip(a.id, 'dnsa')]);
    // A record written by hand (no reload asked for): the next full re-read serves it.
    const store = path.join(w.host.root, 'lib', 'store', 'endpoints');
    const rec = JSON.parse(readFileSync(path.join(store, a.id, 'dnsa'), 'utf8')) as Record<string, unknown>;
    const ghost = 'ghost0000000000000000000000000000000000000000000000000000000001';
    let withGhost = before;
    mkdirSync(path.join(store, ghost));
    try {
      writeFileSync(path.join(store, ghost, 'dnsa'), JSON.stringify({ ...rec, containerId: ghost, aliases: ['ghostly'], ipv4: { ...(rec.ipv4 as object), address: '10.61.0.250' } }));
      await reread(pid, (g) => g > before, 'the re-read to see the record');
      expect(addresses(query(a.id, 'dnsa', GW_A, 'ghostly'))).toEqual(['10.61.0.250']);
    } finally {
      // The generation with the ghost in the table, read before it goes: read after, a periodic
      // re-read in between (every 10 s) could already have moved it past the removal.
      withGhost = generation();
      rmSync(path.join(store, ghost), { recursive: true, force: true });
    }
    await reread(pid, (g) => g > withGhost, 'the re-read to see it gone');
    expect(query(a.id, 'dnsa', GW_A, 'ghostly').rcode).toBe('NXDOMAIN');
    expect(addresses(query(a.id, 'dnsa', GW_A, 'kept'))).toEqual([w.ip(a.id, 'dnsa')]);
  });
});

describe('forwarding', () => {
  it('forwards other names to the host\'s resolvers, and to --dns servers', async () => {
    const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'www.example.test'))).toEqual(['203.0.113.7']);
    expect(query(cl.id, 'dnsa', GW_A, 'nothing.invalid').rcode).toBe('NXDOMAIN');
    // busybox through resolv.conf too
    const r = w.run(['--net', 'dnsa'], ['nslookup', 'www.example.test']);
    expect(r.stdout).toContain('Address: 203.0.113.7');

    // a host with only a dead server; the container names its own with --dns
    setHostResolvers(`nameserver ${DEAD}\n`);
    const own = await w.start(['--net', 'dnsa', '--dns', OUTSIDE_IP], 'sleep 600');
    expect(addresses(query(own.id, 'dnsa', GW_A, 'www.example.test'))).toEqual(['203.0.113.7']);
  });

  it('each forwarded query leaves from its own random port; forged answers (another port, ID or question) are ignored', async () => {
    const SPOOF = '198.51.100.3';
    w.outside.sh(`ip addr add ${SPOOF}/24 dev uplink1`);
    const spoofer = await startUpstream('outside', SPOOF, 'spoof', 'spoof');
    const cl = await w.start(['--net', 'dnsa', '--dns', SPOOF], 'sleep 600');
    for (let i = 0; i < 6; i++) expect(addresses(query(cl.id, 'dnsa', GW_A, `s${i}.example.test`))).toEqual(['203.0.113.7']);
    // query() blocks this process: the spoofer's output is read after the queries
    await waitFor('the spoofer to report 6 queries', () => (spoofer.out().match(/^port /gm) ?? []).length >= 6);
    const ports = [...spoofer.out().matchAll(/^port (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ports).toHaveLength(6);
    expect(new Set(ports).size).toBe(6);
    spoofer.kill();
    w.outside.sh(`ip addr del ${SPOOF}/24 dev uplink1`);
  });

  it('a dead first upstream still gets an answer within a 1 s client timeout, every time', async () => {
    setHostResolvers(`nameserver ${DEAD}\nnameserver ${OUTSIDE_IP}\n`);
    const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
    for (let i = 0; i < 5; i++) {
      const a = query(cl.id, 'dnsa', GW_A, `n${i}.example.test`, 'A', 'timeout=1000');
      expect(a.timeout).toBeUndefined();
      expect(addresses(a)).toEqual(['203.0.113.7']);
    }
  });

  it('uses a resolver on the host\'s loopback, and never hands a container a loopback server', async () => {
    await startUpstream('host', '127.0.0.53', 'loopback');
    setHostResolvers('nameserver 127.0.0.53\n');
    const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
    expect(query(cl.id, 'dnsa', GW_A, 'www.example.test', 'TXT').answers).toEqual([{ type: 'TXT', data: 'loopback' }]);
    // the default network serves no names, but with only a loopback resolver on the host its
    // containers are pointed at the resolver, which forwards for them
    const r = w.run([], ['sh', '-c', 'cat /etc/resolv.conf; nslookup www.example.test']);
    expect(r.stdout).not.toContain('127.0.0.53');
    expect(r.stdout).toMatch(/nameserver 10\.88\.0\.1\n/);
    expect(r.stdout).toContain('Address: 203.0.113.7');
  });

  it('the default network keeps docker\'s behaviour: the host\'s resolvers copied, no names', async () => {
    const named = w.run(['--network-alias', 'x'], ['true']);
    expect(named.status).toBe(125);
    expect(named.stderr).toBe('tsrun: --network-alias: network tsrun has no name resolution (aliases need a network with DNS on)\n');
    const r = w.run([], ['cat', '/etc/resolv.conf']);
    expect(r.stdout).toBe(`# generated by tsrun\nnameserver ${OUTSIDE_IP}\nsearch corp.example\n`);
  });

  it('answers larger than 512 bytes: truncated over UDP, whole over TCP and with EDNS0', async () => {
    const cl = await w.start(['--net', 'dnsa'], 'sleep 600');
    const udp = query(cl.id, 'dnsa', GW_A, 'big.example.test');
    expect(udp).toMatchObject({ tc: true, answers: [] });
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'big.example.test', 'A', 'tcp'))).toHaveLength(40);
    expect(addresses(query(cl.id, 'dnsa', GW_A, 'big.example.test', 'A', 'edns=4096'))).toHaveLength(40);
  });
});

describe('the resolver process', () => {
  it('loses no query while 50 containers attach and detach', async () => {
    const db = await w.start(['--net', 'dnsa', '--network-alias', 'db'], 'sleep 600');
    const ip = w.ip(db.id, 'dnsa');
    const stopFile = path.join(resolvDir, 'stop-storm');
    const storm = w.host.ns.spawn('nsenter', [`--net=${w.endpoint(db.id, 'dnsa').netnsPath}`, '--', process.execPath, CLIENT, 'storm', GW_A, 'db', ip, stopFile]);
    let out = '';
    storm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const ended = new Promise((r) => storm.once('exit', r));
    try {
      const churn = w.host.ns.exec(process.execPath, [path.join(FIXTURES, 'dns-churn.js'), 'churn', 'churn', '50', 'dnsa'], { env: w.host.env, timeoutMs: 120_000 });
      expect(churn.stderr).toBe('');
      expect(churn.stdout).toBe('done\n');
    } finally {
      writeFileSync(stopFile, '');
      await ended;
      rmSync(stopFile, { force: true });
    }
    const counts = JSON.parse(out) as { sent: number; answered: number; wrong: number; lost: number };
    expect(counts.sent).toBeGreaterThan(100);
    expect(counts).toEqual({ sent: counts.sent, answered: counts.sent, wrong: 0, lost: 0 });
  });

  it('is restarted by the next tsrun command after it was killed, and knows every name again', async () => {
    const db = await w.start(['--net', 'dnsa', '--network-alias', 'db'], 'sleep 600');
    const before = resolverPid()!;
    expect(alive(before)).toBe(true);
    process.kill(before, 'SIGKILL');
    await waitFor('the resolver to die', () => !alive(before));
    w.tsrunOk(['network', 'ls']);
    await waitFor('a new resolver', () => {
      const now = resolverPid();
      return now !== undefined && now !== before && alive(now);
    });
    await waitFor('the name to resolve again', () => addresses(query(db.id, 'dnsa', GW_A, 'db')).join() === w.ip(db.id, 'dnsa'));
    const gc = JSON.parse(w.tsrunOk(['gc'])) as { resolver?: string };
    expect(gc.resolver).toBe('running');
  });

  it('is restarted by a tsrun run --net none too (the plain door loads its client only then)', async () => {
    const db = await w.start(['--net', 'dnsa', '--network-alias', 'db'], 'sleep 600');
    const before = resolverPid()!;
    expect(alive(before)).toBe(true);
    process.kill(before, 'SIGKILL');
    await waitFor('the resolver to die', () => !alive(before));
    expect(w.run(['--net', 'none'], ['true']).status).toBe(0);
    await waitFor('a new resolver', () => {
      const now = resolverPid();
      return now !== undefined && now !== before && alive(now);
    });
    await waitFor('the name to resolve again', () => addresses(query(db.id, 'dnsa', GW_A, 'db')).join() === w.ip(db.id, 'dnsa'));
  });

  it('serves internal networks: names resolve, nothing is forwarded', async () => {
    w.tsrunOk(['network', 'create', 'vault', '--internal', '--subnet', '10.63.0.0/24']);
    try {
      const a = await w.start(['--net', 'vault', '--network-alias', 'safe'], 'sleep 600');
      const b = await w.start(['--net', 'vault'], 'sleep 600');
      expect(addresses(query(b.id, 'vault', '10.63.0.1', 'safe'))).toEqual([w.ip(a.id, 'vault')]);
      expect(query(b.id, 'vault', '10.63.0.1', 'www.example.test').rcode).toBe('REFUSED');
      await w.stopAll();
    } finally {
      w.tsrunOk(['network', 'rm', 'vault']);
    }
  });

  it('network create --disable-dns: no names, the host\'s resolvers copied', async () => {
    w.tsrunOk(['network', 'create', 'quiet', '--disable-dns', '--subnet', '10.64.0.0/24']);
    try {
      await w.start(['--net', 'quiet'], 'sleep 600');
      const r = w.run(['--net', 'quiet'], ['cat', '/etc/resolv.conf']);
      expect(r.stdout).toBe(`# generated by tsrun\nnameserver ${OUTSIDE_IP}\nsearch corp.example\n`);
      await w.stopAll();
    } finally {
      w.tsrunOk(['network', 'rm', 'quiet']);
    }
  });

  it('exits once no container uses it', async () => {
    const c = await w.start(['--net', 'dnsa'], 'sleep 600');
    const pid = resolverPid()!;
    expect(alive(pid)).toBe(true);
    await c.stop();
    await waitFor('the resolver to exit', () => !alive(pid) && resolverPid() === undefined, 15_000);
  });
});
