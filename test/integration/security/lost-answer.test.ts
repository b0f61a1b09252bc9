// A firewall batch reported failed after the kernel applied it (libnftables interrupted by a
// signal while it reads nf_tables' answer: "Interrupted system call") must not leave the
// container's elements behind. Before the fix the rollback undid everything but them: the orphaned
// port-map entry pointed 8080 at an address IPAM hands on, and refused every later `-p 8080`.
// TSRUN_FAULT_NFT_LOST_ANSWER (runtime/firewall/nft.ts) reports exactly that for one step.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BridgeWorld } from '../../harness/bridge-world.js';
import { uniqueId } from '../../harness/sandbox.js';

let w: BridgeWorld;
beforeAll(async () => {
  w = await BridgeWorld.create('lostans', { outside: false });
});
afterAll(async () => {
  await w.destroy();
});

/** Every element of tsrun's two tables (inet: ports and networks; bridge: the port guard) owned by this container. */
function elementsOf(id: string): string[] {
  const found: string[] = [];
  for (const family of ['inet', 'bridge']) {
    const r = w.host.ns.exec('nft', ['list', 'table', family, 'tsrun']);
    if (r.status !== 0) continue;
    for (const line of r.stdout.split('\n')) if (line.includes(`"ctr:${id}"`)) found.push(`${family}: ${line.trim()}`);
  }
  return found;
}

describe('a firewall batch applied but reported failed', () => {
  it('leaves no element of the container, and the port can be published again', () => {
    const id = uniqueId('lost');
    w.ids.push(id);
    const failed = w.host.tsrun(['run', '--name', id, '-p', '8080:80', w.bundle, '--', 'true'], { env: { TSRUN_FAULT_NFT_LOST_ANSWER: 'publish ports' } });
    expect(failed.status).not.toBe(0);
    expect(failed.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tsrun: .*Interrupted system call/)]);
    expect(elementsOf(id)).toEqual([]);
    expect(w.leaks()).toEqual([]);

    const again = w.run(['-p', '8080:80'], ['true']);
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(w.leaks()).toEqual([]);
  });
});
