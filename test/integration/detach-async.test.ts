// Detach without waiting for the kernel to delete the veth (DetachOptions.netnsGoing, used by
// `tsrun run` when its container's namespace goes): the record, firewall elements, host ports and
// lease go at once, the veth is taken off its bridge, and the kernel deletes the pair with the
// namespace. These tests keep the old namespace alive on purpose (a process held inside it), so
// the half-removed state lasts, and check that nothing can observe it: the old address answers
// nobody while a new container holds it, the same container name attaches again at once, and the
// pair is gone as soon as its namespace is.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld } from '../harness/bridge-world.js';
import { waitFor } from '../harness/sandbox.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('detach');
});
afterAll(async () => {
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

const HTTPD = 'httpd -f -p 80 -h /var/www';
const PAGE = 'tsrun busybox fixture';

/** A process inside the namespace at `nsPath`: it outlives the container and its pin. */
async function holdNamespace(nsPath: string): Promise<ChildProcess> {
  const target = statSync(nsPath).ino;
  const holder = spawn('nsenter', [`--net=${nsPath}`, 'sleep', '120'], { stdio: 'ignore' });
  await waitFor('the holder to enter the namespace', () => {
    try {
      return statSync(`/proc/${holder.pid}/ns/net`).ino === target;
    } catch {
      return false;
    }
  }, 10_000);
  return holder;
}

function hostLink(name: string): { ifname: string; master?: string } | undefined {
  const r = w.host.ns.exec('ip', ['-j', 'link', 'show', 'dev', name]);
  return r.status === 0 ? (JSON.parse(r.stdout) as { ifname: string; master?: string }[])[0] : undefined;
}

describe('asynchronous veth removal on detach', () => {
  it('the old address answers nobody once a new container holds it; the same name attaches again at once', async () => {
    const old = await w.start([], 'sleep 1000');
    const ep = w.endpoint(old.id);
    const address = ep.ipv4!.address;
    const holder = await holdNamespace(ep.netnsPath);
    try {
      await old.stop();
      // Detached: no record; the veth is still there (its namespace is held) but off the bridge.
      expect(existsSync(path.join(w.host.root, 'lib', 'store', 'endpoints', old.id, 'tsrun'))).toBe(false);
      expect(hostLink(ep.hostIfname)).toEqual(expect.objectContaining({ ifname: ep.hostIfname }));
      expect(hostLink(ep.hostIfname)!.master).toBeUndefined();
      // The old namespace still has the address up on its eth0.
      const inOld = spawnSyncText('nsenter', [`--net=/proc/${holder.pid}/ns/net`, 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
      expect(inOld).toContain(`inet ${address}/`);

      // The lease is handed on at once: a new container with that address is the only one that answers.
      const next = await w.start(['--ip', address], HTTPD);
      await w.waitHttp(address);
      // Each client is a new container: a fresh neighbour table, a fresh ARP question each time.
      for (let i = 0; i < 5; i++) {
        const r = w.run([], ['timeout', '3', 'wget', '-qO-', `http://${address}/`]);
        expect(r.stdout.trim()).toBe(PAGE);
      }
      await next.stop();

      // The same container name on the same network while the old pair still exists.
      const again = w.host.tsrun(['run', '--name', old.id, w.bundle, '--', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
      expect(again.stderr).toBe('');
      expect(again.status).toBe(0);
      expect(again.stdout).toMatch(/inet 10\.88\./);
    } finally {
      holder.kill('SIGKILL');
    }
    // The namespace is gone now: so is the pair (leaks() in afterEach waits for it).
    await waitFor(`${ep.hostIfname} to go with its namespace`, () => hostLink(ep.hostIfname) === undefined, 15_000);
  });

  it('without anything holding the namespace, the pair goes with it', async () => {
    const r = w.run([], ['true']);
    expect(r.status).toBe(0);
    expect(w.tsrunVeths()).toEqual([]);
  });
});

function spawnSyncText(cmd: string, args: string[]): string {
  return w.host.ns.exec(cmd, args).stdout;
}
