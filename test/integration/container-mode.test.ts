// `tsrun run --net container:<id>`: real busybox containers through real runc sharing one network
// namespace inside a sandbox host, including the rule for an owner that exits first (the endpoint
// stays for its joiners and goes with the last of them).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SandboxHost, isStopped, makeBundle, removeBundle, uniqueId, waitFor } from '../harness/sandbox.js';

let host: SandboxHost;
let bundle: string;
const ids: string[] = [];
const running: Running[] = [];
const NET = 'shared';
const SUBNET = '10.212.0.0/24';
const GATEWAY = '10.212.0.1';

beforeAll(async () => {
  host = await SandboxHost.create('ctrmode');
  bundle = makeBundle();
  const r = host.tsrun(['network', 'create', NET, '--subnet', SUBNET]);
  expect(r.stderr).toBe('');
});

afterAll(() => {
  removeBundle(bundle);
  host.destroy();
});

afterEach(async () => {
  // A failed test may leave containers running: end them before looking for leaks.
  for (const r of running.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.stdin!.end('\n');
      const t = setTimeout(() => r.child.kill('SIGTERM'), 5000);
      await r.exited;
      clearTimeout(t);
    }
  }
  expect(host.leaks(ids.splice(0))).toEqual([]);
  expect(usersDirs()).toEqual([]);
  expect(endpoints()).toEqual([]);
  expect(vethsOnHost()).toEqual([]);
});

/** A container running in the background, with its output collected. */
interface Running {
  id: string;
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], script: string, id = uniqueId('cm')): Running {
  ids.push(id);
  const child = host.spawnTsrun(['run', '--name', id, ...args, bundle, '--', 'sh', '-c', script]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const r = { id, child, out: () => out, err: () => err, exited };
  running.push(r);
  return r;
}

function run(args: string[], script: string) {
  const id = uniqueId('cm');
  ids.push(id);
  return { id, ...host.tsrun(['run', '--name', id, ...args, bundle, '--', 'sh', '-c', script]) };
}

function endpoints(): { containerId: string }[] {
  const r = host.tsrun(['network', 'inspect', NET]);
  return (JSON.parse(r.stdout) as { endpoints: { containerId: string }[] }).endpoints;
}

function vethsOnHost(): string[] {
  return host.ns.linkNames().filter((n) => n.startsWith('tsv'));
}

function usersDirs(): string[] {
  const dir = path.join(host.root, 'run', 'netns-users');
  return existsSync(dir) ? readdirSync(dir) : [];
}

const ADDR = 'ip -o -4 addr show eth0 | sed "s/.*inet \\([0-9.]*\\).*/\\1/"';
// The owner serves /etc over HTTP on 127.0.0.1 only: nothing but its own namespace reaches it.
const SERVE = 'httpd -p 127.0.0.1:8080 -h /etc';
// Prints "served:" and the first field of the owner's /etc/passwd ("root").
const FETCH = 'for i in 1 2 3 4 5 6 7 8 9 10; do p=$(wget -qO- http://127.0.0.1:8080/passwd) && { echo "served:${p%%:*}"; exit 0; }; sleep 0.2; done; exit 1';

describe('--net container:<id>', () => {
  it('shares interfaces, addresses and 127.0.0.1 with the owner; the joiner gets no endpoint or lease', async () => {
    const owner = start(['--net', NET], `${SERVE}; echo "addr=$(${ADDR})"; read x`);
    await waitFor('the owner to serve', () => owner.out().includes('addr='), 20_000);
    const ownerAddr = /addr=([\d.]+)/.exec(owner.out())![1]!;

    const joiner = run(['--net', `container:${owner.id}`], `echo "addr=$(${ADDR})"; ip -o link | wc -l; ${FETCH}`);
    expect(joiner.stderr).toBe('');
    expect(joiner.status).toBe(0);
    const lines = joiner.stdout.trim().split('\n');
    expect(lines[0]).toBe(`addr=${ownerAddr}`);
    expect(lines[1]).toBe('2'); // lo and the owner's eth0, nothing of its own
    expect(lines[2]).toBe('served:root'); // from the owner's server on 127.0.0.1

    // A joiner of a joiner lands in the same namespace.
    const mid = start(['--net', `container:${owner.id}`], 'echo in; read x');
    await waitFor('the first joiner', () => mid.out().includes('in'), 20_000);
    const chained = run(['--net', `container:${mid.id}`], `echo "addr=$(${ADDR})"; ${FETCH}`);
    expect(chained.stdout.trim().split('\n')).toEqual([`addr=${ownerAddr}`, 'served:root']);

    // One endpoint, one veth, one lease: the owner's.
    expect(endpoints().map((e) => e.containerId)).toEqual([owner.id]);
    expect(vethsOnHost()).toHaveLength(1);

    mid.child.stdin!.end('\n');
    expect(await mid.exited).toBe(0);
    // The joiner leaving changed nothing for the owner.
    expect(endpoints().map((e) => e.containerId)).toEqual([owner.id]);
    expect(host.ns.exec('busybox', ['ping', '-c1', '-W2', ownerAddr]).status).toBe(0);
    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(0);
  });

  it('a --net none container can be joined too: lo only, shared', async () => {
    const owner = start(['--net', 'none'], `${SERVE}; echo up; read x`);
    await waitFor('the owner', () => owner.out().includes('up'), 20_000);
    const joiner = run(['--net', `container:${owner.id}`], `ip -o link | wc -l; ${FETCH}`);
    expect(joiner.stderr).toBe('');
    expect(joiner.stdout.trim().split('\n')).toEqual(['1', 'served:root']);
    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(0);
  });

  it('a joiner racing the start of a --net none owner (its pid file before its registration) waits for it, then joins', async () => {
    // Since session 8 a --net none owner registers as its namespace's user right after runc's
    // spawn, while runc starts up (shim/network-plain.ts). TSRUN_FAULT_PAUSE_AT=spawned:stop stops
    // the owner's tsrun right there: runc goes on and starts the container (its pid file appears),
    // the registration waits. A joiner must wait for it rather than call the owner a --net host
    // container or not running, and join once it is there.
    const id = uniqueId('cm');
    ids.push(id);
    const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'sh', '-c', `${SERVE}; echo up; read x`], { TSRUN_FAULT_PAUSE_AT: 'spawned:stop' });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    running.push({ id, child, out: () => out, err: () => '', exited });
    try {
      await waitFor('the owner to stop right after its spawn', () => isStopped(child.pid!));
      await waitFor('its container to run', () => out.includes('up'), 20_000);
      expect(existsSync(path.join(host.root, 'run', 'netns-users', id))).toBe(false);
      const jid = uniqueId('cm');
      ids.push(jid);
      const joiner = host.spawnTsrun(['run', '--name', jid, '--net', `container:${id}`, bundle, '--', 'sh', '-c', `ip -o link | wc -l; ${FETCH}`]);
      let jout = '';
      let jerr = '';
      joiner.stdout!.on('data', (d: Buffer) => (jout += d.toString()));
      joiner.stderr!.on('data', (d: Buffer) => (jerr += d.toString()));
      const joined = new Promise<number | null>((resolve) => joiner.once('exit', (code) => resolve(code)));
      await new Promise((r) => setTimeout(r, 300));
      expect({ waiting: joiner.exitCode === null, jerr }).toEqual({ waiting: true, jerr: '' });
      process.kill(child.pid!, 'SIGCONT');
      expect({ code: await joined, jout, jerr }).toEqual({ code: 0, jout: '1\nserved:root\n', jerr: '' });
    } finally {
      process.kill(child.pid!, 'SIGCONT');
    }
    child.stdin!.end('\n');
    expect(await exited).toBe(0);
  });

  it('an owner that exits first returns at once; its endpoint lives until the last joiner is gone', async () => {
    const owner = start(['--net', NET], `echo "addr=$(${ADDR})"; read x; exit 3`);
    await waitFor('the owner', () => owner.out().includes('addr='), 20_000);
    const ownerAddr = /addr=([\d.]+)/.exec(owner.out())![1]!;
    // The joiner checks its network only after the owner is gone.
    const joiner = start(['--net', `container:${owner.id}`], `echo joined; read x; echo "addr=$(${ADDR})"; ping -c1 -W2 ${GATEWAY} >/dev/null && echo gateway-ok`);
    await waitFor('the joiner', () => joiner.out().includes('joined'), 20_000);

    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(3);
    expect(joiner.child.exitCode).toBeNull(); // it returned without waiting for its joiner

    // Still there: the veth, the endpoint record, the lease; the host still reaches the address.
    expect(vethsOnHost()).toHaveLength(1);
    expect(endpoints().map((e) => e.containerId)).toEqual([owner.id]);
    expect(host.ns.exec('busybox', ['ping', '-c1', '-W2', ownerAddr]).status).toBe(0);
    // The owner is not running: nobody new can join it, and its id stays taken meanwhile.
    const late = run(['--net', `container:${owner.id}`], 'true');
    expect(late.status).toBe(125);
    expect(late.stderr).toBe(`tsrun: --net container:${owner.id}: container ${owner.id} not found (it must be a running tsrun container)\n`);
    const reuse = host.tsrun(['run', '--name', owner.id, '--net', NET, bundle, '--', 'true']);
    expect(reuse.status).toBe(125);
    expect(reuse.stderr).toBe(`tsrun: container id ${owner.id} is still in use: container(s) ${joiner.id} share the network namespace of an earlier ${owner.id}\n`);

    joiner.child.stdin!.end('\n');
    expect(await joiner.exited).toBe(0);
    expect(joiner.out()).toContain(`addr=${ownerAddr}`);
    expect(joiner.out()).toContain('gateway-ok');
    // The last user is gone: so is the owner's endpoint (checked by afterEach: no veth, no
    // record, no user directory), and with it the lease.
    expect(host.ns.exec('busybox', ['ping', '-c1', '-W1', ownerAddr]).status).not.toBe(0);
    const again = run(['--net', NET, '--ip', ownerAddr], `${ADDR}`);
    expect(again.stdout.trim()).toBe(ownerAddr);
  });

  it('a --net none id still in use by an earlier namespace is refused before its command runs, however late the run gets on after runc\'s spawn', async () => {
    // The --net none owner's registration runs after runc's spawn (shim/network-plain.ts); the
    // refusal it can make (an earlier namespace of the id still has users) must still come before
    // anything of the new container runs. TSRUN_FAULT_PAUSE_AT=spawned:800 holds the new run right
    // after its spawn, as a loaded machine may: the command must not have run meanwhile.
    const owner = start(['--net', 'none'], 'echo up; read x');
    await waitFor('the owner', () => owner.out().includes('up'), 20_000);
    const joiner = start(['--net', `container:${owner.id}`], 'echo joined; read x');
    await waitFor('the joiner', () => joiner.out().includes('joined'), 20_000);
    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(0);
    const reuse = host.tsrun(['run', '--name', owner.id, '--net', 'none', bundle, '--', 'sh', '-c', 'echo ran'], { env: { TSRUN_FAULT_PAUSE_AT: 'spawned:800' } });
    expect(reuse).toMatchObject({
      status: 125,
      stdout: '',
      stderr: `tsrun: container id ${owner.id} is still in use: container(s) ${joiner.id} share the network namespace of an earlier ${owner.id}\n`,
    });
    joiner.child.stdin!.end('\n');
    expect(await joiner.exited).toBe(0);
  });

  it('a joiner whose tsrun process was killed is cleaned up with its id, and the owner keeps its endpoint', async () => {
    const owner = start(['--net', NET], `echo "addr=$(${ADDR})"; read x`);
    await waitFor('the owner', () => owner.out().includes('addr='), 20_000);
    const joiner = start(['--net', `container:${owner.id}`], 'echo joined; sleep 1000');
    await waitFor('the joiner', () => joiner.out().includes('joined'), 20_000);
    joiner.child.kill('SIGKILL');
    await joiner.exited;
    // Reclaiming the id runs the same release as a normal exit, minus the owner's endpoint.
    const r = host.tsrun(['run', '--name', joiner.id, '--net', 'none', bundle, '--', 'true']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(endpoints().map((e) => e.containerId)).toEqual([owner.id]);
    expect(vethsOnHost()).toHaveLength(1);
    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(0);
  });
});

describe('--net container:<id>: one-line errors, nothing left behind', () => {
  it('a container that does not exist', () => {
    const r = run(['--net', 'container:nosuch'], 'true');
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('tsrun: --net container:nosuch: container nosuch not found (it must be a running tsrun container)\n');
  });

  it('a container that is not running (its tsrun process is gone)', () => {
    // What a tsrun killed mid-run leaves: a state directory whose owner process is dead.
    const ghost = uniqueId('ghost');
    const dir = path.join(host.root, 'run', 'containers', ghost);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'container.json'), JSON.stringify({ id: ghost, ownerPid: 2 ** 22 - 1, ownerStart: '1', created: new Date().toISOString(), bundle }));
    try {
      const r = run(['--net', `container:${ghost}`], 'true');
      expect(r.status).toBe(125);
      expect(r.stderr).toBe(`tsrun: --net container:${ghost}: container ${ghost} is not running\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a running container in the host network namespace', async () => {
    const owner = start(['--net', 'host'], 'echo up; read x');
    await waitFor('the owner', () => owner.out().includes('up'), 20_000);
    const r = run(['--net', `container:${owner.id}`], 'true');
    expect(r.status).toBe(125);
    expect(r.stderr).toBe(`tsrun: --net container:${owner.id}: container ${owner.id} uses the host's network namespace: use --net host\n`);
    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(0);
  });

  it('-p, --ip and --mac, which belong to the owner', async () => {
    const owner = start(['--net', NET], 'echo up; read x');
    await waitFor('the owner', () => owner.out().includes('up'), 20_000);
    for (const [flags, message] of [
      [['-p', '8080:80'], `-p cannot be used with --net container:${owner.id}: publish the ports on container ${owner.id}`],
      [['--ip', '10.212.0.99'], `--ip cannot be used with --net container:${owner.id}: the container uses the interfaces of ${owner.id}`],
      [['--mac', '02:00:00:00:00:09'], `--mac cannot be used with --net container:${owner.id}: the container uses the interfaces of ${owner.id}`],
    ] as const) {
      const r = run(['--net', `container:${owner.id}`, ...flags], 'true');
      expect(r.status).toBe(125);
      expect(r.stderr).toBe(`tsrun: ${message}\n`);
    }
    expect(usersDirs()).toEqual([owner.id]);
    owner.child.stdin!.end('\n');
    expect(await owner.exited).toBe(0);
  });
});
