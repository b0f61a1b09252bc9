// Element batches straight to nf_tables over netlink (the default for attach and detach): the
// kernel ends up holding exactly what libnftables leaves for the same batches, refusals read as
// libnftables' do, and no socket outlives its namespace. nft.test.ts runs the whole backend
// (tables, elements, real packets) on this path.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { execa } from 'execa';
import { NftFirewall } from '../../../runtime/firewall/backend.js';
import { addElements, addEndpointBatch, addNetworkBatch, deleteElements, endpointElements, guardElements, removeGuardBatch, type NftBatch } from '../../../runtime/firewall/nft-rules.js';
import { applyBatch, isNftError } from '../../../runtime/firewall/nft.js';
import { encodeElementBatch, nfnlAvailable } from '../../../runtime/firewall/nfnl.js';
import type { FirewallEndpoint, FirewallNetwork } from '../../../runtime/firewall/types.js';
import { ScratchNs } from '../../harness/sandbox.js';
import { openSockets } from '../../harness/sockets.js';

jest.setTimeout(60_000);

const sockets = openSockets;

const nets: FirewallNetwork[] = [
  { name: 'tsb-n1', bridge: 'tsBn1', subnets4: ['10.96.0.0/16'], subnets6: ['fd00:96::/64'], internal: false, icc: true },
  { name: 'tsb-n2', bridge: 'tsBn2', subnets4: ['10.95.3.7/32'], subnets6: [], internal: true, icc: false },
];
const ep = (i: number): FirewallEndpoint => ({
  containerId: `tsb-nc${i}`,
  ipv4: `10.96.0.${i + 2}`,
  ipv6: `fd00:96::${i + 2}`,
  ports: [
    { hostPort: 8080 + i, containerPort: 80, protocol: 'tcp' },
    { hostPort: 53 + i, containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1' },
    { hostPort: 443 + i, containerPort: 8443, protocol: 'tcp', hostIp: 'fd00::1' },
  ],
  port: { ifname: `tsBv${i}`, mac: `02:42:ac:11:00:0${i}` },
});
const attachBatch = (e: FirewallEndpoint): NftBatch => ({ nftables: [...nets.flatMap((n) => addNetworkBatch(n).nftables), ...addEndpointBatch(e).nftables, ...addElements(guardElements(e))] });
const detachBatch = (e: FirewallEndpoint): NftBatch => ({ nftables: [...removeGuardBatch(e).nftables, ...deleteElements(endpointElements(e))] });

describe('element batches over netlink', () => {
  let viaNetlink: ScratchNs;
  let viaLib: ScratchNs;
  /** Both of tsrun's tables as nft prints them (handles differ between namespaces: dropped). */
  const ruleset = async (ns: ScratchNs) => (await ns.run(['nft', 'list', 'ruleset'])).replace(/# handle \d+/g, '');

  beforeEach(async () => {
    viaNetlink = await ScratchNs.create('tsB-nl');
    viaLib = await ScratchNs.create('tsB-nll');
    for (const ns of [viaNetlink, viaLib]) await new NftFirewall({ backend: 'lib', netns: ns.path }).ensureBase();
  });
  afterEach(async () => {
    await viaNetlink?.destroy();
    await viaLib?.destroy();
  });

  it('is available here and takes the attach and detach batches', () => {
    expect(nfnlAvailable()).toBe(true);
    expect(encodeElementBatch(attachBatch(ep(0)))).toBeDefined();
    expect(encodeElementBatch(detachBatch(ep(0)))).toBeDefined();
  });

  it('leaves exactly what libnftables leaves: added twice, then deleted', async () => {
    const apply = async (batch: NftBatch) => {
      await applyBatch(batch, { netns: viaNetlink.path });
      await applyBatch(batch, { backend: 'lib', netns: viaLib.path });
      expect(await ruleset(viaNetlink)).toBe(await ruleset(viaLib));
    };
    for (let i = 0; i < 3; i++) await apply(attachBatch(ep(i)));
    await apply(attachBatch(ep(1))); // re-adding the same elements is no error
    expect(await ruleset(viaNetlink)).toMatch(/10\.96\.0\.0\/16 comment "net:tsb-n1"/);
    expect(await ruleset(viaNetlink)).toMatch(/"tsBv2" \. 02:42:ac:11:00:02 \. 10\.96\.0\.4 comment "ctr:tsb-nc2"/);
    await apply(detachBatch(ep(1)));
    expect(await ruleset(viaNetlink)).not.toMatch(/ctr:tsb-nc1/);
  });

  it("refuses as libnftables does: a held port is 'exists', a missing element 'not-found', nothing applied", async () => {
    const before = await ruleset(viaNetlink);
    for (const ns of [viaNetlink, viaLib]) await applyBatch(attachBatch(ep(0)), { backend: ns === viaLib ? 'lib' : 'auto', netns: ns.path });
    const rival = { ...ep(0), containerId: 'tsb-rival', ipv4: '10.96.0.99', port: { ifname: 'tsBvr', mac: '02:42:ac:11:00:99' } };
    const errs = [];
    for (const [ns, backend] of [[viaNetlink, 'auto'], [viaLib, 'lib']] as const) {
      const conflict = await applyBatch(addEndpointBatch(rival), { backend, netns: ns.path, step: 'publish' }).catch((e: unknown) => e);
      await applyBatch(detachBatch(ep(0)), { backend, netns: ns.path });
      const missing = await applyBatch(detachBatch(ep(0)), { backend, netns: ns.path, step: 'unpublish' }).catch((e: unknown) => e);
      expect(isNftError(conflict, 'exists')).toBe(true);
      expect(isNftError(missing, 'not-found')).toBe(true);
      errs.push([(conflict as Error).message, (missing as Error).message]);
    }
    expect(errs[0]).toEqual(errs[1]);
    expect(errs[0]).toEqual(['publish: Error: Could not process rule: File exists', 'unpublish: Error: Could not process rule: No such file or directory']);
    // Both refused batches changed nothing; what is left is the networks' elements.
    expect((await ruleset(viaNetlink)).replace(/\s+/g, ' ')).not.toMatch(/ctr:/);
    expect(before).not.toMatch(/net:/);
    expect(await ruleset(viaNetlink)).toBe(await ruleset(viaLib));
  });

  it("finds the table missing as 'not-found', and the firewall rebuilds it and retries", async () => {
    await viaNetlink.run(['nft', 'delete table inet tsrun']);
    const err = await applyBatch(attachBatch(ep(0)), { netns: viaNetlink.path }).catch((e: unknown) => e);
    expect(isNftError(err, 'not-found')).toBe(true);
    await new NftFirewall({ netns: viaNetlink.path }).attach(nets[0]!, ep(0));
    expect(await viaNetlink.run(['nft', 'list', 'map', 'inet', 'tsrun', 'pub4_any_addr'])).toMatch(/ctr:tsb-nc0/);
  });

  it('hands a batch too large for its socket to libnftables', async () => {
    // 300 containers' attach batches joined: ~400 KiB, more than one datagram should carry.
    const eps = Array.from({ length: 300 }, (_, i) => ({ ...ep(i), ipv4: `10.96.${1 + (i >> 8)}.${i & 255}`, ipv6: `fd00:96::1:${i.toString(16)}`, ports: [{ hostPort: 10000 + i, containerPort: 80, protocol: 'tcp' as const }], port: { ifname: `tsBw${i}`, mac: `02:42:ac:12:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` } }));
    const batch: NftBatch = { nftables: [...addNetworkBatch(nets[0]!).nftables, ...eps.flatMap((e) => [...addEndpointBatch(e).nftables, ...addElements(guardElements(e))])] };
    expect(encodeElementBatch(batch)).toBeUndefined();
    await applyBatch(batch, { netns: viaNetlink.path });
    expect((await viaNetlink.run(['nft', 'list', 'map', 'inet', 'tsrun', 'pub4_any_addr'])).match(/ctr:tsb-nc/g)).toHaveLength(300);
  });

  it('closes a socket made for another namespace after its batch (none keeps it alive)', async () => {
    await applyBatch(attachBatch(ep(0)), { netns: viaNetlink.path });
    const before = sockets();
    for (let i = 0; i < 5; i++) await applyBatch(attachBatch(ep(0)), { netns: viaNetlink.path });
    expect(sockets()).toBe(before);
  });

  it("keeps one socket for the process's own namespace", async () => {
    const dist = path.join(process.cwd(), 'dist', 'runtime', 'firewall');
    const script = `
      const { applyBatch } = await import(${JSON.stringify(path.join(dist, 'nft.js'))});
      const { addNetworkBatch } = await import(${JSON.stringify(path.join(dist, 'nft-rules.js'))});
      const { readdirSync, readlinkSync } = await import('node:fs');
      const count = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } }).length;
      const batch = addNetworkBatch(${JSON.stringify(nets[0])});
      await applyBatch(batch);
      const after1 = count();
      for (let i = 0; i < 3; i++) await applyBatch(batch);
      console.log(JSON.stringify({ grew: count() - after1 }));`;
    const r = await execa('nsenter', [`--net=${viaNetlink.path}`, process.execPath, '--input-type=module', '-e', script], { stdin: 'ignore' });
    expect(JSON.parse(String(r.stdout))).toEqual({ grew: 0 });
    expect(await viaNetlink.run(['nft', 'list', 'set', 'inet', 'tsrun', 'bridges'])).toMatch(/"tsBn1" comment "net:tsb-n1"/);
  });

  it('checks the tables over netlink exactly as the listings do (intact), in every state', async () => {
    const ns = viaNetlink;
    const netlink = new NftFirewall({ netns: ns.path });
    const listing = new NftFirewall({ backend: 'lib', netns: ns.path });
    const verdicts = async () => [await netlink.intact(), await listing.intact()];
    const nft = (cmd: string) => ns.run(['nft', cmd]);
    await applyBatch(attachBatch(ep(0)), { netns: ns.path });
    expect(await verdicts()).toEqual([true, true]);
    const handle = /comment "e: within one bridge.*# handle (\d+)/.exec(await ns.run(['nft', '-a', 'list', 'chain', 'inet', 'tsrun', 'forward']))![1]!;
    const damage: [string, string][] = [
      ['a rule deleted', `delete rule inet tsrun forward handle ${handle}`],
      ['a rule added', 'add rule inet tsrun forward accept'],
      // (A set of another type or flags cannot replace one its rules use: kernel-inventory.test.ts.)
      ['a set too many', 'add set inet tsrun extra { type ipv4_addr; }'],
      ['a chain too many', 'add chain inet tsrun extra { type filter hook input priority 0; policy accept; }'],
      ['a guard set too many', 'add set bridge tsrun extra { type ifname; }'],
      ['a chain with another policy', 'add chain inet tsrun forward { type filter hook forward priority 0; policy drop; }'],
      ['the guard table gone', 'delete table bridge tsrun'],
      ['the inet table gone', 'delete table inet tsrun'],
    ];
    for (const [what, cmd] of damage) {
      await new NftFirewall({ backend: 'lib', netns: ns.path }).restore({ networks: [], endpoints: [] });
      expect([what, ...(await verdicts())]).toEqual([what, true, true]);
      await nft(cmd);
      expect([what, ...(await verdicts())]).toEqual([what, false, false]);
    }
    // A table of another family named tsrun is none of tsrun's business.
    await new NftFirewall({ backend: 'lib', netns: ns.path }).restore({ networks: [], endpoints: [] });
    await nft('add table ip tsrun; add set ip tsrun bridges { type ipv4_addr; }; add chain ip tsrun forward { type filter hook forward priority 0; }');
    expect(await verdicts()).toEqual([true, true]);
  });
});
