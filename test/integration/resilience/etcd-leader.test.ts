// The etcd leader dies in the middle of 50 overlay attaches (issue 11). Three simulated hosts
// (test/harness/overlay-cluster.ts), each with its own `tsrun agent`, share a three-member etcd
// cluster (each member in a namespace of its own on the underlay; every host's store URL names
// all three). 50 detached containers (`tsrun run -d`) are attached, a few at a time, spread over
// the hosts; the leader is SIGKILLed after the first ones and, once that member is back, the
// leader of that moment later on (two leader changes, each with commits in flight). Then:
//   - every attach succeeded, or failed with one line on stderr;
//   - a success has an address that is unique across the cluster, seen inside its namespace,
//     with its lease and its endpoint record in etcd;
//   - a failure left nothing: no pin, state, local record, link, lease, endpoint record or
//     firewall element, and no etcd key of the network is held for a container that does not
//     exist (an uncertain commit retried must not leak a lease);
//   - once a new leader is elected, containers on different hosts reach each other over the
//     overlay (real ICMP), the agents have not restarted and no container was restarted;
//   - removing every container leaves etcd and the hosts clean.
// The tests run in order and share the cluster.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { haveEtcd, type EtcdServer } from '../../harness/etcd.js';
import { OverlayCluster, type OverlayHost } from '../../harness/overlay-cluster.js';
import { makeBundle, removeBundle, waitFor } from '../../harness/sandbox.js';
import { parseHostRecord, parseOverlayEndpoint } from '../../../runtime/overlay/keys.js';
import { findNetnsPath } from '../../../runtime/netns/find.js';

const NET = 'ldr';
const SUBNET = '10.249.0.0/24';
const ATTACHES = 50;
/** Attaches in flight at once (spread over the three hosts). */
const PARALLEL = 6;
/** The leader is killed once this many attaches have started; at the second mark the first
 * victim is back (a quorum needs two of three) and the leader of that moment is killed too. */
const KILLS_AT = [12, 30];
const RESYNC_SECONDS = 5;

const hasConmon = spawnSync('conmon', ['--version']).status === 0;
if (!haveEtcd) console.warn('etcd leader test skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
if (!hasConmon) console.warn('etcd leader test skipped: conmon is missing (scripts/setup-host.sh installs it)');
const maybe = haveEtcd && hasConmon ? describe : describe.skip;

interface Attempt {
  id: string;
  host: OverlayHost;
  status: number | null;
  stderr: string;
  /** Started before the kill and finished after it. */
  straddled: boolean;
}

interface Live {
  id: string;
  host: OverlayHost;
  ip: string;
  /** The container's init pid and its namespace (dev:inode) right after the attaches. */
  pid: number;
  netns: string;
}

let cluster: OverlayCluster;
let hosts: OverlayHost[];
let bundle: string;
/** The members killed, in order; the last one is still down after the attaches. */
const killed: EtcdServer[] = [];
let newLeader: EtcdServer | undefined;
const attempts: Attempt[] = [];
let live: Live[] = [];
const agentPids = new Map<string, number>();

/** `tsrun ARGS` on a host without blocking the event loop; killed (and reported) after timeoutMs. */
function tsrunAsync(h: OverlayHost, args: string[], timeoutMs = 90_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child: ChildProcess = h.sandbox.spawnTsrun(args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `[test: tsrun ${args.join(' ')} still running after ${timeoutMs} ms: killed]\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Runs `jobs` with at most `parallel` in flight; `onStart(i)` before job i starts. */
async function pool<T>(count: number, parallel: number, job: (i: number) => Promise<T>, onStart: (i: number) => Promise<void> = async () => {}): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await onStart(i);
      out[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

/** A lease value names its holder: the container id, alone or with its host (any layout). */
function holds(value: string, id: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_.-])${id}($|[^A-Za-z0-9_.-])`).test(value);
}

async function clusterKeys(): Promise<{ leases: { key: string; value: string }[]; endpoints: { key: string; value: string }[]; hostIds: Map<string, string> }> {
  const store = cluster.store();
  try {
    const leases = (await store.list(`ipam/${NET}/`)).filter((e) => !e.key.split('/').pop()!.startsWith('_'));
    const endpoints = await store.list(`overlay/endpoints/${NET}/`);
    const hostIds = new Map<string, string>();
    for (const e of await store.list('overlay/hosts/')) {
      const h = parseHostRecord(e.value);
      if (h) hostIds.set(h.address, h.hostId);
    }
    return { leases, endpoints, hostIds };
  } finally {
    await store.close();
  }
}

function netnsOf(h: OverlayHost, id: string): string | undefined {
  try {
    const st = statSync(h.pin(id));
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function psOf(h: OverlayHost): { id: string; status: string; pid?: number }[] {
  const r = h.tsrun(['ps', '-a', '--format', 'json']);
  return r.status === 0 ? (JSON.parse(r.stdout || '[]') as { id: string; status: string; pid?: number }[]) : [];
}

/** Container veths of a host (tsv + 8 hex digits; the VXLAN device is tsvx<VNI>). */
function vethsOn(h: OverlayHost): string[] {
  return (JSON.parse(h.ns.sh('ip -j link show')) as { ifname: string }[]).filter((l) => /^tsv[0-9a-f]{8}$/.test(l.ifname)).map((l) => l.ifname);
}

/** Warnings and errors in a host's log (the agent's lease lost, the cluster unreachable…). */
function warnings(h: OverlayHost): string[] {
  return h
    .logLines()
    .filter((l) => Number(l.level) >= 40)
    .map((l) => `  ${h.name} ${String(l.time ?? '')} ${String(l.msg ?? '')} ${JSON.stringify(l.err ?? l.leaseId ?? '').slice(0, 200)}`);
}

maybe('the etcd leader killed during 50 overlay attaches on three hosts', () => {
  beforeAll(async () => {
    cluster = await OverlayCluster.create({ prefix: `ldr${process.pid}`, ttlSeconds: 5, resyncSeconds: RESYNC_SECONDS, etcdMembers: 3, etcdDirPrefix: 'etcd3-ldr-' });
    hosts = [await cluster.addHost('A', 1), await cluster.addHost('B', 2), await cluster.addHost('C', 3)];
    bundle = makeBundle();
  }, 90_000);

  afterAll(async () => {
    for (const h of hosts ?? []) {
      for (const e of psOf(h)) h.tsrun(['rm', '-f', e.id]);
    }
    await cluster?.destroy();
    if (bundle) removeBundle(bundle);
  }, 120_000);

  it('the overlay network is created and the three agents register', async () => {
    const r = hosts[0]!.tsrun(['network', 'create', NET, '--driver', 'overlay', '--subnet', SUBNET]);
    expect(r.stderr).toBe('');
    for (const h of hosts) await h.startAgent();
    for (const h of hosts) agentPids.set(h.name, h.agent!.pid!);
    const { hostIds } = await clusterKeys();
    expect([...hostIds.keys()].sort()).toEqual(hosts.map((h) => h.address).sort());
  }, 60_000);

  it('every attach succeeds or fails with one line while the leader dies', async () => {
    const etcd = cluster.etcdCluster!;
    const killedAt: number[] = [];
    const results = await pool(
      ATTACHES,
      PARALLEL,
      async (i) => {
        const id = `lk${String(i + 1).padStart(2, '0')}`;
        const host = hosts[i % hosts.length]!;
        const started = Date.now();
        const r = await tsrunAsync(host, ['run', '-d', '--name', id, '--net', NET, bundle, '--', 'sleep', '100000']);
        const straddled = killedAt.some((t) => started < t);
        return { id, host, status: r.status, stderr: r.stderr, straddled };
      },
      async (i) => {
        if (!KILLS_AT.includes(i)) return;
        const back = killed.at(-1);
        if (back) {
          await back.launch();
          await waitFor(`${back.name} to rejoin`, () => {
            try {
              return etcd.leader() !== undefined && back.status().leaderId !== '0';
            } catch {
              return false; // not answering yet
            }
          }, 30_000);
        }
        const leader = await etcd.waitForLeader();
        killed.push(leader);
        killedAt.push(Date.now());
        await leader.stop();
      },
    );
    attempts.push(...results);
    newLeader = await etcd.waitForLeader({ not: killed.at(-1)! });

    const failed = attempts.filter((a) => a.status !== 0);
    console.log(
      `etcd leaders killed: ${killed.map((m, k) => `${m.name} after ${KILLS_AT[k]} attaches started`).join(', ')}; leader now ${newLeader.name}; ` +
        `${attempts.filter((x) => x.straddled).length} attaches in flight at a kill; ${attempts.length - failed.length} attached, ${failed.length} failed` +
        (failed.length ? `:\n${failed.map((a) => `  ${a.id} on ${a.host.name} (exit ${a.status}${a.straddled ? ', in flight at the kill' : ''}): ${a.stderr.trim()}`).join('\n')}` : '') +
        `\nwarnings in the hosts' logs:\n${hosts.flatMap(warnings).join('\n')}`,
    );
    // A success prints nothing on stderr; a failure exactly one line naming tsrun.
    for (const a of attempts) {
      if (a.status === 0) expect({ id: a.id, stderr: a.stderr }).toEqual({ id: a.id, stderr: '' });
      // Any exit code (125 bad input or unreachable, 1 a system error), but an exit: not a hang killed by the test.
      else expect({ id: a.id, exited: a.status !== null, lines: a.stderr.trim().split('\n').length, tsrun: a.stderr.startsWith('tsrun: ') }).toEqual({ id: a.id, exited: true, lines: 1, tsrun: true });
    }
    // Most attaches must still have worked: two members are a quorum.
    expect(attempts.length - failed.length).toBeGreaterThanOrEqual(ATTACHES / 2);

    for (const a of attempts.filter((x) => x.status === 0)) {
      const ip = a.host.containerIp(a.id);
      const pid = psOf(a.host).find((e) => e.id === a.id)?.pid ?? 0;
      live.push({ id: a.id, host: a.host, ip: ip ?? '', pid, netns: netnsOf(a.host, a.id) ?? '' });
    }
  }, 240_000);

  it('every container that attached has an address unique across the cluster, with its lease and its endpoint record in etcd', async () => {
    for (const c of live) expect({ id: c.id, ip: c.ip }).toEqual({ id: c.id, ip: expect.stringMatching(/^10\.249\.0\.\d+$/) });
    const byIp = new Map<string, string[]>();
    for (const c of live) byIp.set(c.ip, [...(byIp.get(c.ip) ?? []), c.id]);
    expect([...byIp.entries()].filter(([, ids]) => ids.length > 1)).toEqual([]);

    const { leases, endpoints, hostIds } = await clusterKeys();
    for (const c of live) {
      const lease = leases.find((l) => l.key === `ipam/${NET}/${c.ip}`);
      expect({ id: c.id, lease: lease !== undefined && holds(lease.value, c.id) }).toEqual({ id: c.id, lease: true });
      const ep = endpoints.map((e) => parseOverlayEndpoint(e.value)).find((e) => e?.containerId === c.id);
      expect({ id: c.id, ip: ep?.ipv4, host: ep?.hostId }).toEqual({ id: c.id, ip: c.ip, host: hostIds.get(c.host.address) });
    }
  }, 60_000);

  it('a failed attach leaves nothing behind: no pin, state, record, link, lease, endpoint record or firewall element', async () => {
    const failed = attempts.filter((a) => a.status !== 0);
    const { leases, endpoints } = await clusterKeys();
    for (const a of failed) {
      const left: string[] = [
        ...a.host.sandbox.leaks([a.id]).filter((l) => l.includes(a.id)),
        ...leases.filter((l) => holds(l.value, a.id)).map((l) => `lease ${l.key}`),
        ...endpoints.filter((e) => parseOverlayEndpoint(e.value)?.containerId === a.id).map((e) => `endpoint ${e.key}`),
      ];
      const nft = a.host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']).stdout;
      if (nft.includes(`ctr:${a.id}`)) left.push('firewall element');
      expect({ id: a.id, left }).toEqual({ id: a.id, left: [] });
    }
    // Links: each host has exactly one veth on the network's bridge per live container.
    for (const h of hosts) expect({ host: h.name, veths: vethsOn(h).length }).toEqual({ host: h.name, veths: live.filter((c) => c.host === h).length });
  }, 60_000);

  it('etcd holds no lease and no endpoint record of the network without a live container (no lease leaked by a retried commit)', async () => {
    const { leases, endpoints } = await clusterKeys();
    const orphanLeases = leases.filter((l) => !live.some((c) => l.key === `ipam/${NET}/${c.ip}` && holds(l.value, c.id)));
    const orphanEndpoints = endpoints.filter((e) => !live.some((c) => parseOverlayEndpoint(e.value)?.containerId === c.id));
    if (orphanLeases.length + orphanEndpoints.length > 0) console.log(`orphans in etcd after the leader kill: ${JSON.stringify({ orphanLeases, orphanEndpoints })}`);
    expect(orphanLeases).toEqual([]);
    expect(orphanEndpoints).toEqual([]);
    expect(leases).toHaveLength(live.length);
  }, 30_000);

  it('under the new leader, containers on different hosts reach each other, and no agent or container restarted', async () => {
    // From the first container of every host to the last container of every other host (the
    // last ones attached after the kill: the agents must have followed the new leader's events).
    for (const from of hosts) {
      for (const to of hosts) {
        if (from === to) continue;
        const src = live.find((c) => c.host === from);
        const dst = [...live].reverse().find((c) => c.host === to);
        if (!src || !dst) continue;
        await waitFor(`${src.id} on ${from.name} to reach ${dst.id} (${dst.ip}) on ${to.name}`, () => from.ping(src.id, dst.ip, 1, 1), 20_000).catch(() => undefined);
        expect({ from: src.id, to: dst.id, reached: from.ping(src.id, dst.ip, 2, 2) }).toEqual({ from: src.id, to: dst.id, reached: true });
      }
    }
    for (const h of hosts) {
      expect({ host: h.name, agentPid: h.agent?.pid, running: h.agent?.exitCode === null }).toEqual({ host: h.name, agentPid: agentPids.get(h.name), running: true });
      const ps = psOf(h);
      for (const c of live.filter((x) => x.host === h)) {
        const e = ps.find((x) => x.id === c.id);
        expect({ id: c.id, status: e?.status, pid: e?.pid, netns: netnsOf(h, c.id) }).toEqual({ id: c.id, status: 'running', pid: c.pid, netns: c.netns });
      }
    }
  }, 120_000);

  it('a new container on every host attaches and is reached from the others; the killed member rejoins', async () => {
    for (const [i, h] of hosts.entries()) {
      const id = `lnew${i}`;
      const r = await tsrunAsync(h, ['run', '-d', '--name', id, '--net', NET, bundle, '--', 'sleep', '100000']);
      expect({ id, status: r.status, stderr: r.stderr }).toEqual({ id, status: 0, stderr: '' });
      live.push({ id, host: h, ip: h.containerIp(id) ?? '', pid: 0, netns: '' });
    }
    for (const [i, h] of hosts.entries()) {
      const dst = live.find((c) => c.id === `lnew${(i + 1) % hosts.length}`)!;
      const src = live.find((c) => c.host === h)!;
      await waitFor(`${src.id} to reach ${dst.id}`, () => h.ping(src.id, dst.ip, 1, 1), 20_000).catch(() => undefined);
      expect({ from: src.id, to: dst.id, reached: h.ping(src.id, dst.ip, 2, 2) }).toEqual({ from: src.id, to: dst.id, reached: true });
    }
    const last = killed.at(-1)!;
    await last.launch();
    const leaderId = cluster.etcdCluster!.leader()?.status().memberId;
    await waitFor(`${last.name} to rejoin`, () => {
      try {
        return last.status().leaderId === leaderId;
      } catch {
        return false;
      }
    }, 20_000);
  }, 120_000);

  it('removing every container leaves the hosts clean and no lease in etcd', async () => {
    const started = Date.now();
    const results = await pool(live.length, PARALLEL, async (i) => {
      const c = live[i]!;
      const r = await tsrunAsync(c.host, ['rm', '-f', c.id]);
      return { id: c.id, status: r.status, stderr: r.stderr };
    });
    for (const r of results) expect(r).toEqual({ id: r.id, status: 0, stderr: '' });
    console.log(`${live.length} containers removed in ${Date.now() - started} ms`);
    // Monitors run `tsrun cleanup` as their containers exit: give them a moment.
    for (const h of hosts) await waitFor(`${h.name} to be clean`, () => h.sandbox.leaks().length === 0, 20_000).catch(() => undefined);
    for (const h of hosts) {
      expect({ host: h.name, leaks: h.sandbox.leaks(), veths: vethsOn(h) }).toEqual({ host: h.name, leaks: [], veths: [] });
    }
    const { leases } = await clusterKeys();
    expect(leases).toEqual([]);
  }, 120_000);

  // Found by this test: an agent resync that had read the local records just before `rm -f`
  // removed one put back the endpoint the detach had just withdrawn (seen in 4 of 6 runs), and it
  // could stay for several resyncs. Now the detach withdraws again once its record is deleted,
  // and the agent checks the record after each put (runtime/drivers/overlay.ts afterRecordDeleted,
  // OverlayAgent.publishOwnEndpoints): no endpoint outlives its detach by more than an agent's
  // put-and-check, far less than one resync.
  it('no endpoint record outlives its detach in etcd', async () => {
    let keys = await clusterKeys();
    const stale = keys.endpoints.map((e) => parseOverlayEndpoint(e.value));
    const since = Date.now();
    while (keys.endpoints.length > 0 && Date.now() - since < 2000) {
      await new Promise((r) => setTimeout(r, 200));
      keys = await clusterKeys();
    }
    if (keys.endpoints.length > 0) {
      const detail = stale.map((e) => `${e?.containerId} (netns ${e?.netns}: ${e?.netns && findNetnsPath(e.netns) ? 'an inode a live namespace has now' : 'no live namespace'})`);
      console.log(`endpoints still published after their detach: ${detail.join(', ')}\n${hosts.flatMap(warnings).slice(-20).join('\n')}`);
    }
    expect(keys.endpoints).toEqual([]);
    const rm = hosts[1]!.tsrun(['network', 'rm', NET]);
    expect(rm.stderr).toBe('');
    const store = cluster.store();
    try {
      expect(await store.get(`networks/${NET}`)).toBeUndefined();
      expect((await store.list('overlay/vni/')).length).toBe(0);
    } finally {
      await store.close();
    }
  }, 120_000);
});
