// gc cannot hurt live work: `tsrun gc` runs in a loop while 100 hooks attach containers at once
// (and while they detach). gc and attaches coordinate through the host lock in the Store
// (runtime/locks.ts): every container ends up wired with the address its record names, no address
// is handed out twice, and at the end nothing is left.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SandboxHost, TSRUN_BIN, pinNetns, waitFor } from '../../harness/sandbox.js';
import type { EndpointRecord } from '../../../runtime/records.js';
import { decodeHolder } from '../../../runtime/ipam/holder.js';

const COUNT = 100;
let host: SandboxHost;
/** Pids of the tsrun processes started, in order (the stopped hook is found by it). */
const spawned: number[] = [];

beforeAll(async () => {
  host = await SandboxHost.create('i11race');
  const r = host.tsrun(['network', 'create', 'race', '--subnet', '10.96.0.0/22']);
  if (r.status !== 0) throw new Error(r.stderr);
});

afterAll(() => host.destroy());

function readSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function leaseFiles(): string[] {
  const dir = path.join(host.root, 'lib', 'store', 'ipam', 'race');
  try {
    return readdirSync(dir).filter((f) => !f.startsWith('_') && !f.includes('~')).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** Runs a tsrun command in the sandbox without blocking the event loop. */
function tsrunAsync(args: string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stderr: string; pid: number }> {
  const child = host.ns.spawn(TSRUN_BIN, [...args], { env: { ...host.env, ...env } });
  spawned.push(child.pid!);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  child.stdin!.end(input);
  return new Promise((resolve) => child.once('exit', (status) => resolve({ status, stderr, pid: child.pid! })));
}

function hook(stage: 'createRuntime' | 'poststop', id: string, pid?: number, env: NodeJS.ProcessEnv = {}) {
  const state = { ociVersion: '1.0.2', id, status: stage === 'poststop' ? 'stopped' : 'creating', ...(pid ? { pid } : {}), bundle: host.root, annotations: { 'io.tsrun.network': 'race' } };
  return tsrunAsync(['hook', stage], JSON.stringify(state), env);
}

/** `tsrun gc` over and over, in `workers` loops at once, until stopped; returns how many ran
 * and how they ended. */
function gcLoop(workers = 3): { stop(): Promise<{ runs: number; failures: string[] }> } {
  let stopping = false;
  let runs = 0;
  const failures: string[] = [];
  const loops = Array.from({ length: workers }, async () => {
    while (!stopping) {
      const r = await tsrunAsync(['gc']);
      runs++;
      if (r.status !== 0) failures.push(r.stderr.trim());
    }
  });
  return {
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      return { runs, failures };
    },
  };
}

/** SIGKILL to a pin, back once it has exited. */
async function ended(pin: ChildProcess): Promise<void> {
  if (pin.exitCode !== null || pin.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => pin.once('exit', () => resolve()));
  pin.kill('SIGKILL');
  await exited;
}

describe('gc against an attach caught half done', () => {
  it('waits for it: the lease an attach has taken but not yet recorded is not collected', async () => {
    const pin = await pinNetns('racehalf');
    let hookPid: number | undefined;
    try {
      // The hook stops itself right after leasing its address, before its veth and its record.
      const attach = hook('createRuntime', 'race-half', pin.pid, { TSRUN_FAULT_STOP_AFTER: 'lease an IPv4' });
      hookPid = spawned.at(-1)!;
      const stoppedPid = hookPid;
      await waitFor('the hook to stop after its lease', () => /^\S+ \(.*\) T /.test(readSafe(`/proc/${stoppedPid}/stat`)), 30_000);
      const lease = () => leaseFiles().filter((f) => decodeHolder(readSafe(f)).container === 'race-half');
      expect(lease()).toHaveLength(1);
      const gc = tsrunAsync(['gc']);
      // Give gc every chance to collect the lease (it has no record yet); no timing is asserted.
      await new Promise((r) => setTimeout(r, 3000));
      expect(lease()).toHaveLength(1);
      process.kill(hookPid, 'SIGCONT');
      expect((await attach).status).toBe(0);
      expect((await gc).status).toBe(0);
      expect(lease()).toHaveLength(1);
      // poststop comes once the container is gone (a record whose process runs is another's).
      await ended(pin);
      expect((await hook('poststop', 'race-half')).status).toBe(0);
    } finally {
      // Never leave it stopped (a failed assertion above skips the SIGCONT).
      if (hookPid !== undefined) spawnSync('kill', ['-CONT', String(hookPid)]);
      pin.kill('SIGKILL');
    }
    expect(host.leaks()).toEqual([]);
  });
});

describe('gc during 100 concurrent hook attaches', () => {
  it('breaks no container, hands out no address twice, and leaves nothing', async () => {
    const pins: ChildProcess[] = [];
    for (let i = 0; i < COUNT; i++) pins.push(await pinNetns(`race${i}`));
    const ids = pins.map((_, i) => `race-${i}`);
    try {
      const gc = gcLoop();
      const attached = await Promise.all(ids.map((id, i) => hook('createRuntime', id, pins[i]!.pid)));
      const duringAttach = await gc.stop();
      expect(attached.filter((r) => r.status !== 0).map((r) => r.stderr)).toEqual([]);
      expect(duringAttach.failures).toEqual([]);

      // Every container is wired as its record says, and no two share an address.
      const store = path.join(host.root, 'lib', 'store', 'endpoints');
      const records = ids.map((id) => JSON.parse(readFileSync(path.join(store, id, 'race'), 'utf8')) as EndpointRecord);
      const broken: string[] = [];
      for (const [i, rec] of records.entries()) {
        const r = host.ns.exec('nsenter', [`--net=/proc/${pins[i]!.pid}/ns/net`, 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
        if (!r.stdout.includes(`inet ${rec.ipv4!.address}/`)) broken.push(`${rec.containerId}: record ${rec.ipv4!.address}, eth0 ${r.stdout.trim() || r.stderr.trim()}`);
      }
      expect(broken).toEqual([]);
      // Each still holds its lease (gc removing a lease before its record was saved was the race).
      const lost = records.filter((rec) => {
        try {
          // The lease holds exactly the value the record says this attach wrote (its holder).
          return readFileSync(path.join(host.root, 'lib', 'store', 'ipam', 'race', rec.ipv4!.address), 'utf8') !== (rec.ipv4!.lease ?? rec.containerId);
        } catch {
          return true;
        }
      });
      expect(lost.map((r) => `${r.containerId} lost its lease of ${r.ipv4!.address}`)).toEqual([]);
      const addresses = records.map((r) => r.ipv4!.address);
      expect(new Set(addresses).size).toBe(COUNT);
      process.stdout.write(`gc race: ${COUNT} attaches, ${duringAttach.runs} gc runs meanwhile, 0 broken, ${COUNT - new Set(addresses).size} duplicate addresses\n`);

      // poststop comes once the containers are gone (a record whose process runs is another's).
      await Promise.all(pins.map(ended));
      const gc2 = gcLoop();
      const detached = await Promise.all(ids.map((id) => hook('poststop', id)));
      const duringDetach = await gc2.stop();
      expect(detached.filter((r) => r.status !== 0).map((r) => r.stderr)).toEqual([]);
      expect(duringDetach.failures).toEqual([]);
    } finally {
      for (const p of pins) p.kill('SIGKILL');
    }
    expect(host.tsrun(['gc']).status).toBe(0);
    expect(host.leaks()).toEqual([]);
    expect(host.ns.settledLinks(/^tsv/)).toEqual([]);
  }, 400_000); // 200 hook processes and the gc loop share two loaded cores
});
