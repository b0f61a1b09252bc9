// Fault injection: tsrun is SIGKILLed right after step k of its setup, then of its teardown, for
// every k (TSRUN_FAULT_KILL_AFTER, runtime/tx.ts), on the paths that build things: `tsrun run` on a
// bridge network with a published port and IPv6, on a macvlan network, on an overlay network
// (real etcd and agent), `network create`, and the OCI hook under runc. After each kill `tsrun gc`
// must leave nothing (link, lease, host port, firewall element, record, pin, mount, cgroup, runc
// state; for the overlay also no lease or endpoint of this host in etcd) and the same thing run
// again must work. The step counts covered are printed at the end.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type SandboxHost, makeBundle, removeBundle, type RunResult } from '../../harness/sandbox.js';
import { listElements, type NftListing } from '../../../runtime/firewall/nft-rules.js';
import { HookHost, runtimeEnv } from '../hook/helpers.js';
import { haveEtcd } from '../../harness/etcd.js';
import { OverlayCluster, type OverlayHost } from '../../harness/overlay-cluster.js';
import { decodeHolder } from '../../../runtime/ipam/holder.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';

let host: SandboxHost;
let hh: HookHost;
let bundle: string;
const covered: Record<string, number> = {};
const MAX_STEPS = 80;

beforeAll(async () => {
  hh = await HookHost.create('i11flt');
  host = hh.host;
  bundle = makeBundle();
  host.ns.sh('ip link add fparent type veth peer name fpeer && ip link set fparent up && ip link set fpeer up');
  ok(['network', 'create', 'fdual', '--subnet', '10.93.0.0/24', '--ipv6-subnet', 'fd00:93::/64']);
  ok(['network', 'create', 'fmac', '--driver', 'macvlan', '--parent', 'fparent', '--subnet', '10.94.0.0/24']);
});

afterAll(() => {
  process.stdout.write(`fault injection: steps covered ${JSON.stringify(covered)}\n`);
  removeBundle(bundle);
  hh.destroy();
});

function ok(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = host.tsrun(args, { env });
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

const killed = (r: RunResult) => r.signal === 'SIGKILL';

/** Everything on the host that is not its resting state. */
function leftovers(ids: string[], networks: string[] = []): string[] {
  const found = host.leaks(ids);
  for (const l of host.ns.settledLinks(/^tsv|^tsm|^tsi/)) found.push(`link ${l}`);
  const r = host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
  if (r.status === 0) {
    for (const e of listElements(JSON.parse(r.stdout) as NftListing)) {
      if (e.comment?.startsWith('ctr:')) found.push(`nft ${e.set} ${e.comment}`);
      if (e.comment?.startsWith('net:') && !['net:fdual', 'net:fmac', 'net:tsrun'].includes(e.comment) && !networks.includes(e.comment.slice(4))) found.push(`nft ${e.set} ${e.comment}`);
    }
  }
  return found;
}

/**
 * Runs `attempt(env)` with the fault at setup:k then teardown:k for k = 1, 2, … until a run is not
 * killed (k is past the last step). After each kill: gc, nothing left, and `again()` works.
 */
async function driveEveryStep(label: string, attempt: (env: NodeJS.ProcessEnv) => RunResult, again: () => void, check: () => string[] | Promise<string[]>, on: SandboxHost = host): Promise<void> {
  for (const phase of ['setup', 'teardown'] as const) {
    let k = 1;
    for (; k <= MAX_STEPS; k++) {
      const r = attempt({ TSRUN_FAULT_KILL_AFTER: `${phase}:${k}` });
      if (!killed(r)) {
        expect({ label, phase, k, status: r.status, stderr: r.stderr }).toEqual({ label, phase, k, status: 0, stderr: '' });
        break;
      }
      const gc = on.tsrun(['gc']);
      expect({ label, phase, k, gc: gc.status, stderr: gc.stderr }).toEqual({ label, phase, k, gc: 0, stderr: '' });
      expect({ label, phase, k, left: await check() }).toEqual({ label, phase, k, left: [] });
      again();
      expect({ label, phase, k, afterRerun: await check() }).toEqual({ label, phase, k, afterRerun: [] });
    }
    expect(k).toBeLessThanOrEqual(MAX_STEPS);
    expect({ label, phase, killedAtLeastOnce: k > 1 }).toEqual({ label, phase, killedAtLeastOnce: true }); // not a vacuous pass
    covered[`${label} ${phase}`] = k - 1;
  }
}

describe('a SIGKILL after every step, then gc, leaves nothing and the same run works again', () => {
  it('tsrun run on a bridge network with a published port and IPv6', async () => {
    const id = 'flt-bridge';
    const args = ['run', '--name', id, '--net', 'fdual', '-p', '8096:80', bundle, '--', 'ip', '-6', 'addr', 'show', 'eth0'];
    await driveEveryStep('bridge', (env) => host.tsrun(args, { env }), () => expect(ok(args)).toContain('fd00:93::'), () => leftovers([id]));
  });

  it('tsrun run on a macvlan network', async () => {
    const id = 'flt-macvlan';
    const args = ['run', '--name', id, '--net', 'fmac', bundle, '--', 'ip', '-4', 'addr', 'show', 'eth0'];
    await driveEveryStep('macvlan', (env) => host.tsrun(args, { env }), () => expect(ok(args)).toContain('10.94.0.'), () => leftovers([id]));
  });

  it('network create (and rm)', async () => {
    const create = ['network', 'create', 'fnet', '--subnet', '10.95.0.0/24'];
    // A network half-created by a killed create is a defined network: rm removes it, create works.
    const recover = () => {
      host.tsrun(['network', 'rm', 'fnet']);
      ok(create);
      ok(['network', 'rm', 'fnet']);
    };
    const noNetwork = () => [...leftovers([]), ...host.ns.linkNames().filter((l) => l === 'ts-fnet').map((l) => `bridge ${l}`), ...(ok(['network', 'ls', '-q']).includes('fnet') ? ['network fnet defined'] : [])];
    await driveEveryStep(
      'network create/rm',
      (env) => {
        const c = host.tsrun(create, { env: env.TSRUN_FAULT_KILL_AFTER?.startsWith('setup') ? env : {} });
        if (killed(c)) return c;
        return host.tsrun(['network', 'rm', 'fnet'], { env: env.TSRUN_FAULT_KILL_AFTER?.startsWith('teardown') ? env : {} });
      },
      recover,
      () => {
        // After a kill in rm the network may rightly still be defined: rm again finishes it.
        host.tsrun(['network', 'rm', 'fnet']);
        return noNetwork();
      },
    );
  });

  it('the OCI hook under runc (createRuntime, then poststop)', async () => {
    const id = 'flt-hook';
    const hookBundle = (env: NodeJS.ProcessEnv) =>
      hh.bundle({
        args: ['ip', '-4', 'addr', 'show', 'eth0'],
        annotations: { 'io.tsrun.network': 'fdual', 'io.tsrun.ports': '8097:80' },
        edit: (spec) => {
          for (const stage of ['createRuntime', 'poststop']) for (const h of spec.hooks?.[stage] ?? []) h.env = [...(h.env ?? []), ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
        },
      });
    const plain = hookBundle({});
    const runIt = (b: string) => hh.host.ns.exec('runc', ['--root', host.runcRoot, 'run', '-b', b, id], { env: runtimeEnv(), timeoutMs: 60_000 });
    const hookKilled = (r: RunResult) => / signal: killed|signal: killed|exit status 137|killed/.test(r.stderr);
    await driveEveryStep(
      'hook',
      (env) => {
        const r = runIt(hookBundle(env));
        // runc reports the hook's death; the container's own run is not killed.
        return hookKilled(r) ? { ...r, signal: 'SIGKILL' } : r;
      },
      () => {
        const r = runIt(plain);
        expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
        expect(r.stdout).toContain('10.93.0.');
      },
      () => {
        // runc itself may keep a container whose poststop was killed: delete it as an operator would.
        for (const c of host.runcList()) hh.runc(['delete', '--force', c]);
        host.tsrun(['gc']);
        return leftovers([id]);
      },
    );
  });
});


const maybeEtcd = haveEtcd ? describe : describe.skip;

maybeEtcd('overlay: a SIGKILL after every step, then gc, leaves nothing here or in etcd', () => {
  let cluster: OverlayCluster;
  let O: OverlayHost;
  beforeAll(async () => {
    // No periodic resync: what is collected after a kill must be gc's work, not the agent's.
    cluster = await OverlayCluster.create({ prefix: `flt${process.pid}`, ttlSeconds: 10, resyncSeconds: 3600 });
    O = await cluster.addHost('fO', 21);
    await O.startAgent();
    const r = O.tsrun(['network', 'create', 'fov', '--driver', 'overlay', '--subnet', '10.247.0.0/24']);
    if (r.status !== 0) throw new Error(r.stderr);
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  }, 60_000);

  /** This host's leases and endpoints in etcd, and the local leftovers. */
  async function overlayLeftovers(id: string): Promise<string[]> {
    const hostId = readFileSync(path.join(O.sandbox.root, 'lib', 'store', 'agent', 'host-id'), 'utf8').trim();
    const found = O.sandbox.leaks([id]);
    for (const l of O.ns.settledLinks(/^tsv[0-9a-f]{8}$/)) found.push(`link ${l}`); // veth ends; the VXLAN device (tsvx…) is the network's
    const store = cluster.store();
    try {
      for (const e of await store.list('ipam/fov/')) if (!e.key.includes('/_') && decodeHolder(e.value).host === hostId) found.push(`etcd lease ${e.key}`);
      for (const e of await store.list(`overlay/endpoints/fov/${hostId}/`)) found.push(`etcd endpoint ${e.key}`);
      for (const e of await store.list('locks/')) found.push(`etcd lock ${e.key}`);
    } finally {
      await store.close();
    }
    return found;
  }

  it('tsrun run on an overlay network', async () => {
    const id = 'flt-overlay';
    const args = ['run', '--name', id, '--net', 'fov', bundle, '--', 'ip', '-4', 'addr', 'show', 'eth0'];
    await driveEveryStep('overlay', (env) => O.sandbox.tsrun(args, { env }), () => expect(O.sandbox.tsrun(args).stdout).toContain('10.247.0.'), () => overlayLeftovers(id), O.sandbox);
  }, 600_000);
});
