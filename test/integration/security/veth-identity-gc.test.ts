// The same-id scenario end to end, through tsrun: a bridge endpoint record whose veth is gone, but
// whose host veth NAME (derived from container id and network) now belongs to a newer container,
// is torn down late by gc. The newer container's veth must stay on its bridge, and its eth0 must
// keep working. (A ghost record stands in for the old one: the store keeps one record per id and
// network, so the old record is the earlier container's, renamed, carrying the newer one's veth name.)
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld } from '../../harness/bridge-world.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('i10vid', { outside: false });
  w.tsrunOk(['network', 'create', 'i10vb', '--subnet', '10.62.0.0/24']);
});
afterAll(async () => {
  await w.stopAll();
  w.host.tsrun(['network', 'rm', '--force', 'i10vb']);
  await w.destroy();
});

it('a late gc of an old bridge record leaves the newer container with the same veth name working', async () => {
  const store = path.join(w.host.root, 'lib', 'store');
  const recordOf = (id: string) => JSON.parse(readFileSync(path.join(store, 'endpoints', id, 'i10vb'), 'utf8')) as Record<string, unknown>;
  const older = await w.start(['--net', 'i10vb'], 'sleep 600');
  const old = recordOf(older.id);
  expect((old.hostLink as { index: number }).index).toBeGreaterThan(0);
  await older.stop();
  const newer = await w.start(['--net', 'i10vb'], 'sleep 600');
  try {
    const rec = recordOf(newer.id);
    // Dead for sure: its holder process is gone (its namespace identity may be the newer one's).
    const dead = spawnSync('true').pid!;
    const ghost = { ...old, containerId: 'i10-vghost', hostIfname: rec.hostIfname, ipv4: { ...(old.ipv4 as object), address: '10.62.0.200' }, netnsPath: `/proc/${dead}/ns/net`, netnsHolder: { pid: dead, start: '1' } };
    mkdirSync(path.join(store, 'endpoints', 'i10-vghost'), { recursive: true });
    writeFileSync(path.join(store, 'endpoints', 'i10-vghost', 'i10vb'), JSON.stringify(ghost));
    const gc = w.host.tsrun(['gc']);
    expect(gc.status).toBe(0);
    expect(gc.stdout + gc.stderr).toContain('i10-vghost');
    expect(() => w.endpoint('i10-vghost', 'i10vb')).toThrow(/no endpoint record/);
    // the newer container's veth is still on the bridge, and its eth0 reaches the gateway
    const veth = w.host.ns.exec('ip', ['-o', 'link', 'show', String(rec.hostIfname)]);
    expect(veth.stdout).toContain('master');
    const ping = w.inContainer(newer.id, 'i10vb', 'ping -c1 -W2 10.62.0.1 >/dev/null && echo reached');
    expect(ping.stdout).toContain('reached');
  } finally {
    await newer.stop();
  }
  expect(w.leaks()).toEqual([]);
});

it('gc deletes a dying veth whose deleter never ran, and no link that only looks like one', async () => {
  // dismissVeth's contract (linux-bridge.ts): a dying veth is down, off any bridge, and named
  // tsvz<its own index>. Links that miss any of these are someone else's, and stay.
  const sh = (cmd: string) => w.host.ns.sh(cmd);
  sh('ip link add i10vbr type bridge');
  sh('ip link add name tsvz9001 index 9001 type veth peer name i10p1 && ip link set tsvz9001 up'); // up: in use
  sh('ip link add name tsvz9002 index 9003 type veth peer name i10p2'); // another index's name
  sh('ip link add name tsvz9004 index 9004 type veth peer name i10p4 && ip link set tsvz9004 master i10vbr'); // on a bridge
  sh('ip link add name tsvz9005 index 9005 type bridge'); // not a veth
  sh('ip link add name tsvz9006 index 9006 type veth peer name i10p6'); // dying, its deleter gone
  try {
    const gc = w.host.tsrun(['gc']);
    expect(gc.status).toBe(0);
    const links = w.host.ns.exec('ip', ['-o', 'link', 'show']).stdout;
    for (const name of ['tsvz9001', 'tsvz9002', 'tsvz9004', 'tsvz9005']) expect(links).toContain(`${name}`);
    expect(links).not.toContain('tsvz9006');
    expect(links).not.toContain('i10p6');
  } finally {
    for (const l of ['tsvz9001', 'tsvz9002', 'tsvz9004', 'tsvz9005', 'tsvz9006', 'i10vbr']) w.host.ns.exec('ip', ['link', 'del', l]);
  }
  expect(w.leaks()).toEqual([]);
});
