// Two tsrun roots in one network namespace (podman's hook with one TSRUN_ROOT and the CLI with
// another, two users' roots): each knows only the networks and containers of its own Store, while
// bridges, veths and the firewall table are the namespace's. Before bridges named their root, root
// B's `network create` removed root A's bridge (taken for the bridge of a network that no longer
// exists), B's gc removed A's running container's veth, bridge and firewall elements (its published
// port and port guard), and both default networks derived the bridge tsrun0, which B adopted with a
// second subnet. Now a bridge's alias names its root (tsrun-net:<network>@<lib dir>): another
// root's is never adopted (one line naming it, 125), removed, or swept, nor its ports' veths, and
// a gc that sees another root leaves firewall elements unknown to it alone, and so does a rebuild of
// the firewall table (network reload, the repair of a missing or changed table): it adds this
// root's elements to the table as it is.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_BUNDLE, SandboxHost, type RunResult } from '../../harness/sandbox.js';

let host: SandboxHost;
let rootB: string;
const A = (args: string[]): RunResult => host.tsrun(args);
const B = (args: string[]): RunResult => host.tsrun(args, { env: { TSRUN_ROOT: rootB } });
const ok = (r: RunResult): string => {
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
};

/** What root A's running container holds in the namespace: its bridge, its veth, its firewall elements. */
function holdings(id: string): { bridge: boolean; veths: number; elements: number } {
  const links = host.ns.linkNames();
  const ruleset = host.ns.exec('nft', ['list', 'ruleset']).stdout;
  return { bridge: links.includes('ts-hb9ra'), veths: links.filter((l) => /^tsv[0-9a-f]{8}$/.test(l)).length, elements: ruleset.split(`ctr:${id.slice(0, 12)}`).length - 1 };
}

beforeAll(async () => {
  host = await SandboxHost.create('hb9roots');
  rootB = mkdtempSync(path.join(os.tmpdir(), 'tsrun-hb9roots-b-'));
});

afterAll(() => {
  host?.removeAllContainers();
  for (const n of ['hb9ra', 'tsrun']) host?.tsrun(['network', 'rm', n]);
  for (const n of ['hb9rb', 'tsrun']) host?.tsrun(['network', 'rm', n], { env: { TSRUN_ROOT: rootB } });
  host?.destroy();
  if (rootB) rmSync(rootB, { recursive: true, force: true });
});

it("root B's network create, gc and default network leave root A's bridge, veth and firewall elements alone", () => {
  ok(A(['network', 'create', 'hb9ra']));
  const id = ok(A(['run', '-d', '--name', 'hb9r-c1', '--net', 'hb9ra', '-p', '18080:80', BUSYBOX_BUNDLE, '--', 'sleep', '600']));
  const before = holdings(id);
  expect(before).toEqual({ bridge: true, veths: 1, elements: expect.any(Number) });
  expect(before.elements).toBeGreaterThan(0);

  // Before: the bridge ts-hb9ra was removed here.
  ok(B(['network', 'create', 'hb9rb']));
  expect(holdings(id)).toEqual(before);
  // Before: this gc listed and removed A's veth, bridge and container elements.
  const report = JSON.parse(ok(B(['gc']))) as { links: string[]; bridges: string[]; firewallOwners: string[] };
  expect({ links: report.links, bridges: report.bridges, owners: report.firewallOwners }).toEqual({ links: [], bridges: [], owners: [] });
  expect(holdings(id)).toEqual(before);
  // A's container still runs, wired.
  expect(A(['exec', 'hb9r-c1', 'cat', '/sys/class/net/eth0/operstate']).stdout.trim()).toBe('up');
  // The firewall table is the namespace's: B's `network reload` (a rebuild from B's Store) dropped
  // A's elements (before: 0 left); now it keeps them and adds B's. After `nft flush ruleset`, each
  // root's reload puts its own back without dropping the other's.
  ok(B(['network', 'reload']));
  expect(holdings(id)).toEqual(before);
  host.ns.exec('nft', ['flush', 'ruleset']);
  ok(B(['network', 'reload']));
  ok(A(['network', 'reload']));
  expect(holdings(id)).toEqual(before);
  ok(B(['network', 'reload']));
  expect(holdings(id)).toEqual(before);
  // A port guard rule deleted by hand (its IPv6 source check): the repair with another root present
  // added elements to the table as it was and left the rule deleted (fail open, every check failing
  // again). The rules come back (rebuilt from the repairing root's Store); A's reload restores A's.
  for (const repair of [() => ok(B(['gc'])), () => ok(B(['network', 'reload'])), () => ok(A(['gc']))]) {
    const guard = () => host.ns.exec('nft', ['-a', 'list', 'chain', 'bridge', 'tsrun', 'guard']).stdout;
    const handle = /IPv6 source spoofing.*# handle (\d+)/.exec(guard())![1]!;
    host.ns.exec('nft', ['delete', 'rule', 'bridge', 'tsrun', 'guard', 'handle', handle]);
    expect(guard()).not.toContain('IPv6 source spoofing');
    repair();
    expect(guard()).toContain('IPv6 source spoofing');
    ok(A(['network', 'reload']));
    expect(holdings(id)).toEqual(before);
  }

  // Both default networks derive tsrun0: A makes it, B is refused in one line naming A's root.
  ok(A(['run', '--rm', BUSYBOX_BUNDLE, '--', 'true']));
  const addrsBefore = host.ns.exec('ip', ['-o', 'addr', 'show', 'tsrun0']).stdout;
  const refused = B(['run', '--rm', BUSYBOX_BUNDLE, '--', 'true']);
  expect({ status: refused.status, lines: refused.stderr.trim().split('\n').length }).toEqual({ status: 125, lines: 1 });
  expect(refused.stderr).toContain(`bridge tsrun0 belongs to network tsrun of another tsrun root (${host.root}/lib)`);
  expect(host.ns.exec('ip', ['-o', 'addr', 'show', 'tsrun0']).stdout).toBe(addrsBefore); // no second subnet
  // B's `network rm` of its own default network does not take A's bridge with it.
  B(['network', 'rm', 'tsrun']);
  expect(host.ns.linkNames()).toContain('tsrun0');
  // Nor B's own network's rm and gc anything of A's.
  ok(B(['network', 'rm', 'hb9rb']));
  ok(B(['gc']));
  expect(holdings(id)).toEqual(before);

  // A container of the same name on a network of the same name in B: the host veth's name is
  // derived from both, so it is A's. Before, B's attach added the guard's elements for that port
  // and its failure's undo took the port's name out of guard_ports (A's container then lost every
  // frame: 8 elements -> 7); and a killed attach of B, released at B's next run, deleted A's veth
  // and purged A's elements (same owner tag). Now refused before anything, and nothing of A's
  // released.
  ok(B(['network', 'create', 'hb9ra', '--bridge', 'hb9rb0', '--subnet', '10.64.0.0/24']));
  const runSame = (env: NodeJS.ProcessEnv = {}) =>
    host.tsrun(['run', '-d', '--name', 'hb9r-c1', '--net', 'hb9ra', '-p', '18081:80', BUSYBOX_BUNDLE, '--', 'sleep', '600'], { env: { TSRUN_ROOT: rootB, ...env } });
  for (let k = 0; k <= 6; k++) {
    if (k > 0) runSame({ TSRUN_FAULT_KILL_AFTER: `setup:${k}` }); // killed after its k-th setup step (or refused)
    const same = runSame();
    expect({ k, status: same.status, lines: same.stderr.trim().split('\n').length }).toEqual({ k, status: 125, lines: 1 });
    expect(holdings(id)).toEqual(before);
    B(['rm', '-f', 'hb9r-c1']);
  }
  ok(B(['network', 'rm', 'hb9ra']));
  expect(holdings(id)).toEqual(before);

  // A's own gc still collects: nothing of A's is an orphan, and B left nothing.
  ok(A(['rm', '-f', 'hb9r-c1']));
  ok(A(['network', 'rm', 'hb9ra']));
  ok(A(['gc']));
  expect(host.ns.linkNames().filter((l) => l.startsWith('ts') && l !== 'tsrun0')).toEqual([]);
  expect(host.leaks([id])).toEqual([]);
}, 120_000);

// Every bridge of a host upgraded in place was made before roots were told apart (its alias names
// the network only) until its root's next attach tags it: root B's gc removed root A's running
// container's veth on such a bridge, and B's repair rebuilt the firewall from B's Store alone,
// dropping A's container's elements. Such a bridge of a network B does not know counts as another
// root's; and A's next attach on it tags it as A's.
it("a bridge made before roots were told apart: root B's gc and repair leave root A's container on it alone; A's next attach tags it", () => {
  ok(A(['network', 'create', 'hb9rc']));
  const id = ok(A(['run', '-d', '--name', 'hb9r-c2', '--net', 'hb9rc', '-p', '18081:80', BUSYBOX_BUNDLE, '--', 'sleep', '600']));
  ok(B(['network', 'create', 'hb9rd']));
  host.ns.exec('ip', ['link', 'set', 'ts-hb9rc', 'alias', 'tsrun-net:hb9rc']); // as an older tsrun made it
  const veths = () => host.ns.linkNames().filter((l) => /^tsv[0-9a-f]{8}$/.test(l)).length;
  const elements = () => host.ns.exec('nft', ['list', 'ruleset']).stdout.split(`ctr:${id.slice(0, 12)}`).length - 1;
  const before = { veths: veths(), elements: elements() };
  expect(before.veths).toBe(1);
  expect(before.elements).toBeGreaterThan(0);
  const report = JSON.parse(ok(B(['gc']))) as { links: string[] };
  expect(report.links).toEqual([]); // before: A's veth
  ok(B(['network', 'reload']));
  expect({ veths: veths(), elements: elements() }).toEqual(before); // before: 0 veths, 0 elements
  expect(A(['exec', 'hb9r-c2', 'cat', '/sys/class/net/eth0/operstate']).stdout.trim()).toBe('up');
  // A's next attach on it tags it as A's
  ok(A(['run', '--rm', '--net', 'hb9rc', BUSYBOX_BUNDLE, '--', 'true']));
  expect(host.ns.exec('ip', ['-d', 'link', 'show', 'ts-hb9rc']).stdout).toContain(`alias tsrun-net:hb9rc@${host.root}/lib`);
  ok(A(['rm', '-f', 'hb9r-c2']));
  ok(A(['network', 'rm', 'hb9rc']));
  ok(B(['network', 'rm', 'hb9rd']));
  expect(host.leaks([id])).toEqual([]);
}, 120_000);
