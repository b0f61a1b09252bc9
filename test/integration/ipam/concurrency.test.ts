// IPAM on one LocalStore directory shared by many processes: the createIfAbsent/link protocol
// must give every container a distinct address without any lock, and a process killed at any
// moment must never leave a lease that reads as garbage.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkContainerId } from '../../../config/ids.js';
import { contains, parseAddress } from '../../../config/address.js';
import { Ipam, type IpamNetwork } from '../../../runtime/ipam/ipam.js';
import { decodeHolder } from '../../../runtime/ipam/holder.js';
import { LocalStore } from '../../../runtime/store/local.js';
import { KEPT_DIRS, VOLATILE_PREFIXES } from '../../../runtime/store/open.js';

const WORKER = fileURLToPath(new URL('./fixtures/allocate-worker.js', import.meta.url));

interface Outcome {
  ok: { containerId: string; ip: string }[];
  failed: { containerId: string; message: string }[];
}

function startWorker(root: string, mode: 'allocate' | 'churn', id: number, net: IpamNetwork, count = 10): ChildProcess {
  return spawn(process.execPath, [WORKER, root, mode, String(id), JSON.stringify(net), String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    // 'close' (not 'exit'): it comes after the IPC channel has delivered every message.
    const onClose = (code: number | null, signal: string | null) => reject(new Error(`worker ${child.pid} exited (${code ?? signal}) before reporting`));
    child.once('close', onClose);
    child.once('message', (m) => {
      child.off('close', onClose);
      resolve(m as T);
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** Starts `workers` allocate-mode children, waits until all are ready, releases them at once. */
async function allocateInParallel(root: string, net: IpamNetwork, workers: number, each: number, alsoInProcess?: () => Promise<unknown>): Promise<Outcome> {
  const children = Array.from({ length: workers }, (_, i) => startWorker(root, 'allocate', i, net, each));
  await Promise.all(children.map((c) => nextMessage<string>(c)));
  const reports = children.map((c) => nextMessage<Outcome>(c));
  for (const c of children) c.send('go');
  await alsoInProcess?.();
  const outcomes = await Promise.all(reports);
  await Promise.all(children.map(exited));
  return { ok: outcomes.flatMap((o) => o.ok), failed: outcomes.flatMap((o) => o.failed) };
}

describe('IPAM over LocalStore, many processes', () => {
  let dir: string;
  let root: string;
  beforeEach(async () => {
    dir = await mkdtemp('/tmp/tsC-ipam-');
    root = path.join(dir, 'store');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives 100 allocations from 10 processes (10 concurrent each) plus 20 in-process distinct addresses', async () => {
    const net = { name: 'web', subnet: '10.88.0.0/24' };
    const parent = new Ipam(new LocalStore(root));
    let inProcess: { containerId: string; ip: string }[] = [];
    const { ok, failed } = await allocateInParallel(root, net, 10, 10, async () => {
      inProcess = await Promise.all(Array.from({ length: 20 }, async (_, i) => ({ containerId: `parent-c${i}`, ip: (await parent.allocate(net, `parent-c${i}`)).ip })));
    });
    expect(failed).toEqual([]);
    expect(ok).toHaveLength(100);
    const all = [...ok, ...inProcess];
    expect(new Set(all.map((a) => a.ip)).size).toBe(120);
    // What a fresh reader sees matches what each allocator was told.
    const leases = await new Ipam(new LocalStore(root)).leases('web');
    expect(leases).toHaveLength(120);
    const byIp = new Map(leases.map((l) => [l.ip, l.containerId]));
    for (const a of all) expect(byIp.get(a.ip)).toBe(a.containerId);
    expect((await readdir(path.join(root, 'ipam/web'))).filter((n) => n.includes('~'))).toEqual([]);
  });

  it('fills a /26 exactly under contention: 61 winners, 19 clean "no free addresses" errors', async () => {
    const net = { name: 'tight', subnet: '10.66.0.0/26' };
    const { ok, failed } = await allocateInParallel(root, net, 10, 8);
    expect(ok).toHaveLength(61);
    expect(new Set(ok.map((a) => a.ip)).size).toBe(61);
    expect(failed).toHaveLength(19);
    for (const f of failed) expect(f.message).toBe('network tight has no free addresses in 10.66.0.0/26');
    expect(await new Ipam(new LocalStore(root)).leases('tight')).toHaveLength(61);
  });

  it('never leaves an empty or corrupt lease when processes are SIGKILLed mid-allocation', async () => {
    const net = { name: 'crash', subnet: '10.55.0.0/16' };
    const rounds = 8;
    const perRound = 5;
    for (let r = 0; r < rounds; r++) {
      const children = Array.from({ length: perRound }, (_, i) => startWorker(root, 'churn', r * perRound + i, net));
      await Promise.all(children.map(async (c) => {
        await nextMessage<string>(c);
        await new Promise((res) => setTimeout(res, Math.random() * 40));
        c.kill('SIGKILL');
        await exited(c);
      }));
    }
    const leaseDir = path.join(root, 'ipam/crash');
    const names = await readdir(leaseDir);
    const leftovers = names.filter((n) => n.includes('~'));
    let leases = 0;
    for (const name of names.filter((n) => !n.includes('~'))) {
      const value = await readFile(path.join(leaseDir, name), 'utf8');
      if (name.startsWith('_last.')) {
        expect(contains(net.subnet, parseAddress(value))).toBe(true);
        continue;
      }
      leases++;
      expect(contains(net.subnet, parseAddress(name))).toBe(true);
      // A whole holder value (ipam/holder.ts), never a torn one.
      const holder = decodeHolder(value);
      expect(holder.container).toMatch(/^w\d+-l\d-n\d+$/);
      expect(checkContainerId(holder.container)).toBe(holder.container);
      expect(holder.instance).toMatch(/^[0-9a-f]{12}$/);
    }
    expect(leases).toBeGreaterThan(0);
    // The store's own view agrees, and sweep clears what the killed processes left.
    const store = new LocalStore(root);
    expect((await new Ipam(store).leases('crash')).length).toBe(leases);
    const swept = await store.sweep(0);
    expect(swept.removedTemps + swept.restored + swept.removedTombstones).toBe(leftovers.length);
    expect((await readdir(leaseDir)).filter((n) => n.includes('~'))).toEqual([]);
    console.log(`crash test: ${rounds * perRound} processes killed, ${leases} leases intact, ${leftovers.length} temp/tombstone files left behind and swept (${JSON.stringify(swept)})`);

    // Then allocators on what the killed ones left: the pools hold spares written with other
    // leases' (longer) values, some parked by processes killed right after. Every new lease must
    // read back exactly as its allocator was told (the spare's old bytes cut off, never another
    // key's value), and no address may be handed out twice.
    // Some of the survivors released as a container's detach would (their files parked as spares).
    const recycling = new LocalStore(root, { volatile: VOLATILE_PREFIXES, recycle: VOLATILE_PREFIXES, keep: KEPT_DIRS });
    const survivors = (await readdir(leaseDir)).filter((n) => !n.includes('~') && !n.startsWith('_'));
    for (const ip of survivors.slice(0, 30)) {
      const value = await readFile(path.join(leaseDir, ip), 'utf8');
      expect(await new Ipam(recycling).release('crash', ip, decodeHolder(value).container, value)).toBe(true);
    }
    const pool = path.join(root, '~spare~ipam');
    const spares = (await readdir(pool).catch(() => [] as string[])).length;
    expect(spares).toBeGreaterThanOrEqual(30);
    const before = new Map((await new Ipam(store).leases('crash')).map((l) => [l.ip, l.containerId]));
    const { ok, failed } = await allocateInParallel(root, net, 5, 10);
    expect(failed).toEqual([]);
    expect(new Set(ok.map((a) => a.ip)).size).toBe(ok.length);
    for (const a of ok) expect(before.has(a.ip)).toBe(false);
    for (const a of ok) {
      const holder = decodeHolder(await readFile(path.join(leaseDir, a.ip), 'utf8'));
      expect(holder.container).toBe(a.containerId);
    }
    const after = await new Ipam(store).leases('crash');
    expect(after).toHaveLength(before.size + ok.length);
    for (const [ip, id] of before) expect(after.find((l) => l.ip === ip)?.containerId).toBe(id);
    console.log(`crash test: then ${ok.length} allocations over ${spares} spares, every value exact`);
  }, 90_000);
});
