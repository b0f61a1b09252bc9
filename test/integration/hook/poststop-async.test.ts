// poststop leaves the veth's delete to a detached process (dismissVeth): the record, firewall
// elements, host port and lease go at once, the host end is set down, off its bridge and renamed
// to its dying name, and `ip link delete` runs after the hook has exited. The container's
// namespace is kept alive here on purpose (a pin, as a runtime that pins it), so the
// half-removed state is real, and a deleter that never deletes (a stand-in `ip` that exits at
// once, i.e. a deleter killed before its delete) makes it last. Nothing half-removed may be
// observable: the old address answers no one (real packets), a new container holding it is
// the only one that answers, the same container id attaches again at once, and gc collects what
// the deleter left.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Netns, uniqueId, waitFor } from '../../harness/sandbox.js';
import type { ChildProcess } from 'node:child_process';
import { HookHost, containerProcess, endProcess, hostVethName } from './helpers.js';
import { dyingVethName } from '../../../runtime/drivers/linux-bridge.js';

const SUBNET = '10.131.0';
let hh: HookHost;
let noDeleter: string;
const used: { id: string; network?: string }[] = [];
const pins: Netns[] = [];

beforeAll(async () => {
  hh = await HookHost.create('hookasync');
  expect(hh.tsrun(['network', 'create', 'web', '--subnet', `${SUBNET}.0/24`]).status).toBe(0);
  // A deleter that exits without deleting anything, first on the hook's PATH.
  noDeleter = mkdtempSync(path.join(os.tmpdir(), 'tsrun-no-deleter-'));
  writeFileSync(path.join(noDeleter, 'ip'), '#!/bin/sh\nexit 0\n');
  chmodSync(path.join(noDeleter, 'ip'), 0o755);
});

afterAll(() => {
  hh?.destroy();
  rmSync(noDeleter, { recursive: true, force: true });
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const p of pins.splice(0)) p.destroy();
  const ids = used.splice(0);
  const leaks = hh.leaks(ids);
  // A failed test must not spill into the next one (a host port still published).
  if (leaks.length > 0) for (const c of ids) poststop(c.id);
  expect(leaks).toEqual([]);
});

async function containerNs(): Promise<Netns> {
  const ns = await Netns.create('ctr');
  pins.push(ns);
  return ns;
}

function hook(stage: string, state: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  return hh.tsrun(['hook', stage], { input: JSON.stringify({ ociVersion: '1.0.2', bundle: '/nonexistent', ...state }), env });
}

/** The container's process (a `sleep` in the pinned namespace) by id: it ends before poststop. */
const processes = new Map<string, number>();
const children: ChildProcess[] = [];

async function wire(id: string, ns: Netns, o: { ip?: string; port?: boolean } = {}) {
  used.push({ id, network: 'web' });
  const annotations = { 'io.tsrun.network': 'web', ...(o.port ? { 'io.tsrun.ports': '8080:80/tcp' } : {}), ...(o.ip ? { 'io.tsrun.ip': o.ip } : {}) };
  const pid = await containerProcess(ns, children);
  processes.set(id, pid);
  const r = hook('createRuntime', { id, status: 'creating', pid, annotations });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

/** poststop as a runtime runs it: once the container's process has ended (its namespace stays). */
function poststop(id: string, env: NodeJS.ProcessEnv = {}) {
  const pid = processes.get(id);
  if (pid !== undefined) endProcess(pid);
  return hook('poststop', { id, status: 'stopped' }, env);
}

interface JsonLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  master?: string;
  address?: string;
}

function hostLinks(): JsonLink[] {
  return JSON.parse(hh.host.ns.sh('ip -j link show')) as JsonLink[];
}

/** An echo reply to one of five requests (each its own ping, a second apart at most), from the
 * sandbox host or a container's namespace. Not just one: a sender whose ARP question for the
 * address went unanswered a moment ago may still be retrying that question when the new holder
 * comes up, and drops what it queued behind it when the retries run out. */
function answers(address: string, from?: Netns): boolean {
  for (let i = 0; i < 5; i++) {
    if ((from ?? hh.host.ns).exec('/bin/busybox', ['ping', '-q', '-c', '1', '-W', '1', address]).status === 0) return true;
  }
  return false;
}

/** No reply to three echo requests within a second of the last. */
function silent(address: string, from?: Netns): boolean {
  return (from ?? hh.host.ns).exec('/bin/busybox', ['ping', '-q', '-c', '3', '-i', '0.3', '-W', '1', address]).status !== 0;
}

function eth0Mac(ns: Netns): string {
  return (JSON.parse(ns.sh('ip -j link show dev eth0')) as JsonLink[])[0]!.address!;
}

describe('poststop deletes the veth asynchronously, and nothing half-removed can be seen', () => {
  it('with a deleter that never deletes: the address answers no one, then only its new holder; the id attaches again; gc collects the link', async () => {
    const address = `${SUBNET}.10`;
    const id = uniqueId('pa');
    const old = await containerNs();
    await wire(id, old, { ip: address, port: true });
    const client = await containerNs();
    const clientId = uniqueId('pa');
    await wire(clientId, client);
    expect(answers(address, client)).toBe(true); // the client's neighbour table now names the old MAC
    const hostEnd = hostLinks().find((l) => l.ifname === hostVethName(id, 'web'))!;
    expect(hostEnd.master).toBe('ts-web');

    const r = poststop(id, { PATH: `${noDeleter}:${process.env.PATH}` });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);

    // Set aside: down, on no bridge, under its dying name; the container's name is free.
    const links = hostLinks();
    expect(links.find((l) => l.ifname === hostVethName(id, 'web'))).toBeUndefined();
    const dying = links.find((l) => l.ifindex === hostEnd.ifindex)!;
    expect(dying.ifname).toBe(dyingVethName(hostEnd.ifindex));
    expect(dying.master).toBeUndefined();
    expect(dying.flags).not.toContain('UP');
    // Its record, lease, host port and firewall elements are gone already.
    expect(hh.leaksOf([{ id }])).toEqual([]);
    // The old namespace still holds the address, up; yet nothing reaches it: not the client that
    // talked to it a moment ago, not the host.
    expect(old.sh('ip -o -4 addr show eth0')).toContain(`inet ${address}/`);
    expect(silent(address, client)).toBe(true);
    expect(silent(address)).toBe(true);

    // The lease is handed on at once, and the new holder is the one that answers.
    const next = await containerNs();
    const nextId = uniqueId('pa');
    await wire(nextId, next, { ip: address, port: true });
    expect(answers(address)).toBe(true);
    const neighbour = JSON.parse(hh.host.ns.sh(`ip -j neigh show ${address}`)) as { lladdr?: string }[];
    expect(neighbour.map((n) => n.lladdr)).toEqual([eth0Mac(next)]);

    // The same container id again, while the old pair still exists.
    const again = await containerNs();
    await wire(id, again);
    expect(again.sh('ip -o -4 addr show eth0')).toMatch(new RegExp(`inet ${SUBNET.replaceAll('.', '\\.')}\\.\\d+/24`));
    expect(answers(again.sh('ip -o -4 addr show eth0').match(/inet (\S+)\//)![1]!)).toBe(true);

    for (const c of [id, nextId, clientId]) expect(poststop(c).status).toBe(0);
    // What the deleter left (its namespace is still held, so the kernel has not deleted it): gc's.
    expect(hostLinks().some((l) => l.ifname === dying.ifname)).toBe(true);
    const gc = hh.tsrun(['gc']);
    expect(gc.status).toBe(0);
    expect(gc.stdout + gc.stderr).toContain(dying.ifname);
    expect(hostLinks().some((l) => l.ifindex === hostEnd.ifindex)).toBe(false);
    expect(old.linkNames()).toEqual(['lo']); // its pair went with it
  });

  it('with the real deleter, the pair goes while its namespace is still held', async () => {
    const id = uniqueId('pa');
    const ns = await containerNs();
    await wire(id, ns, { port: true });
    const index = hostLinks().find((l) => l.ifname === hostVethName(id, 'web'))!.ifindex;
    expect(poststop(id).status).toBe(0);
    await waitFor('the detached delete', () => !hostLinks().some((l) => l.ifindex === index));
    expect(ns.linkNames()).toEqual(['lo']);
  });
});
