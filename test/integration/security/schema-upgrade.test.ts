// An in-place upgrade: table inet tsrun (and the port guard's bridge tsrun) built by an older
// tsrun, whose fixed rules lack this version's (e.g. forward's rule k, the guard's VLAN drop).
// The first container the new build starts must not run under the old rules until some other
// command happens to rebuild the table: its own attach rebuilds it before its elements are added
// (the schema marker in every attach batch, runtime/firewall/nft-rules.ts schemaMarkBatch).
// Before that, `run -d` and CNI ADD (and run -p, the hook, tsrun-runc: one attach path,
// runtime/firewall/owned-attach.ts) added its elements to the old table as it was.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld } from '../../harness/bridge-world.js';
import { isStopped, uniqueId, waitFor } from '../../harness/sandbox.js';
import { callPlugin, containerNs, type Conf } from '../cni/helpers.js';
import { GUARD_RULE_COUNT, RULE_COUNT, schemaId } from '../../../runtime/firewall/nft-rules.js';

const NET = 'i16sch';
let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('i16sc');
  w.tsrunOk(['network', 'create', NET, '--subnet', '10.57.0.0/24']);
});
afterAll(async () => {
  await w.stopAll();
  w.host.tsrun(['network', 'rm', '--force', NET]);
  expect(w.leaks()).toEqual([]);
  await w.destroy();
});

const marker = `schema_${schemaId().replace(/-/g, '_')}`;
const listing = (family: string) => w.host.ns.sh(`nft -a list table ${family} tsrun`);
const inetRules = () => (listing('inet').match(/comment "[^"]*\(tsrun /g) ?? []).length;
const guardRules = () => (listing('bridge').match(/comment "guard: /g) ?? []).length;

function deleteRule(family: string, chain: string, label: string): void {
  const line = listing(family).split('\n').find((l) => l.includes(label));
  const handle = /# handle (\d+)/.exec(line ?? '')?.[1];
  expect(handle).toBeDefined();
  w.host.ns.sh(`nft delete rule ${family} tsrun ${chain} handle ${handle}`);
}

/** The tables as an older schema built them: no marker of this schema, fewer fixed rules. */
function makeOldSchema(): void {
  w.host.ns.sh(`nft delete set inet tsrun ${marker}`);
  deleteRule('inet', 'forward', 'k: container sources only from tsrun bridges v4');
  deleteRule('bridge', 'guard', 'VLAN-tagged frames');
  expect(inetRules()).toBe(RULE_COUNT - 1);
  expect(guardRules()).toBe(GUARD_RULE_COUNT - 1);
}

describe('a table of an older schema (in-place upgrade)', () => {
  it('is rebuilt with the current fixed rules by `run -d`, the first command after the upgrade', () => {
    makeOldSchema();
    const id = `i16sch-${process.pid}`;
    w.tsrunOk(['run', '-d', '--name', id, '--net', NET, w.bundle, '--', 'sleep', '600']);
    try {
      // No other command in between: what run -d left is what its container runs under.
      expect(inetRules()).toBe(RULE_COUNT);
      expect(guardRules()).toBe(GUARD_RULE_COUNT);
      expect(listing('inet')).toContain('k: container sources only from tsrun bridges v4');
      expect(listing('bridge')).toContain('VLAN-tagged frames');
      expect(listing('inet')).toContain(`set ${marker} `);
      // and the container's own elements are in the rebuilt table
      expect(listing('bridge')).toContain(`"ctr:${id}"`);
    } finally {
      w.tsrunOk(['rm', '-f', id]);
    }
    expect(listing('bridge')).not.toContain(`"ctr:${id}"`);
  });

  it('is rebuilt by CNI ADD (the same attach path as the hook and tsrun-runc)', async () => {
    const conf: Conf = { cniVersion: '1.0.0', name: 'i16schcni', type: 'tsrun', subnet: '10.58.0.0/24' };
    const nss = [await containerNs(uniqueId('i16c')), await containerNs(uniqueId('i16c'))];
    const ats = nss.map((ns) => ({ containerId: uniqueId('i16cni'), netns: ns.path, ifname: 'eth0' }));
    try {
      expect(callPlugin(w.host, 'ADD', conf, ats[0]).status).toBe(0);
      makeOldSchema();
      expect(callPlugin(w.host, 'ADD', conf, ats[1]).status).toBe(0);
      expect(inetRules()).toBe(RULE_COUNT);
      expect(guardRules()).toBe(GUARD_RULE_COUNT);
      expect(listing('inet')).toContain(`set ${marker} `);
    } finally {
      for (const a of ats) callPlugin(w.host, 'DEL', conf, a);
      for (const ns of nss) ns.destroy();
    }
  });

  it('a run -p killed after every setup step while it rebuilds an old table: the same run again works, under the current rules, nothing left', () => {
    const id = `i16schk-${process.pid}`;
    const args = ['run', '--name', id, '--net', NET, '-p', '8571:80', w.bundle, '--', 'true'];
    const killed = (r: { signal: NodeJS.Signals | null; status: number | null }) => r.signal === 'SIGKILL' || r.status === 137;
    let k = 1;
    for (; k <= 60; k++) {
      makeOldSchema();
      const r = w.host.tsrun(args, { env: { TSRUN_FAULT_KILL_AFTER: `setup:${k}` } });
      if (!killed(r)) {
        expect({ k, status: r.status, stderr: r.stderr }).toEqual({ k, status: 0, stderr: '' });
        break;
      }
      // The table is of this schema or still the old one (a kill before the attach's batch): the
      // next attach rebuilds it either way; the same name runs, without gc.
      const again = w.host.tsrun(args);
      expect({ k, status: again.status, stderr: again.stderr }).toEqual({ k, status: 0, stderr: '' });
      expect({ k, inet: inetRules(), guard: guardRules() }).toEqual({ k, inet: RULE_COUNT, guard: GUARD_RULE_COUNT });
      expect({ k, left: w.leaks() }).toEqual({ k, left: [] });
    }
    expect(k).toBeGreaterThan(8);
    expect(k).toBeLessThanOrEqual(60);
  }, 240_000);

  it('two first attaches against an old table: the second rebuild does not drop what the first added (one rebuild at a time)', async () => {
    makeOldSchema();
    const ids = [`i16scha-${process.pid}`, `i16schb-${process.pid}`];
    const start = (id: string, port: number, env: NodeJS.ProcessEnv) => {
      const child = w.host.spawnTsrun(['run', '-d', '--name', id, '--net', NET, '-p', `${port}:80`, w.bundle, '--', 'sleep', '600'], env);
      child.stdout!.resume();
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<{ code: number | null; err: string }>((r) => child.once('exit', (code) => r({ code, err })));
      return { child, exited };
    };
    try {
      // A looks at the old table and stops before it rebuilds.
      const a = start(ids[0]!, 8572, { TSRUN_FAULT_PAUSE_AT: 'firewall rebuild:stop' });
      await waitFor('A stopped before its rebuild', () => isStopped(a.child.pid!), 20_000);
      // B meanwhile: before, it rebuilt, added its elements and stopped here, its record not yet
      // saved; A's rebuild from the Store then dropped B's elements (its port guard and port).
      const b = start(ids[1]!, 8573, { TSRUN_FAULT_STOP_AFTER: 'firewall elements' });
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(a.child.pid!, 'SIGCONT');
      expect(await a.exited).toEqual({ code: 0, err: '' });
      await waitFor('B stopped after its firewall elements', () => isStopped(b.child.pid!), 20_000);
      process.kill(b.child.pid!, 'SIGCONT');
      expect(await b.exited).toEqual({ code: 0, err: '' });
      expect(inetRules()).toBe(RULE_COUNT);
      for (const id of ids) {
        expect({ id, guard: listing('bridge').includes(`"ctr:${id}"`), ports: listing('inet').includes(`"ctr:${id}"`) }).toEqual({ id, guard: true, ports: true });
      }
    } finally {
      for (const id of ids) w.host.tsrun(['rm', '-f', id]);
    }
  }, 60_000);
});
