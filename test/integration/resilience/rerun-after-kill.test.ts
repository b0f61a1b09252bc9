// A SIGKILL after every setup step, then the caller's own next move, without `tsrun gc`: the same
// `tsrun run --name` again (its stale claim is reclaimed), or the runtime's CNI DEL after a killed
// ADD. An attach saves its endpoint record last and a detach works from the record, so what an
// attach killed after its lease, host port or firewall step and before its record held used to
// outlive these: the rerun failed once ("host port … is already published by container <itself>",
// its old firewall elements) and leaked the old lease until gc; DEL released nothing, and the next
// ADD of that container failed the same way. And a full run directory (ENOSPC at each write of the
// setup): one line, non-zero, nothing left (the claimed state directory stayed; the spec's write
// failed as "internal error").
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeBundle, Netns, removeBundle, SandboxHost, TSRUN_BIN, type RunResult } from '../../harness/sandbox.js';
import { listElements, type NftListing } from '../../../runtime/firewall/nft-rules.js';
import { callPlugin, type Conf } from '../cni/helpers.js';

let host: SandboxHost;
let bundle: string;
const MAX_STEPS = 60;

beforeAll(async () => {
  host = await SandboxHost.create('h7crr');
  bundle = makeBundle();
  ok(['network', 'create', 'rrnet', '--subnet', '10.96.0.0/24', '--ipv6-subnet', 'fd00:96::/64']);
});

afterAll(() => {
  removeBundle(bundle);
  host.destroy();
});

function ok(args: string[]): string {
  const r = host.tsrun(args);
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

const killed = (r: RunResult) => r.signal === 'SIGKILL' || r.status === 137;

/** Leases, host ports, records, state, links and firewall elements of containers, left on the host. */
function leftovers(ids: string[]): string[] {
  const found = host.leaks(ids);
  for (const l of host.ns.settledLinks(/^tsv/)) found.push(`link ${l}`);
  const r = host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
  if (r.status === 0) for (const e of listElements(JSON.parse(r.stdout) as NftListing)) if (e.comment?.startsWith('ctr:')) found.push(`nft ${e.set} ${e.comment}`);
  return found;
}

describe('a SIGKILL after every setup step, then no gc', () => {
  it('the same tsrun run --name again works, and leaves nothing once it ended', () => {
    const id = 'rr-run';
    const args = ['run', '--name', id, '--net', 'rrnet', '-p', '8196:80', bundle, '--', 'ip', '-4', 'addr', 'show', 'eth0'];
    let k = 1;
    for (; k <= MAX_STEPS; k++) {
      const r = host.tsrun(args, { env: { TSRUN_FAULT_KILL_AFTER: `setup:${k}` } });
      if (!killed(r)) {
        expect({ k, status: r.status, stderr: r.stderr }).toEqual({ k, status: 0, stderr: '' });
        break;
      }
      // The container a kill after runc's start leaves running ends by itself (ip addr): the rerun
      // reclaims the claim of a dead tsrun either way.
      const again = host.tsrun(args);
      expect({ k, status: again.status, stderr: again.stderr }).toEqual({ k, status: 0, stderr: '' });
      expect(again.stdout).toContain('10.96.0.');
      expect({ k, left: leftovers([id]) }).toEqual({ k, left: [] });
    }
    expect(k).toBeGreaterThan(10); // not a vacuous pass: the attach's steps were all driven
    expect(k).toBeLessThanOrEqual(MAX_STEPS);
  }, 300_000);

  it('the CNI DEL after a killed ADD leaves nothing, and the next ADD works', async () => {
    const ns = await Netns.create('h7crrc');
    try {
      const conf: Conf = { cniVersion: '1.0.0', name: 'rrcni', type: 'tsrun', subnet: '10.97.0.0/24', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8197, containerPort: 80, protocol: 'tcp' }] } };
      const at = { containerId: 'rr-cni', netns: ns.path, ifname: 'eth0' };
      const inContainer = () => ns.linkNames().filter((l) => l !== 'lo');
      let k = 1;
      for (; k <= MAX_STEPS; k++) {
        const r = callPlugin(host, 'ADD', conf, at, { TSRUN_FAULT_KILL_AFTER: `setup:${k}` });
        if (r.status !== null) { // null: killed (callPlugin reports no signal)
          expect({ k, status: r.status, stderr: r.stderr }).toEqual({ k, status: 0, stderr: '' });
          expect(callPlugin(host, 'DEL', conf, at).status).toBe(0);
          break;
        }
        const del = callPlugin(host, 'DEL', conf, at);
        expect({ k, status: del.status, stderr: del.stderr }).toEqual({ k, status: 0, stderr: '' });
        expect({ k, left: leftovers([]), inContainer: inContainer() }).toEqual({ k, left: [], inContainer: [] });
        const add = callPlugin(host, 'ADD', conf, at);
        expect({ k, status: add.status, stdout: add.status === 0 ? '' : add.stdout }).toEqual({ k, status: 0, stdout: '' });
        expect(callPlugin(host, 'DEL', conf, at).status).toBe(0);
        expect({ k, afterAddDel: leftovers([]) }).toEqual({ k, afterAddDel: [] });
      }
      expect(k).toBeGreaterThan(5);
      expect(k).toBeLessThanOrEqual(MAX_STEPS);
    } finally {
      ns.destroy();
    }
  }, 300_000);
});

describe('a killed attach of a container attached elsewhere', () => {
  it('the CNI DEL of the killed network releases its host port, firewall elements and veth; the other attachment stays whole', async () => {
    const ns = await Netns.create('h8crro');
    try {
      const first: Conf = { cniVersion: '1.0.0', name: 'rrone', type: 'tsrun', subnet: '10.95.0.0/24', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8195, containerPort: 80, protocol: 'tcp' }] } };
      const second: Conf = { cniVersion: '1.0.0', name: 'rrtwo', type: 'tsrun', subnet: '10.94.0.0/24', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8194, containerPort: 80, protocol: 'tcp' }] } };
      const at1 = { containerId: 'rr-multi', netns: ns.path, ifname: 'eth0' };
      const at2 = { ...at1, ifname: 'eth1' };
      const add1 = callPlugin(host, 'ADD', first, at1);
      expect({ status: add1.status, stderr: add1.stderr }).toEqual({ status: 0, stderr: '' });
      const ofFirst = leftovers([]).sort(); // what the live attachment to rrone holds
      const elements = () => {
        const r = host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
        return listElements(JSON.parse(r.stdout) as NftListing).filter((e) => e.comment === 'ctr:rr-multi').map((e) => `${e.set} ${JSON.stringify(e.key)}`).sort();
      };
      const elementsOfFirst = elements();
      const dir = path.join(host.root, 'lib', 'store', 'hostports');
      const ports = () => host.ns.exec('sh', ['-c', `cd ${dir} && find . -type f`]).stdout.split('\n').filter(Boolean).sort();
      expect(ports()).toEqual(['./tcp/8195/any']);
      let k = 1;
      for (; k <= MAX_STEPS; k++) {
        const r = callPlugin(host, 'ADD', second, at2, { TSRUN_FAULT_KILL_AFTER: `setup:${k}` });
        if (r.status !== null) {
          expect({ k, status: r.status, stderr: r.stderr }).toEqual({ k, status: 0, stderr: '' });
          expect(callPlugin(host, 'DEL', second, at2).status).toBe(0);
          break;
        }
        const del = callPlugin(host, 'DEL', second, at2);
        expect({ k, status: del.status, stderr: del.stderr }).toEqual({ k, status: 0, stderr: '' });
        // Before: from the host port's step on, its reservation, its firewall elements and the
        // veth stayed while rrone's record lived (gc keeps them too: the container is alive).
        expect({ k, ports: ports(), elements: elements(), links: host.ns.settledLinks(/^tsv/).length, inContainer: ns.linkNames().filter((l) => l !== 'lo').sort() }).toEqual({ k, ports: ['./tcp/8195/any'], elements: elementsOfFirst, links: 1, inContainer: ['eth0'] });
        const add = callPlugin(host, 'ADD', second, at2);
        expect({ k, status: add.status, stdout: add.status === 0 ? '' : add.stdout }).toEqual({ k, status: 0, stdout: '' });
        expect(callPlugin(host, 'DEL', second, at2).status).toBe(0);
        expect({ k, afterAddDel: leftovers([]).sort(), elements: elements() }).toEqual({ k, afterAddDel: ofFirst, elements: elementsOfFirst });
      }
      expect(k).toBeGreaterThan(5);
      expect(k).toBeLessThanOrEqual(MAX_STEPS);
      expect(callPlugin(host, 'DEL', first, at1).status).toBe(0);
      expect(leftovers([])).toEqual([]);
    } finally {
      ns.destroy();
    }
  }, 300_000);
});

describe('tsrun-runc create killed while it wires (after runc create), as an engine sees it', () => {
  it("the engine's delete --force leaves nothing, and the next create of the id works; also without that delete", () => {
    // The created container's process keeps the stdio it was given: not the test's pipes, or the
    // call would wait for it; stderr through a file.
    const errFile = path.join(host.root, 'tsrun-runc.err');
    const runc = (args: string[], env: NodeJS.ProcessEnv = {}): RunResult => {
      const r = host.ns.exec('sh', ['-c', 'exec "$@" </dev/null >/dev/null 2>"$ERRF"', 'sh', path.join(path.dirname(TSRUN_BIN), 'tsrun-runc'), '--root', path.join(host.root, 'run', 'rr'), ...args], { env: { ...host.env, ...env, ERRF: errFile } });
      return { ...r, stderr: existsSync(errFile) ? readFileSync(errFile, 'utf8') : '' };
    };
    const b = makeBundle((spec) => {
      spec.process.args = ['sleep', '1000'];
      spec.process.terminal = false;
      spec.annotations = { 'io.tsrun.network': 'rrnet', 'io.tsrun.ports': '8199:80' };
    });
    try {
      let k = 1;
      for (; k <= MAX_STEPS; k++) {
        const id = `rr-oci-${k}`;
        const r = runc(['create', '-b', b, id], { TSRUN_FAULT_KILL_AFTER: `setup:${k}` });
        if (!killed(r)) {
          expect({ k, status: r.status, stderr: r.stderr }).toEqual({ k, status: 0, stderr: '' });
          expect(runc(['delete', '--force', id]).status).toBe(0);
          break;
        }
        if (k % 2 === 0) {
          // The engine's delete after the failed create.
          expect({ k, del: runc(['delete', '--force', id]).status }).toEqual({ k, del: 0 });
          expect({ k, left: leftovers([]) }).toEqual({ k, left: [] });
        } else {
          // No delete came (the engine died too): runc's container goes by hand, and the next
          // create of the id reclaims what the killed one held.
          host.ns.exec('runc', ['--root', path.join(host.root, 'run', 'rr'), 'delete', '--force', id]);
        }
        const again = runc(['create', '-b', b, id]);
        expect({ k, status: again.status, stderr: again.stderr }).toEqual({ k, status: 0, stderr: '' });
        expect(runc(['delete', '--force', id]).status).toBe(0);
        expect({ k, afterRecreate: leftovers([]) }).toEqual({ k, afterRecreate: [] });
      }
      expect(k).toBeGreaterThan(5);
      expect(k).toBeLessThanOrEqual(MAX_STEPS);
    } finally {
      removeBundle(b);
    }
  }, 300_000);
});

describe('a full run directory', () => {
  it('at every write of a --net none run: one line, non-zero, no state directory or registration left', async () => {
    // The run directory on a tmpfs of its own, filled so that 0, 4, 8, … KiB are left.
    await host.withRunTmpfs('size=256k', (run, leaveFree) => {
      const ran: number[] = [];
      for (let freeKiB = 0; freeKiB <= 64; freeKiB += 4) {
        const unfill = leaveFree(freeKiB);
        const id = `rr-full-${freeKiB}`;
        const r = host.tsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'echo', 'ran']);
        unfill();
        if (r.status === 0) {
          expect(r.stdout).toBe('ran\n');
          ran.push(freeKiB);
        } else {
          // tsrun's own line says what it could not write (runc's own complaint, when its log
          // cannot be written either, is runc's).
          expect({ freeKiB, internal: /internal error/.test(r.stderr), status: r.status }).toEqual({ freeKiB, internal: false, status: r.status === 1 ? 1 : 125 });
        }
        expect({ freeKiB, left: [...host.leaks([id]).filter((l) => l !== `mount ${run}`), ...host.netnsUsersLeft()] }).toEqual({ freeKiB, left: [] });
      }
      expect(ran.length).toBeGreaterThan(0); // enough room, at last: it runs
      expect(ran[0]).toBeGreaterThan(0); // and a full directory was tried
    });
  }, 120_000);
});

describe('a truncated container record', () => {
  const line = (id: string, file: string) => `tsrun: container ${id}: its record ${file} is unreadable (truncated or corrupt): tsrun rm -f ${id} removes it\n`;

  it('every command names it in one line (125), and gc removes the container and everything of it', () => {
    const id = 'rr-torn';
    ok(['run', '-d', '--name', id, '--net', 'rrnet', '-p', '8198:80', bundle, '--', 'sleep', '1000']);
    const file = path.join(host.root, 'run', 'containers', id, 'container.json');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 40));
    for (const cmd of [['inspect', id], ['rm', id], ['stop', id], ['kill', id], ['logs', id], ['exec', id, 'true']]) {
      const r = host.tsrun(cmd);
      // Before: rm -f and stop said "no such container", inspect "internal error: … vanished".
      expect({ cmd, status: r.status, stderr: r.stderr }).toEqual({ cmd, status: 125, stderr: line(id, file) });
    }
    const gc = host.tsrun(['gc']);
    expect({ status: gc.status, stderr: gc.stderr }).toEqual({ status: 0, stderr: '' });
    expect(leftovers([id])).toEqual([]);
    expect(host.monitors()).toEqual([]);
  }, 60_000);

  it('ps -a shows it (status unknown, its network), and rm -f removes it and everything of it, as docker rm -f would', () => {
    for (const [id, detached] of [['rr-torn-d', true], ['rr-torn-none', true], ['rr-torn-gone', false]] as const) {
      const net = id === 'rr-torn-none' ? 'none' : 'rrnet';
      const ports = net === 'none' ? [] : ['-p', '8198:80'];
      if (detached) ok(['run', '-d', '--name', id, '--net', net, ...ports, bundle, '--', 'sleep', '1000']);
      else expect(killed(host.tsrun(['run', '--name', id, '--net', net, ...ports, bundle, '--', 'true'], { env: { TSRUN_FAULT_KILL_AFTER: 'teardown:1' } }))).toBe(true);
      const file = path.join(host.root, 'run', 'containers', id, 'container.json');
      writeFileSync(file, readFileSync(file, 'utf8').slice(0, 40));
      // Before: ps -a left it out, so nothing but gc ever named it.
      const ps = ok(['ps', '-a']).split('\n').find((l) => l.startsWith(`${id} `));
      expect({ id, ps }).toEqual({ id, ps: expect.stringMatching(id !== 'rr-torn-d' ? / unknown / : / unknown .*rrnet:10\.96\.0\.\d+.*:8198->80\/tcp/) });
      const rm = host.tsrun(['rm', '-f', id]);
      expect({ id, status: rm.status, stdout: rm.stdout, stderr: rm.stderr }).toEqual({ id, status: 0, stdout: `${id}\n`, stderr: '' });
      expect({ id, left: leftovers([id]), monitors: host.monitors() }).toEqual({ id, left: [], monitors: [] });
      expect(ok(['ps', '-a'])).not.toContain(id);
      // And the name works again.
      ok(['run', '--name', id, '--net', net, ...ports, bundle, '--', 'true']);
      expect({ id, again: leftovers([id]) }).toEqual({ id, again: [] });
    }
  }, 90_000);
});

describe('a truncated network definition', () => {
  it('gc, ls and other networks keep working; its own commands say so in one line; rm removes it and its bridge', () => {
    ok(['network', 'create', 'rrtorn', '--subnet', '10.98.0.0/24']);
    ok(['run', '-d', '--name', 'rr-on-torn', '--net', 'rrtorn', bundle, '--', 'sleep', '1000']);
    const file = path.join(host.root, 'lib', 'store', 'networks', 'rrtorn');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 30));
    const line = 'tsrun: network rrtorn: its definition (store key networks/rrtorn) is unreadable (truncated or corrupt): tsrun network rm rrtorn removes it\n';
    // Before: gc, network ls, inspect and rm all failed with "internal error: Expected ',' or '}'…",
    // so nothing at all was collected and the network could not be removed.
    const gc = host.tsrun(['gc']);
    expect({ status: gc.status, stderr: gc.stderr }).toEqual({ status: 0, stderr: '' });
    expect(host.ns.linkNames()).toContain('ts-rrtorn'); // its container is still attached: gc keeps its bridge
    expect(ok(['network', 'ls'])).toContain('rrnet');
    for (const cmd of [['network', 'inspect', 'rrtorn'], ['run', '--net', 'rrtorn', bundle, '--', 'true']]) {
      const r = host.tsrun(cmd);
      expect({ cmd, status: r.status, stderr: r.stderr.replace(/^tsrun: attach to network rrtorn: /, 'tsrun: ') }).toEqual({ cmd, status: 125, stderr: line });
    }
    expect(host.tsrun(['network', 'rm', 'rrtorn']).stderr).toMatch(/has 1 attached container\(s\) \(rr-on-torn\)/);
    ok(['rm', '-f', 'rr-on-torn']);
    ok(['network', 'rm', 'rrtorn']);
    expect(host.ns.linkNames()).not.toContain('ts-rrtorn');
    expect(ok(['network', 'ls'])).not.toContain('rrtorn');
    expect(leftovers(['rr-on-torn'])).toEqual([]);
    const r = host.ns.exec('nft', ['list', 'table', 'inet', 'tsrun']);
    expect(r.stdout).not.toContain('net:rrtorn');
  }, 60_000);

  it('the firewall is not rebuilt without it: its internal drop and its containers\' port guards stay (fail closed)', () => {
    ok(['network', 'create', 'rrint', '--subnet', '10.99.0.0/24', '--internal']);
    ok(['run', '-d', '--name', 'rr-on-int', '--net', 'rrint', bundle, '--', 'sleep', '1000']);
    const elements = () => {
      const out: string[] = [];
      for (const family of ['inet', 'bridge']) {
        const r = host.ns.exec('nft', ['-j', 'list', 'table', family, 'tsrun']);
        for (const e of listElements(JSON.parse(r.stdout) as NftListing, family)) if (e.comment === 'net:rrint' || e.comment === 'ctr:rr-on-int') out.push(`${e.set} ${e.comment}`);
      }
      return out.sort();
    };
    const before = elements();
    expect(before).toEqual(expect.arrayContaining(['internal_bridges net:rrint', 'guard_ports ctr:rr-on-int']));
    const file = path.join(host.root, 'lib', 'store', 'networks', 'rrint');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 30));
    // Rebuilt from the definitions that read, the table lost the network: its containers got a
    // way out of the --internal network and lost their port guards.
    const r = host.tsrun(['network', 'reload']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 125, stderr: 'tsrun: network rrint: its definition (store key networks/rrint) is unreadable (truncated or corrupt): tsrun network rm rrint removes it\n' });
    expect(elements()).toEqual(before);
    ok(['rm', '-f', 'rr-on-int']);
    ok(['network', 'rm', 'rrint']);
    expect(leftovers(['rr-on-int'])).toEqual([]);
  }, 60_000);
});

describe('a truncated lease file of a running container', () => {
  it('gc keeps it, so its address is not given to another container', () => {
    ok(['run', '-d', '--name', 'rr-lease', '--net', 'rrnet', bundle, '--', 'sleep', '1000']);
    const ip = /rrnet:(10\.96\.0\.\d+)/.exec(ok(['ps']))![1]!;
    const file = path.join(host.root, 'lib', 'store', 'ipam', 'rrnet', ip);
    writeFileSync(file, '');
    const gc = host.tsrun(['gc']);
    expect({ status: gc.status, leases: JSON.parse(gc.stdout).leases }).toEqual({ status: 0, leases: [] }); // before: ["ipam/rrnet/<ip>"]
    const r = host.tsrun(['run', '--name', 'rr-lease2', '--ip', ip, '--net', 'rrnet', bundle, '--', 'true']);
    // Before: 0, the address on the network twice (also without gc: --ip took the torn lease over).
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 125, stderr: `tsrun: address ${ip} is already in use by container rr-lease on network rrnet (its lease is unreadable)\n` });
    ok(['rm', '-f', 'rr-lease']);
    ok(['gc']); // its release compares the value it wrote: the torn lease goes with gc
    expect(leftovers(['rr-lease', 'rr-lease2'])).toEqual([]);
  }, 60_000);
});

describe('a claim in progress (a state directory made, its record not yet renamed in)', () => {
  it('gc leaves it alone while it is new, and removes it once it is old', () => {
    const id = 'rr-claiming';
    const dir = path.join(host.root, 'run', 'containers', id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Made "now" (a second ahead, so that a slow gc start still sees it within claimContainer's 2 s).
    const soon = new Date(Date.now() + 1000);
    utimesSync(dir, soon, soon);
    const gc = host.tsrun(['gc']);
    // Before: removed, and the claimer's record write failed ('create state directory …').
    expect({ status: gc.status, containers: JSON.parse(gc.stdout).containers, there: existsSync(dir) }).toEqual({ status: 0, containers: [], there: true });
    const old = new Date(Date.now() - 10_000);
    utimesSync(dir, old, old);
    const later = host.tsrun(['gc']);
    expect({ status: later.status, containers: JSON.parse(later.stdout).containers, there: existsSync(dir) }).toEqual({ status: 0, containers: [id], there: false });
  }, 60_000);
});
