// tsrun's hook driven by real runc: busybox bundles whose config.json carries the hooks (added
// with `tsrun spec add-hooks`), runc with a private --root inside a sandbox host's namespace.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Netns, waitFor } from '../../harness/sandbox.js';
import { HookHost, eth0Address, hostVethName, runtimeEnv } from './helpers.js';

let hh: HookHost;

beforeAll(async () => {
  hh = await HookHost.create('hookrunc');
  const r = hh.tsrun(['network', 'create', 'web', '--subnet', '10.123.0.0/24']);
  expect(r.stderr).toBe('');
});

afterAll(() => hh.destroy());

afterEach(() => {
  expect(hh.takeLeaks()).toEqual([]);
});

const container = (network?: string): string => hh.newId('hk', network);

function runcStatus(id: string): string | undefined {
  const r = hh.runc(['state', id]);
  return r.status === 0 ? (JSON.parse(r.stdout) as { status: string }).status : undefined;
}

/** Kill a detached container and wait until runc sees it stopped. */
async function stop(id: string): Promise<void> {
  hh.runc(['kill', id, 'KILL']);
  await waitFor(`${id} to stop`, () => runcStatus(id) === 'stopped');
}

/** A TCP connection from the sandbox host; resolves with what the peer sent. */
function tcpFromHost(host: string, port: number): { status: number | null; stdout: string; stderr: string } {
  const script = `const s=require('net').connect(${port},'${host}');let d='';s.on('data',c=>d+=c);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',e=>{console.error(e.message);process.exit(1)});setTimeout(()=>{console.error('timeout');process.exit(2)},3000)`;
  return hh.host.ns.exec(process.execPath, ['-e', script], { env: runtimeEnv() });
}

describe('runc run / create / delete with tsrun hooks', () => {
  it('wires the container: its address, the gateway and a neighbour; runc delete leaves nothing', async () => {
    const a = container('web');
    const b = container('web');
    const bundleA = hh.bundle({
      annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ip': '10.123.0.50', 'io.tsrun.mac': '02:42:0a:7b:00:32', 'io.tsrun.ports': '8080:80/tcp' },
      args: ['nc', '-ll', '-p', '80', '-e', '/bin/echo', 'hello-from-a'],
    });
    // Registered as node with the bundle's tsrun.cjs, not through the sh launcher (a runtime runs
    // a hook with the recorded environment only, so the launcher had nothing to choose).
    const hooks = (JSON.parse(readFileSync(path.join(bundleA, 'config.json'), 'utf8')) as { hooks: Record<string, { path: string; args: string[] }[]> }).hooks;
    for (const stage of ['createRuntime', 'poststop']) {
      expect(hooks[stage]![0]!.path).toBe(realpathSync(process.execPath));
      expect(path.basename(hooks[stage]![0]!.args[1]!)).toBe('tsrun.cjs');
    }
    const created = hh.runcDetached(a, bundleA);
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);

    const inA = hh.runc(['exec', a, 'ip', '-o', 'link', 'show', 'eth0']);
    expect(inA.stdout).toContain('02:42:0a:7b:00:32');
    expect(eth0Address(hh.runc(['exec', a, 'ip', '-o', '-4', 'addr', 'show', 'eth0']).stdout)).toBe('10.123.0.50/24');
    expect(hh.host.ns.linkNames()).toContain(hostVethName(a, 'web'));

    // A neighbour on the same network reaches the gateway and A.
    const bundleB = hh.bundle({
      annotations: { 'io.tsrun.network': 'web' },
      args: ['sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.123.0.1 && ping -c1 -W2 10.123.0.50 && nc 10.123.0.50 80 </dev/null && echo REACHED'],
    });
    const rb = hh.runc(['run', '-b', bundleB, b]);
    expect(rb.stderr).toBe('');
    expect(rb.status).toBe(0);
    expect(rb.stdout).toContain('hello-from-a');
    expect(rb.stdout).toContain('REACHED');
    const addrB = eth0Address(rb.stdout)!;
    expect(addrB).toMatch(/^10\.123\.0\.\d+\/24$/);
    expect(addrB).not.toBe('10.123.0.50/24');
    // runc run ran poststop for B as it finished: B is gone already, A is untouched.
    expect(hh.leaksOf([{ id: b, network: 'web' }])).toEqual([]);
    expect(hh.storeEntriesOf(a).sort()).toEqual(['endpoints/' + a + '/web', 'hostports/tcp/8080/any', 'ipam/web/10.123.0.50']);

    // The published port: the host's own traffic to the bridge address reaches A.
    const viaPort = tcpFromHost('10.123.0.1', 8080);
    expect(viaPort.stderr).toBe('');
    expect(viaPort.stdout).toBe('hello-from-a\n');
    expect(hh.nftElementsOf(a).length).toBeGreaterThan(0);

    await stop(a);
    const del = hh.runc(['delete', a]);
    expect(del.stderr).toBe('');
    expect(del.status).toBe(0);

    // Every log line names the container, the stage and the time.
    const lines = hh.logOf(a);
    expect(lines.find((l) => l.stage === 'createRuntime' && l.msg === 'hook done')).toMatchObject({ result: 'attached' });
    expect(lines.find((l) => l.stage === 'poststop' && l.msg === 'hook done')).toMatchObject({ result: 'detached' });
    for (const l of lines) expect(l).toEqual(expect.objectContaining({ stage: expect.any(String), elapsedMs: expect.any(Number) }));
  });

  it('with no tsrun annotation the container joins the default network', () => {
    const id = container('tsrun');
    const bundle = hh.bundle({ args: ['sh', '-c', 'ip -o -4 addr show eth0; gw=$(ip route | awk \'/^default/ {print $3}\'); echo "gw=$gw"; ping -c1 -W2 "$gw" && echo GW-OK'] });
    const r = hh.runc(['run', '-b', bundle, id]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const inspect = JSON.parse(hh.tsrun(['network', 'inspect', 'tsrun']).stdout) as { subnet4: string; gateway4: string };
    expect(r.stdout).toContain(`gw=${inspect.gateway4}`);
    expect(r.stdout).toContain('GW-OK');
    expect(eth0Address(r.stdout)).toMatch(new RegExp(`^${inspect.subnet4.split('.').slice(0, 2).join('\\.')}\\.`));
  });

  it('io.tsrun.network=none leaves the container with lo only', () => {
    const id = container();
    const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'none' }, args: ['ip', '-o', 'link'] });
    const r = hh.runc(['run', '-b', bundle, id]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^1: lo:/);
  });

  it('a runtime that calls prestart and createRuntime: the second call is a no-op', () => {
    const id = container('web');
    const bundle = hh.bundle({
      annotations: { 'io.tsrun.network': 'web' },
      args: ['sh', '-c', 'ip -o link | grep -c eth0; ping -c1 -W2 10.123.0.1 >/dev/null && echo GW-OK'],
      edit: (spec) => {
        const entry = spec.hooks.createRuntime.at(-1);
        spec.hooks.prestart = [{ ...entry, args: [...entry.args.slice(0, 3), 'prestart'] }];
      },
    });
    const r = hh.runc(['run', '-b', bundle, id]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1\nGW-OK\n');
    const done = hh.logOf(id).filter((l) => l.msg === 'hook done');
    // runc runs prestart first, then createRuntime.
    expect(done.map((l) => [l.stage, l.result])).toEqual([
      ['prestart', 'attached'],
      ['createRuntime', 'already-attached'],
      ['poststop', 'detached'],
    ]);
  });

  it('poststop run from another network namespace (runc delete called elsewhere) finds the host side again', async () => {
    const id = container('web');
    const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8081:80' }, args: ['sleep', '300'] });
    expect(hh.runcDetached(id, bundle).status).toBe(0);
    expect(hh.host.ns.linkNames()).toContain(hostVethName(id, 'web'));
    await stop(id);
    const elsewhere = await Netns.create('elsewhere');
    try {
      const del = spawnSync('nsenter', [`--net=${elsewhere.path}`, '--', 'runc', '--root', hh.host.runcRoot, 'delete', id], { encoding: 'utf8', env: runtimeEnv() });
      expect(del.stderr).toBe('');
      expect(del.status).toBe(0);
      // Torn down where it was built, and nothing built where poststop ran.
      expect(elsewhere.linkNames()).toEqual(['lo']);
      expect(elsewhere.exec('nft', ['list', 'table', 'inet', 'tsrun']).status).not.toBe(0);
    } finally {
      elsewhere.destroy();
    }
    expect(hh.logOf(id).find((l) => l.stage === 'poststop' && l.msg === 'hook done')).toMatchObject({ result: 'detached' });
  });

  it('containers started at the same time get distinct addresses and all of them are torn down', async () => {
    const ids = Array.from({ length: 6 }, () => container('web'));
    const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'web' }, args: ['sh', '-c', 'ip -o -4 addr show eth0; ping -c1 -W2 10.123.0.1 >/dev/null && echo GW-OK'] });
    const runs = await Promise.all(
      ids.map(
        (id) =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = hh.host.ns.spawn('runc', ['--root', hh.host.runcRoot, 'run', '-b', bundle, id], { env: runtimeEnv() });
            let out = '';
            let err = '';
            child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
            child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
            child.on('close', (code) => resolve({ code, out, err }));
          }),
      ),
    );
    for (const r of runs) {
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain('GW-OK');
    }
    const addresses = runs.map((r) => eth0Address(r.out));
    expect(new Set(addresses).size).toBe(ids.length);
  });

  it('a poststop for the id of a live wired container (another runtime\'s container with that id) leaves its network alone', async () => {
    // Records are keyed by container id; a second engine (another runc --root, podman beside
    // CRI-O on one hooks.d) may use the same id. Its container's poststop tore the first one's
    // network down: the record's namespace holder (the first container's init) still ran.
    const id = container('web');
    const wired = hh.bundle({ annotations: { 'io.tsrun.network': 'web' }, args: ['sleep', '60'] });
    expect(hh.runcDetached(id, wired).status).toBe(0); // created and started
    const record = path.join(hh.root, 'lib', 'store', 'endpoints', id, 'web');
    expect(existsSync(record)).toBe(true);
    // The other engine: its own runc root, a container of the same id that asks for no network.
    const otherRoot = `${hh.host.runcRoot}-other`;
    const other = hh.bundle({ annotations: { 'io.tsrun.network': 'none' }, args: ['true'] });
    const r = hh.host.ns.exec('runc', ['--root', otherRoot, 'run', '-b', other, id], { env: runtimeEnv() });
    expect(r.status).toBe(0);
    expect(existsSync(record)).toBe(true);
    expect(hh.runc(['exec', id, 'ip', '-o', '-4', 'addr', 'show', 'eth0']).stdout).toMatch(/inet 10\.123\.0\./);
    expect(hh.logOf(id).filter((l) => l.msg === 'hook done').map((l) => l.result)).toEqual(['attached', 'left-alone', 'nothing-to-do']);
    // Its own delete still tears it down.
    await stop(id);
    expect(hh.runc(['delete', id]).status).toBe(0);
    expect(existsSync(record)).toBe(false);
  });

  it('poststop twice, and for a container tsrun never wired, exits 0', () => {
    const id = container('web');
    const stopped = JSON.stringify({ ociVersion: '1.0.2', id, status: 'stopped', bundle: '/nonexistent' });
    for (let i = 0; i < 2; i++) {
      const r = hh.tsrun(['hook', 'poststop'], { input: stopped });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('');
      expect(r.status).toBe(0);
    }
    // And after a real container: the second poststop finds nothing to do.
    const bundle = hh.bundle({ annotations: { 'io.tsrun.network': 'web' }, args: ['true'] });
    expect(hh.runc(['run', '-b', bundle, id]).status).toBe(0);
    const again = hh.tsrun(['hook', 'poststop'], { input: stopped });
    expect(again.status).toBe(0);
    expect(hh.logOf(id).filter((l) => l.msg === 'hook done').map((l) => l.result)).toEqual(['nothing-to-do', 'nothing-to-do', 'attached', 'detached', 'nothing-to-do']);
  });
});
