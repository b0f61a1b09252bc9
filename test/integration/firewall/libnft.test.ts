// What only the in-process backend has: its output matches the nft process's byte for byte, its
// errors come from libnftables' error buffer, a context for another namespace leaves no socket
// behind (it would keep that namespace alive), and the process's own handle is made once.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execa } from 'execa';
import { NftFirewall } from '../../../runtime/firewall/backend.js';
import { libnftAvailable, runLibnft } from '../../../runtime/firewall/libnft.js';
import { applyBatch, isNftError, listTsrunTable } from '../../../runtime/firewall/nft.js';
import { ScratchNs } from '../../harness/sandbox.js';
import { openSockets } from '../../harness/sockets.js';

jest.setTimeout(60_000);

const sockets = openSockets;

describe('libnftables backend', () => {
  let ns: ScratchNs;
  beforeAll(async () => {
    ns = await ScratchNs.create('tsB-lib');
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it('loads on this machine (libnftables1 is installed by setup-host.sh)', () => {
    expect(libnftAvailable()).toBe(true);
  });

  it('lists table inet tsrun exactly as the nft process does, terse or not', async () => {
    const fw = new NftFirewall({ backend: 'lib', netns: ns.path });
    await fw.ensureBase();
    const net = { name: 'tsb-l', bridge: 'tsBl0', subnets4: ['10.97.0.0/24'], subnets6: [], internal: false, icc: true };
    await fw.addNetwork(net);
    await fw.attach(net, { containerId: 'tsb-lc', ipv4: '10.97.0.2', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    for (const terse of [false, true]) {
      const viaLib = await listTsrunTable({ backend: 'lib', netns: ns.path, terse });
      const viaProcess = await listTsrunTable({ backend: 'process', netns: ns.path, terse });
      expect(viaLib).toEqual(viaProcess);
    }
    expect(await listTsrunTable({ backend: 'lib', netns: ns.path, terse: true })).not.toEqual(await listTsrunTable({ backend: 'lib', netns: ns.path }));
  });

  it("reports a failure with libnftables' own error text", async () => {
    const batch = { nftables: [{ delete: { table: { family: 'inet', name: 'tsbnone' } } }] };
    const err = await applyBatch(batch, { backend: 'lib', netns: ns.path, step: 'delete table tsbnone' }).catch((e: unknown) => e);
    expect(isNftError(err, 'not-found')).toBe(true);
    expect((err as Error).message).toBe('delete table tsbnone: Error: Could not process rule: No such file or directory');
    const viaProcess = await applyBatch(batch, { backend: 'process', netns: ns.path, step: 'delete table tsbnone' }).catch((e: unknown) => e);
    expect((viaProcess as Error).message).toBe((err as Error).message);
  });

  it('frees a context made for another namespace at once (no socket keeps it alive)', () => {
    runLibnft('list tables', { netns: ns.path });
    const before = sockets();
    for (let i = 0; i < 5; i++) expect(runLibnft('list tables', { netns: ns.path }).ok).toBe(true);
    expect(sockets()).toBe(before);
  });

  it("keeps one handle for the process's own namespace", async () => {
    // A separate node process started inside the scratch namespace: its "own" namespace.
    const lib = path.join(process.cwd(), 'dist', 'runtime', 'firewall', 'libnft.js');
    const script = `
      const { runLibnft } = await import(${JSON.stringify(lib)});
      const { readdirSync, readlinkSync } = await import('node:fs');
      const count = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } }).length;
      const r1 = runLibnft(JSON.stringify({ nftables: [{ add: { table: { family: 'inet', name: 'tsbown' } } }] }));
      const after1 = count();
      const r2 = runLibnft('list table inet tsbown');
      const r3 = runLibnft('list table inet tsbown');
      console.log(JSON.stringify({ ok: r1.ok && r2.ok && r3.ok, grew: count() - after1, listed: r2.out.includes('"tsbown"') }));`;
    const r = await execa('nsenter', [`--net=${ns.path}`, process.execPath, '--input-type=module', '-e', script], { stdin: 'ignore' });
    expect(JSON.parse(String(r.stdout))).toEqual({ ok: true, grew: 0, listed: true });
    expect(await ns.run(['nft', 'list', 'tables'])).toMatch(/table inet tsbown/);
  });
});
