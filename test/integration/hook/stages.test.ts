// Stage logic that needs real namespaces but no runtime: the hook called directly, inside a
// sandbox host, with states naming container namespaces held by test processes.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { Netns, uniqueId, waitFor } from '../../harness/sandbox.js';
import { HookHost, containerProcess, endProcess, hostVethName } from './helpers.js';

let hh: HookHost;
const initVisible = (() => {
  try {
    readlinkSync('/proc/1/ns/net');
    return true;
  } catch {
    return false;
  }
})();
const used: { id: string; network?: string }[] = [];
const pins: Netns[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  hh = await HookHost.create('hookstages');
  expect(hh.tsrun(['network', 'create', 'web', '--subnet', '10.127.0.0/24']).status).toBe(0);
});

afterAll(() => hh.destroy());

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const p of pins.splice(0)) p.destroy();
  const leaks = hh.leaks(used.splice(0));
  expect(leaks).toEqual([]);
});

async function containerNs(): Promise<Netns> {
  const ns = await Netns.create('ctr');
  pins.push(ns);
  return ns;
}

function hook(stage: string, state: Record<string, unknown>) {
  return hh.tsrun(['hook', stage], { input: JSON.stringify({ ociVersion: '1.0.2', bundle: '/nonexistent', ...state }) });
}

const stopped = (id: string) => ({ id, status: 'stopped' });

describe('hook stages against real namespaces', () => {
  it('a record left by an earlier container of the same id (no poststop) is cleared, then the new one wired', async () => {
    const id = uniqueId('hs');
    used.push({ id, network: 'web' });
    const first = await containerNs();
    expect(hook('createRuntime', { id, status: 'creating', pid: first.pid, annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ip': '10.127.0.10' } }).status).toBe(0);
    // The container dies and its poststop never runs.
    first.destroy();
    pins.splice(pins.indexOf(first), 1);
    await waitFor('the veth to go with its namespace', () => !hh.host.ns.linkNames().includes(hostVethName(id, 'web')));

    const second = await containerNs();
    const r = hook('createRuntime', { id, status: 'creating', pid: second.pid, annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ip': '10.127.0.10' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(second.sh('ip -o -4 addr show eth0')).toContain('10.127.0.10/24');
    expect(hh.logOf(id).some((l) => l.msg === 'removing the endpoint of an earlier container with this id (its poststop never ran)')).toBe(true);
    endProcess(second.pid); // poststop comes once the container is gone
    expect(hook('poststop', stopped(id)).status).toBe(0);
  });

  it('the same id wired for another live container is refused', async () => {
    const id = uniqueId('hs');
    used.push({ id, network: 'web' });
    const live = await containerNs();
    expect(hook('createRuntime', { id, status: 'creating', pid: live.pid, annotations: { 'io.tsrun.network': 'web' } }).status).toBe(0);
    const other = await containerNs();
    const r = hook('createRuntime', { id, status: 'creating', pid: other.pid, annotations: { 'io.tsrun.network': 'web' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`tsrun: hook createRuntime: container id ${id} is already wired into network web for another live container\n`);
    expect(other.linkNames()).toEqual(['lo']);
    expect(live.linkNames()).toEqual(['eth0', 'lo']);
    // The other container's poststop (it never ran) leaves the live one alone; the live one's own
    // poststop, once its process has ended, tears it down.
    expect(hook('poststop', stopped(id)).status).toBe(0);
    expect(live.linkNames()).toEqual(['eth0', 'lo']);
    expect(hh.logOf(id).filter((l) => l.msg === 'hook done').map((l) => l.result).at(-1)).toBe('nothing-to-do');
    endProcess(live.pid);
    expect(hook('poststop', stopped(id)).status).toBe(0);
  });

  it('container:<id>: accepted when the runtime put the container into that namespace, refused otherwise', async () => {
    const a = uniqueId('hs');
    const b = uniqueId('hs');
    used.push({ id: a, network: 'web' }, { id: b });
    const ns = await containerNs();
    const aPid = await containerProcess(ns, children);
    expect(hook('createRuntime', { id: a, status: 'creating', pid: aPid, annotations: { 'io.tsrun.network': 'web' } }).status).toBe(0);

    // B's process lives in A's namespace.
    const inA = ns.spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(inA);
    await waitFor('a process in the namespace', () => {
      try {
        return readlinkSync(`/proc/${inA.pid}/ns/net`) === readlinkSync(ns.path) && readFileSync(`/proc/${inA.pid}/comm`, 'utf8').trim() === 'sleep';
      } catch {
        return false;
      }
    });
    const ok = hook('createRuntime', { id: b, status: 'creating', pid: inA.pid, annotations: { 'io.tsrun.network': `container:${a}` } });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ns.linkNames()).toEqual(['eth0', 'lo']); // nothing added

    const elsewhere = await containerNs();
    const bad = hook('createRuntime', { id: b, status: 'creating', pid: elsewhere.pid, annotations: { 'io.tsrun.network': `container:${a}` } });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^tsrun: hook createRuntime: io\.tsrun\.network=container:\S+: the container is not in \S+'s network namespace; the runtime must join that namespace/);
    const never = hook('createRuntime', { id: b, status: 'creating', pid: elsewhere.pid, annotations: { 'io.tsrun.network': 'container:nobody' } });
    expect(never.stderr).toMatch(/tsrun has not wired a container nobody/);

    endProcess(inA.pid!);
    expect(hook('poststop', stopped(b)).status).toBe(0);
    endProcess(aPid);
    expect(hook('poststop', stopped(a)).status).toBe(0);
  });

  it('a state naming a process in the namespace of one of the hook\'s ancestors is never wired', () => {
    // The test process is an ancestor of the hook (jest → nsenter → node), in another namespace
    // than the sandbox host: wiring it would touch this machine's own namespace.
    const id = uniqueId('hs');
    used.push({ id, network: 'web' });
    const r = hook('createRuntime', { id, status: 'creating', pid: process.pid, annotations: { 'io.tsrun.network': 'web' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^tsrun: hook createRuntime: process ${process.pid} of container ${id} is in the network namespace of process \\d+ \\(\\S+\\), which started this hook: refusing to wire it\n$`));
  });

  it('a process whose namespace cannot be opened: one line naming it', () => {
    const id = uniqueId('hs');
    used.push({ id, network: 'web' });
    const r = hook('createRuntime', { id, status: 'creating', pid: 1, annotations: { 'io.tsrun.network': 'web' } });
    expect(r.status).toBe(1);
    if (initVisible) {
      expect(r.stderr).toMatch(/^tsrun: hook createRuntime: process 1 of container \S+ is in the network namespace of process 1 /);
    } else {
      // This machine's init forbids inspecting it (EACCES even for root).
      expect(r.stderr).toBe(`tsrun: hook createRuntime: cannot open the network namespace of process 1 of container ${id} (EACCES)\n`);
    }
  });
});

