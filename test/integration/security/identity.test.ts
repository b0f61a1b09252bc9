// Identity in late teardown: a macvlan detach that runs after its container is gone must not find
// "the namespace" by dev:inode alone. The kernel reuses a freed namespace's inode, so a newer
// container can carry the dead one's identity; deleting eth0 there would cut the newer container
// off. The record's holder (pid + start time) or pin is the proof, never the inode alone.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld } from '../../harness/bridge-world.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('i10id', { outside: false });
  w.host.ns.sh('ip link add i10par type veth peer name i10peer && ip link set i10par up && ip link set i10peer up');
  w.tsrunOk(['network', 'create', 'i10mv', '--driver', 'macvlan', '--parent', 'i10par', '--subnet', '10.61.0.0/24']);
});
afterAll(async () => {
  await w.stopAll();
  w.host.tsrun(['network', 'rm', '--force', 'i10mv']);
  await w.destroy();
});

it('a late macvlan detach of a dead container leaves a newer container with the same namespace identity alone', async () => {
  const newer = await w.start(['--net', 'i10mv'], 'sleep 600');
  try {
    const store = path.join(w.host.root, 'lib', 'store');
    const rec = JSON.parse(readFileSync(path.join(store, 'endpoints', newer.id, 'i10mv'), 'utf8')) as Record<string, unknown>;
    // The dead container: its holder process is gone, and the kernel handed its namespace inode
    // to the newer container (simulated: its record names the newer one's identity).
    const dead = spawnSync('true').pid!;
    const ghost = { ...rec, containerId: 'i10-ghost', ipv4: { ...(rec.ipv4 as object), address: '10.61.0.200' }, netnsPath: `/proc/${dead}/ns/net`, netnsHolder: { pid: dead, start: '1' } };
    mkdirSync(path.join(store, 'endpoints', 'i10-ghost'), { recursive: true });
    writeFileSync(path.join(store, 'endpoints', 'i10-ghost', 'i10mv'), JSON.stringify(ghost));
    // gc finds the ghost dead and detaches it from its record
    const gc = w.host.tsrun(['gc']);
    expect(gc.status).toBe(0);
    expect(gc.stdout + gc.stderr).toContain('i10-ghost');
    expect(() => w.endpoint('i10-ghost', 'i10mv')).toThrow(/no endpoint record/);
    // the newer container still has its eth0
    const link = w.inContainer(newer.id, 'i10mv', 'ip -o link show eth0 && echo present');
    expect(link.stdout).toContain('present');
  } finally {
    await newer.stop();
  }
  expect(w.leaks()).toEqual([]);
});
