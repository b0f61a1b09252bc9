// A detached container's conntrack flows are forgotten when its address is handed out again
// (runtime/conntrack-reuse.ts), not at every detach: the detach leaves a mark beside the lease,
// and the attach that leases the address next flushes before anything is wired. What must hold:
// no flow that names the old container's address is left when a new container gets it. The
// table is read from /proc/net/nf_conntrack in the sandbox host's namespace.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld } from '../harness/bridge-world.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('ctreuse', { outside: false });
});
afterAll(async () => {
  await w?.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

/** The host namespace's conntrack entries that name `address` (either side, either direction). */
function flowsOf(address: string): string[] {
  const text = w.host.ns.exec('cat', ['/proc/net/nf_conntrack']).stdout;
  return text.split('\n').filter((l) => l.includes(`src=${address} `) || l.includes(`dst=${address} `));
}

describe('conntrack flows of a detached container', () => {
  it('are forgotten when its address is leased again, before the new container is wired', async () => {
    const old = await w.start([], 'sleep 1000');
    const address = w.ip(old.id);
    // A flow between the host and the container (ICMP: 30 s in the table).
    expect(w.host.ns.exec('/bin/busybox', ['ping', '-c', '2', '-W', '2', address]).status).toBe(0);
    expect(flowsOf(address).length).toBeGreaterThan(0);

    await old.stop();
    // Detach left them: nothing reaches the old address until it is handed out again.
    expect(flowsOf(address).length).toBeGreaterThan(0);
    const mark = path.join(w.host.root, 'lib', 'store', 'ipam', 'tsrun', `_flush.${address}`);
    expect(existsSync(mark)).toBe(true);

    // The address is handed on (asked for by --ip): its old flows go with the mark.
    const next = await w.start(['--ip', address], 'sleep 1000');
    expect(flowsOf(address)).toEqual([]);
    expect(existsSync(mark)).toBe(false);
    await next.stop();
  });

  it('a network removed with marks waiting forgets their flows', async () => {
    w.tsrunOk(['network', 'create', 'ctr2', '--subnet', '10.123.0.0/24']);
    let address = '';
    try {
      const c = await w.start(['--net', 'ctr2'], 'sleep 1000');
      address = w.ip(c.id, 'ctr2');
      expect(w.host.ns.exec('/bin/busybox', ['ping', '-c', '1', '-W', '2', address]).status).toBe(0);
      await c.stop();
      expect(flowsOf(address).length).toBeGreaterThan(0);
    } finally {
      w.tsrunOk(['network', 'rm', 'ctr2']);
    }
    expect(address).not.toBe('');
    expect(flowsOf(address)).toEqual([]);
  });
});
