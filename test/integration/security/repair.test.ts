// A firewall that repairs itself: table inet tsrun deleted (what `nft flush ruleset`, the first
// line of Debian's /etc/nftables.conf, does on every firewall reload) is rebuilt whole from the
// Store by the next tsrun command, by `tsrun network reload`, and by a running agent. Rebuilt
// whole means: isolation between networks, --internal and every published port, not only the
// network the next command happens to touch.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld, HOST_UPLINK_IP, type RunningContainer } from '../../harness/bridge-world.js';
import { EtcdServer, haveEtcd } from '../../harness/etcd.js';
import { waitFor } from '../../harness/sandbox.js';
import { GUARD_RULE_COUNT, RULE_COUNT } from '../../../runtime/firewall/nft-rules.js';

let w: BridgeWorld;
let web: RunningContainer;
beforeAll(async () => {
  w = await BridgeWorld.create('i10rp');
  w.tsrunOk(['network', 'create', 'i10web', '--subnet', '10.51.0.0/24']);
  w.tsrunOk(['network', 'create', 'i10other', '--subnet', '10.52.0.0/24']);
  w.tsrunOk(['network', 'create', 'i10inner', '--subnet', '10.53.0.0/24', '--internal']);
  web = await w.start(['--net', 'i10web', '-p', '8500:80'], 'httpd -f -p 80 -h /var/www');
  await w.start(['--net', 'i10inner'], 'sleep 600'); // its elements (internal_bridges) must come back
  await w.waitHttp(w.ip(web.id, 'i10web'));
});
afterAll(async () => {
  await w.stopAll();
  w.host.tsrun(['network', 'rm', '--force', 'i10web', 'i10other', 'i10inner']);
  expect(w.leaks()).toEqual([]);
  await w.destroy();
});

const PAGE = 'tsrun busybox fixture';

/** The table's elements in a stable form (what must come back). */
function elements(): string[] {
  const r = w.host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
  if (r.status !== 0) return [];
  const out: string[] = [];
  for (const o of (JSON.parse(r.stdout) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] }).nftables) {
    const s = o.set ?? o.map;
    for (const e of s?.elem ?? []) out.push(`${s!.name} ${JSON.stringify(e)}`);
  }
  return out.sort();
}

function rules(): number {
  const r = w.host.ns.exec('nft', ['-j', '-t', 'list', 'table', 'inet', 'tsrun']);
  return r.status !== 0 ? 0 : (JSON.parse(r.stdout) as { nftables: object[] }).nftables.filter((o) => 'rule' in o).length;
}

/** Everything the table protects, checked with packets. */
function expectProtected(): void {
  // published port from the LAN
  expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8500/`)?.trim()).toBe(PAGE);
  // isolation: another network cannot reach the web container directly
  const probe = w.run(['--net', 'i10other'], ['sh', '-c', `timeout 2 wget -qO- http://${w.ip(web.id, 'i10web')}/ || echo isolated`]);
  expect(probe.stdout.trim()).toBe('isolated');
}

function deleteTable(): void {
  w.host.ns.sh('nft delete table inet tsrun');
  expect(rules()).toBe(0);
  // control: without the table the published port is gone
  expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8500/`, 1500)).toBeUndefined();
}

afterEach(() => {
  expect(rules()).toBe(RULE_COUNT);
});

describe('a deleted table inet tsrun', () => {
  let before: string[];
  beforeAll(() => {
    before = elements();
    expect(before.length).toBeGreaterThan(0);
  });

  it('is rebuilt whole by the next tsrun command (network ls)', () => {
    expectProtected();
    deleteTable();
    w.tsrunOk(['network', 'ls']);
    expect(elements()).toEqual(before);
    expectProtected();
  });

  it('is rebuilt whole by the next container attach, not just that network\'s elements', () => {
    deleteTable();
    const r = w.run(['--net', 'i10other'], ['true']);
    expect(r.status).toBe(0);
    expect(elements()).toEqual(before);
    expectProtected();
  });

  it('a rule deleted while a foreground run -p waits for its container is restored by that run\'s detach (its check ahead is stale)', async () => {
    // The run checks the tables while its container runs and remembers the ruleset's generation
    // (backend.ts intactOverNetlink); the deletion below is a commit, so its detach checks again in full.
    const c = await w.start(['--net', 'i10other', '-p', '8501:80'], 'sleep 600', 'ahead');
    await new Promise((r) => setTimeout(r, 300));
    const handle = /# handle (\d+)/.exec(w.host.ns.sh('nft -a list chain inet tsrun forward | grep "default-deny"'))![1]!;
    w.host.ns.sh(`nft delete rule inet tsrun forward handle ${handle}`);
    expect(rules()).toBe(RULE_COUNT - 1);
    expect(await c.stop()).toBe(0);
    expect(rules()).toBe(RULE_COUNT);
    expect(elements()).toEqual(before);
    expectProtected();
  });

  it('is rebuilt whole by `tsrun network reload`, also when only one rule was deleted by hand', () => {
    deleteTable();
    expect(w.tsrunOk(['network', 'reload'])).toBe('firewall rebuilt: 3 network(s), 2 endpoint(s)\n');
    expect(elements()).toEqual(before);
    const handle = /# handle (\d+)/.exec(w.host.ns.sh('nft -a list chain inet tsrun forward | grep "default-deny"'))![1]!;
    w.host.ns.sh(`nft delete rule inet tsrun forward handle ${handle}`);
    expect(rules()).toBe(RULE_COUNT - 1);
    w.tsrunOk(['network', 'reload']);
    expect(elements()).toEqual(before);
    expectProtected();
  });

  it('the port-guard table (bridge tsrun) is part of the fingerprint: deleted alone, it comes back with the next command', () => {
    const guardRules = () => (w.host.ns.exec('nft', ['list', 'chain', 'bridge', 'tsrun', 'guard']).stdout.match(/ drop | accept /g) ?? []).length;
    expect(guardRules()).toBe(GUARD_RULE_COUNT);
    w.host.ns.sh('nft delete table bridge tsrun');
    w.tsrunOk(['network', 'ls']);
    expect(guardRules()).toBe(GUARD_RULE_COUNT);
    expect(w.host.ns.sh('nft list set bridge tsrun guard_src4')).toContain(w.ip(web.id, 'i10web'));
  });

  it('the neighbour-discovery table (bridge tsrun_nd) too: deleted, or a rule of it deleted, it comes back with its elements', () => {
    const nd = () => w.host.ns.exec('nft', ['list', 'table', 'bridge', 'tsrun_nd']).stdout;
    const ndRules = () => (nd().match(/ drop | return | jump /g) ?? []).length;
    const full = ndRules();
    expect(full).toBe(9);
    expect(nd()).toContain(`comment "ctr:${web.id}"`);
    w.host.ns.sh('nft delete table bridge tsrun_nd');
    w.tsrunOk(['network', 'ls']);
    expect(ndRules()).toBe(full);
    expect(nd()).toContain(`comment "ctr:${web.id}"`);
    const handle = /# handle (\d+)/.exec(w.host.ns.sh('nft -a list chain bridge tsrun_nd nd_check | grep "another address"'))![1]!;
    w.host.ns.sh(`nft delete rule bridge tsrun_nd nd_check handle ${handle}`);
    expect(ndRules()).toBe(full - 1);
    w.tsrunOk(['network', 'ls']);
    expect(ndRules()).toBe(full);
    expect(nd()).toContain(`comment "ctr:${web.id}"`);
  });

  (haveEtcd ? it : it.skip)('is restored by a running agent after `nft flush ruleset`', async () => {
    // The agent needs a cluster store: a second TSRUN_ROOT view of the same host, on etcd.
    const etcd = await EtcdServer.start(w.host.ns, { address: HOST_UPLINK_IP });
    const env = { TSRUN_STORE: etcd.url('i10rp') };
    const agent = w.host.spawnTsrun(['agent', '--ttl', '5', '--resync', '30'], env);
    let log = '';
    agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    try {
      const r = w.host.tsrun(['network', 'create', 'i10clu', '--subnet', '10.54.0.0/24'], { env });
      expect(r.stderr).toBe('');
      await waitFor('the agent to register', () => log.includes('host registered') || agent.exitCode !== null, 20_000);
      const withCluster = elements();
      expect(withCluster.some((e) => e.includes('10.54.0.0'))).toBe(true);
      w.host.ns.sh('nft flush ruleset');
      await waitFor('the agent to rebuild the table', () => rules() === RULE_COUNT && elements().some((e) => e.includes('10.54.0.0')), 10_000);
      expect(elements().filter((e) => e.includes('10.54.0.0')).length).toBeGreaterThan(0);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      w.host.tsrun(['network', 'rm', 'i10clu'], { env });
      await etcd.destroy();
      // the local store's networks come back with the next command
      w.tsrunOk(['network', 'reload']);
    }
  });
});
