// The firewall self-check across hook processes (runtime/firewall/intact-record.ts): the run
// directory keeps the nf_tables generation at which tsrun's tables were last known intact, and a
// stage's own element batch on such tables carries it one step on. A poststop right after an
// untouched createRuntime takes that record for the check (no dumps); a rule deleted by hand in
// between, or a record of another schema, means the full check, which finds the damage and
// rebuilds the table. Real hooks, a real kernel, in a sandbox namespace.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Netns } from '../../harness/sandbox.js';
import { HookHost, containerProcess, endProcess } from './helpers.js';

const TRUSTED = 'firewall self-check: nothing committed since the tables were last known intact';
const REBUILT = 'firewall table rebuilt';
let hh: HookHost;
const used: { id: string; network?: string }[] = [];
const pins: Netns[] = [];
const children: ChildProcess[] = [];
const processes = new Map<string, number>();

beforeAll(async () => {
  hh = await HookHost.create('hookrec');
  expect(hh.tsrun(['network', 'create', 'web', '--subnet', '10.132.0.0/24']).status).toBe(0);
});

afterAll(() => {
  hh?.destroy();
});

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const p of pins.splice(0)) p.destroy();
  const ids = used.splice(0);
  const leaks = hh.leaks(ids);
  if (leaks.length > 0) for (const c of ids) poststop(c.id);
  expect(leaks).toEqual([]);
});

function hook(stage: string, state: Record<string, unknown>) {
  return hh.tsrun(['hook', stage], { input: JSON.stringify({ ociVersion: '1.0.2', bundle: '/nonexistent', ...state }), env: { TSRUN_LOG_LEVEL: 'debug' } });
}

async function wire(id: string): Promise<void> {
  const ns = await Netns.create('ctr');
  pins.push(ns);
  used.push({ id, network: 'web' });
  const pid = await containerProcess(ns, children);
  processes.set(id, pid);
  const r = hook('createRuntime', { id, status: 'creating', pid, annotations: { 'io.tsrun.network': 'web', 'io.tsrun.ports': '8080:80/tcp' } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

function poststop(id: string) {
  const pid = processes.get(id);
  if (pid !== undefined) endProcess(pid);
  return hook('poststop', { id, status: 'stopped' });
}

const logFile = () => path.join(hh.root, 'log', 'tsrun.log');
const recordFile = () => path.join(hh.root, 'run', 'firewall.intact');

/** The messages of the log lines the poststop of `id` wrote. */
function poststopLines(id: string, from: number): string[] {
  return readFileSync(logFile(), 'utf8')
    .slice(from)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { containerId?: string; stage?: string; msg: string })
    .filter((l) => l.containerId === id && l.stage === 'poststop')
    .map((l) => l.msg);
}

const masquerade = () => /masquerade comment "a: outbound NAT v4.*# handle (\d+)/.exec(hh.host.ns.sh('nft -a list chain inet tsrun postrouting'));

describe("the firewall self-check takes the last stage's word across processes, and only when nothing else committed", () => {
  it('a poststop right after an untouched createRuntime: the recorded generation stands for the check, nothing is rebuilt', async () => {
    await wire('rec-a'); // the first one may build or check the tables
    expect(poststop('rec-a').status).toBe(0);
    await wire('rec-b');
    expect(readFileSync(recordFile(), 'utf8').split('\n')[0]).toMatch(/^v1-[0-9a-f]+ \d+:\d+$/);
    const from = readFileSync(logFile(), 'utf8').length;
    const r = poststop('rec-b');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = poststopLines('rec-b', from);
    expect(lines).toContain(TRUSTED);
    expect(lines).not.toContain(REBUILT);
    expect(lines).toContain('hook done');
  });

  it('a rule deleted by hand between createRuntime and poststop: the full check finds it and the table is rebuilt', async () => {
    await wire('rec-c');
    hh.host.ns.sh(`nft delete rule inet tsrun postrouting handle ${masquerade()![1]}`);
    expect(masquerade()).toBeNull();
    const from = readFileSync(logFile(), 'utf8').length;
    expect(poststop('rec-c').status).toBe(0);
    const lines = poststopLines('rec-c', from);
    expect(lines).not.toContain(TRUSTED);
    expect(lines).toContain(REBUILT);
    expect(masquerade()).not.toBeNull();
  });

  it("a record of another schema (another tsrun version's) is not taken", async () => {
    await wire('rec-d');
    const [scope, id] = readFileSync(recordFile(), 'utf8').split('\n');
    writeFileSync(recordFile(), `${scope!.replace(/^v1-[0-9a-f]+/, 'v1-0000000000')}\n${id}\n`);
    const from = readFileSync(logFile(), 'utf8').length;
    expect(poststop('rec-d').status).toBe(0);
    const lines = poststopLines('rec-d', from);
    expect(lines).not.toContain(TRUSTED);
    expect(lines).not.toContain(REBUILT); // checked in full, and intact
  });
});
