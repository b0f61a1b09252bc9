// Regression tests for the defects listed in issue 11, each reproducing the failure it fixes:
// the sandbox harness and the quickstart refusing to run without their namespace, a network name
// with '.', gc and long container ids, the rollback of `network create` awaited, and the state a
// lost run directory (a reboot) leaves behind.
import { describe, expect, it } from '@jest/globals';
import { sandboxPerFile } from '../../harness/per-file.js';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT, SandboxHost, pinNetns, uniqueId, waitFor } from '../../harness/sandbox.js';
import { listElements, ownerComment, type NftListing } from '../../../runtime/firewall/nft-rules.js';
import { ownsElementsOf } from '../../../runtime/gc.js';
import { encodeHolder } from '../../../runtime/ipam/holder.js';
import { bootId } from '../../../runtime/boot.js';

let host: SandboxHost;
let bundle: string;
const ids: string[] = [];
sandboxPerFile('i11def', ids, (h, b) => {
  host = h;
  bundle = b;
});

/** A directory of fake programs put first on PATH. */
function fakeBin(programs: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'i11-fakebin-'));
  for (const [name, body] of Object.entries(programs)) {
    writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  }
  return dir;
}

function nftElementsOf(id: string): string[] {
  const r = host.ns.exec('nft', ['-j', 'list', 'table', 'inet', 'tsrun']);
  if (r.status !== 0) return [];
  const comment = ownerComment('ctr', id);
  return listElements(JSON.parse(r.stdout) as NftListing).filter((e) => e.comment === comment).map((e) => `${e.set}: ${JSON.stringify(e.key)}`);
}

describe('namespace checks', () => {
  it('the sandbox harness throws when its namespace does not come up (unshare that does not unshare)', async () => {
    // The dangerous failure: a child that runs but in the machine's own namespace.
    const bin = fakeBin({ unshare: 'shift; exec "$@"' });
    try {
      await expect(pinNetns('fake', { ...process.env, PATH: `${bin}:${process.env.PATH}` }, 2000)).rejects.toThrow(/did not come up/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('the quickstart stops when its namespace does not come up, before running anything', () => {
    const marker = path.join(os.tmpdir(), `i11-nsenter-called-${process.pid}`);
    // unshare that stays in our namespace; nsenter that only records that it was called.
    const bin = fakeBin({ unshare: 'shift; exec "$@"', nsenter: `touch ${marker}; exit 1` });
    try {
      const r = spawnSync('bash', [path.join(PROJECT_ROOT, 'scripts/quickstart.sh')], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, timeout: 60_000 });
      expect(r.stderr).toMatch(/demo network namespace did not come up/);
      expect(r.status).toBe(1);
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(bin, { recursive: true, force: true });
      rmSync(marker, { force: true });
    }
  });
});

describe('defects', () => {
  it("a network whose name (and so bridge) contains '.' works (the sysctl key in slash form)", () => {
    const net = 'web.v2';
    expect(host.tsrun(['network', 'create', net, '--subnet', '10.91.0.0/24']).stderr).toBe('');
    try {
      const id = uniqueId('dot');
      ids.push(id);
      const r = host.tsrun(['run', '--name', id, '--net', net, '-p', '8088:80', bundle, '--', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('10.91.0.');
      expect(host.ns.sh('cat /proc/sys/net/ipv4/conf/ts-web.v2/route_localnet').trim()).toBe('1');
    } finally {
      expect(host.tsrun(['network', 'rm', net]).status).toBe(0);
    }
  });

  it('gc keeps the published ports of a live container whose id is 128 characters long', async () => {
    const id = `long-${'x'.repeat(118)}${process.pid % 100000}`.slice(0, 128);
    expect(ownerComment('ctr', id)).toContain('~'); // shortened in comments: the case that broke
    ids.push(id);
    const child = host.spawnTsrun(['run', '--name', id, '-p', '8089:80', bundle, '--', 'sleep', '600']);
    try {
      await waitFor('the container to be wired', () => nftElementsOf(id).length > 0 && existsSync(path.join(host.root, 'run', 'containers', id, 'pid')), 30_000);
      const before = nftElementsOf(id);
      const gc = host.tsrun(['gc']);
      expect(gc.status).toBe(0);
      expect(nftElementsOf(id)).toEqual(before);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      host.ns.exec('runc', ['--root', host.runcRoot, 'kill', id, 'KILL']);
      await exited;
    }
    expect(nftElementsOf(id)).toEqual([]);
    // And the pure rule: whole comments are compared, never prefixes.
    expect(ownsElementsOf([id], ownerComment('ctr', id).slice(4))).toBe(true);
    expect(ownsElementsOf([`${id.slice(0, 127)}y`], ownerComment('ctr', id).slice(4))).toBe(false);
  });

  it('network create rolls back completely before it reports the failure (the undo is awaited)', () => {
    const fixture = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/create-network-undo.js');
    const r = host.ns.exec(process.execPath, [fixture, 'undo1'], { env: host.env });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { error: string; left: string[] };
    expect(out.error).toMatch(/interface lo already exists/);
    expect(out.left).toEqual([]);
  });
});

describe('after a reboot (the run directory lost, the library directory kept)', () => {
  /** Starts a container in the background and waits until its endpoint record exists. */
  async function startAndWire(id: string, args: string[]) {
    const child = host.spawnTsrun(['run', '--name', id, ...args, bundle, '--', 'sleep', '600']);
    const record = path.join(host.root, 'lib', 'store', 'endpoints', id);
    await waitFor(`${id} to be wired`, () => existsSync(record) && existsSync(path.join(host.root, 'run', 'containers', id, 'pid')), 30_000);
    return child;
  }

  /** What a reboot does to tsrun's state: every process and namespace gone, /run empty. */
  async function reboot(children: ReturnType<typeof host.spawnTsrun>[], containerIds: string[]) {
    for (const c of children) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }
    for (const id of containerIds) host.ns.exec('runc', ['--root', host.runcRoot, 'delete', '--force', id]);
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp && mp.startsWith(path.join(host.root, 'run'))) spawnSync('umount', ['-l', mp]);
    }
    rmSync(path.join(host.root, 'run'), { recursive: true, force: true });
    for (const id of containerIds) spawnSync('rmdir', [`/sys/fs/cgroup/tsrun/${id}`]);
  }

  it('stale records and host ports do not stop new containers, and gc collects what is left', async () => {
    const web = uniqueId('rb-web');
    const db = uniqueId('rb-db');
    const other = uniqueId('rb-other');
    ids.push(web, db, other);
    const a = await startAndWire(web, ['-p', '8090:80']);
    const b = await startAndWire(db, ['-p', '8091:80']);
    await reboot([a, b], [web, db]);
    const nextBoot = { TSRUN_BOOT_ID: `simulated-${process.pid}` };

    // The same name again: its stale record is torn down and it gets a working eth0.
    const again = host.tsrun(['run', '--name', web, '-p', '8090:80', bundle, '--', 'ip', '-o', '-4', 'addr', 'show', 'eth0'], { env: nextBoot });
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/inet \d+\.\d+\.\d+\.\d+\//);

    // A port reserved by a container of the last boot does not refuse another container.
    const taker = host.tsrun(['run', '--name', other, '-p', '8091:80', bundle, '--', 'true'], { env: nextBoot });
    expect(taker.stderr).toBe('');
    expect(taker.status).toBe(0);

    // Nothing from the last boot survives a gc.
    expect(host.tsrun(['gc'], { env: nextBoot }).status).toBe(0);
    expect(readdirSync(path.join(host.root, 'lib', 'store')).includes('endpoints') ? readdirSync(path.join(host.root, 'lib', 'store', 'endpoints')) : []).toEqual([]);
  });

  it('an --ip leased by a container of the last boot is taken over by a new container, without gc; of this boot, refused', () => {
    const id = uniqueId('rb-ip');
    ids.push(id);
    const net = host.tsrun(['network', 'create', 'rbip', '--subnet', '10.96.0.0/24']);
    expect(net.stderr).toBe('');
    // What an attach killed before its record leaves: a lease, here from the boot before.
    const leaseFile = path.join(host.root, 'lib', 'store', 'ipam', 'rbip', '10.96.0.9');
    mkdirSync(path.dirname(leaseFile), { recursive: true });
    writeFileSync(leaseFile, encodeHolder({ container: 'before-reboot', boot: 'a-previous-boot', instance: '000000000000' }), { mode: 0o600 });
    const r = host.tsrun(['run', '--name', id, '--net', 'rbip', '--ip', '10.96.0.9', bundle, '--', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('inet 10.96.0.9/24');
    // The same from a container of this boot that is still holding it: refused with one line.
    mkdirSync(path.dirname(leaseFile), { recursive: true }); // the store prunes emptied directories
    writeFileSync(leaseFile, encodeHolder({ container: 'holder', boot: bootId(), instance: '000000000000' }), { mode: 0o600 });
    const refused = host.tsrun(['run', '--name', id, '--net', 'rbip', '--ip', '10.96.0.9', bundle, '--', 'true']);
    expect({ status: refused.status, stderr: refused.stderr }).toEqual({ status: 125, stderr: 'tsrun: address 10.96.0.9 is already in use by container holder on network rbip\n' });
    rmSync(leaseFile);
    expect(host.tsrun(['network', 'rm', 'rbip']).status).toBe(0);
  });

  it('gc alone collects the records of another boot', async () => {
    const id = uniqueId('rb-gc');
    ids.push(id);
    const c = await startAndWire(id, ['-p', '8092:80']);
    await reboot([c], [id]);
    expect(host.storeLeaks().length).toBeGreaterThan(0);
    const gc = host.tsrun(['gc'], { env: { TSRUN_BOOT_ID: `simulated-${process.pid}` } });
    expect(gc.status).toBe(0);
    expect(host.storeLeaks()).toEqual([]);
    expect(nftElementsOf(id)).toEqual([]);
  });
});
