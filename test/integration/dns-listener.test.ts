// The resolver keeps a network's listener while the network's bridge holds its gateway address,
// after the network's last container left (runtime/dns/table.ts keptListeners): one container at
// a time on a network then costs no bind at its attach and no close at its detach. What must hold:
// the kept listener answers nothing of the gone container (nor anything to a host that is not
// on the network), the next container's name resolves at once, and the listener goes with the
// network (network rm) or with the gateway address leaving the bridge. Real containers, real
// queries, in a sandbox host.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { BridgeWorld } from '../harness/bridge-world.js';
import { PROJECT_ROOT, waitFor } from '../harness/sandbox.js';

const CLIENT = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures/dns-client.js');
const GW_A = '10.66.0.1';
const GW_K = '10.67.0.1';

let w: BridgeWorld;

interface Answer {
  rcode?: string;
  answers?: { type: string; data: unknown }[];
  timeout?: boolean;
}

/** One UDP query from the sandbox host's namespace (the host itself, on every network). */
function hostQuery(server: string, name: string): Answer {
  const r = w.host.ns.exec(process.execPath, [CLIENT, 'query', server, name, 'A', 'timeout=700']);
  if (r.status !== 0) throw new Error(`dns-client: ${r.stderr}`);
  return JSON.parse(r.stdout) as Answer;
}

function stats(): { pid: number; listening: string[] } {
  return JSON.parse(w.tsrunOk(['resolver', '--stats'])) as { pid: number; listening: string[] };
}

/** Addresses with a UDP socket on port 53 in the sandbox host (ss, the kernel's view). */
function udp53(): string[] {
  const r = w.host.ns.exec('ss', ['-Hlun', 'sport = :53']);
  return r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/)[3]!.replace(/:53$/, ''));
}

beforeAll(async () => {
  w = await BridgeWorld.create('dnsl', { outside: false });
  w.tsrunOk(['network', 'create', 'lsa', '--subnet', '10.66.0.0/24']);
  w.tsrunOk(['network', 'create', 'lsk', '--subnet', '10.67.0.0/24']);
});
afterAll(async () => {
  await w.destroy();
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

describe('a network\'s resolver listener between containers', () => {
  it('stays while the bridge holds the gateway, answers nothing of the gone container, and goes with the address and the network', async () => {
    // A container on another network keeps the resolver running throughout (with none left it
    // exits, closing everything: dns.test.ts).
    const keeper = await w.start(['--net', 'lsk'], 'sleep 600');
    const pid = stats().pid;

    const first = await w.start(['--net', 'lsa'], 'sleep 600');
    expect((hostQuery(GW_A, first.id).answers ?? []).map((a) => a.data)).toEqual([w.ip(first.id, 'lsa')]);
    await first.stop();

    // Kept: still bound, by the same resolver; what it says now is what an unserved network's
    // gateway says to the host: REFUSED, no name of the container that left.
    expect(stats()).toMatchObject({ pid });
    expect(stats().listening).toContain(GW_A);
    expect(udp53()).toContain(GW_A);
    expect(hostQuery(GW_A, first.id)).toMatchObject({ rcode: 'REFUSED', answers: [] });

    // The next container on the network is served at once, through the same listener.
    const second = await w.start(['--net', 'lsa'], 'sleep 600');
    expect((hostQuery(GW_A, second.id).answers ?? []).map((a) => a.data)).toEqual([w.ip(second.id, 'lsa')]);
    expect(hostQuery(GW_A, first.id).rcode).toBe('NXDOMAIN');
    await second.stop();
    expect(stats().listening).toContain(GW_A);

    // The gateway address taken off the bridge: the next reload (any container's change) closes
    // the listener, right after it answered; nothing stays bound to an address the host no
    // longer has.
    const bridge = (JSON.parse(w.tsrunOk(['network', 'inspect', 'lsa'])) as { bridge: string }).bridge;
    w.host.ns.sh(`ip addr del ${GW_A}/24 dev ${bridge}`);
    const nudge = await w.start(['--net', 'lsk'], 'sleep 600');
    await nudge.stop();
    await waitFor('the listener on the address taken away to close', () => !stats().listening.includes(GW_A), 5000);
    expect(udp53()).not.toContain(GW_A);

    // Bound again when a container needs it (the attach puts the address back on the bridge).
    const third = await w.start(['--net', 'lsa'], 'sleep 600');
    expect((hostQuery(GW_A, third.id).answers ?? []).map((a) => a.data)).toEqual([w.ip(third.id, 'lsa')]);
    await third.stop();
    expect(stats().listening).toContain(GW_A);

    // network rm: the resolver (still running for the keeper) closes the network's listener.
    w.tsrunOk(['network', 'rm', 'lsa']);
    expect(stats()).toMatchObject({ pid });
    expect(stats().listening).not.toContain(GW_A);
    expect(udp53()).not.toContain(GW_A);
    expect(stats().listening).toContain(GW_K);

    // The name again with another subnet: served on its new gateway; nothing answers on the old
    // one (no socket left there, nothing of the removed network's container), and its listener
    // is kept and closed as the first one was.
    w.tsrunOk(['network', 'create', 'lsa', '--subnet', '10.66.5.0/24']);
    const again = await w.start(['--net', 'lsa'], 'sleep 600');
    expect((hostQuery('10.66.5.1', again.id).answers ?? []).map((a) => a.data)).toEqual([w.ip(again.id, 'lsa')]);
    expect(stats().listening).not.toContain(GW_A);
    expect(hostQuery(GW_A, again.id)).toMatchObject({ timeout: true });
    await again.stop();
    expect(stats().listening).toContain('10.66.5.1');
    w.tsrunOk(['network', 'rm', 'lsa']);
    expect(stats().listening).not.toContain('10.66.5.1');
    expect(udp53()).not.toContain('10.66.5.1');
    await keeper.stop();
  });
});
