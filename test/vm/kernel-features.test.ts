// Kernel features the VM test lane exists for, checked with the kernel alone (ip and busybox
// ping, no tsrun code): an ipvlan L2 pair on a veth parent, one ipvlan end in each of two scratch
// namespaces, pinging each other. It proves that the lane's guest really has ipvlan (so the
// project's ipvlan tests run there instead of skipping) and pins down the wiring facts those tests
// rely on. Run by `npm run test:vm` inside the VM; on a kernel without ipvlan (this machine's
// own) it reports itself skipped with the reason. Everything lives in scratch namespaces pinned by
// `unshare -n sleep` children, entered with nsenter: nothing touches the namespace it runs in.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { scratchNetns, waitFor, type ScratchNetns } from '../harness/sandbox.js';

interface IpLink {
  ifname: string;
  flags: string[];
  operstate: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
}

/** Why this kernel cannot run the tests below, or undefined when it can. Probed by creating a
 * veth and an ipvlan on it inside a throwaway namespace that dies with the probe's shell, since
 * the module may be built in, loadable on demand, or absent, and only the kernel knows which. */
function ipvlanMissing(): string | undefined {
  const probe = spawnSync(
    'unshare',
    ['-n', 'sh', '-c', 'ip link add tsV0 type veth peer name tsV1 && ip link add tsV2 link tsV0 type ipvlan mode l2'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (probe.status === 0) return undefined;
  return `this kernel (${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}) cannot create ipvlan links: ${probe.stderr.trim() || `probe exit ${probe.status}`}; npm run test:vm runs these tests in a VM with a stock Debian kernel`;
}

const missing = ipvlanMissing();
if (missing) console.warn(`kernel-features: skipped: ${missing}`);
const describeIpvlan = missing ? describe.skip : describe;

// Addresses exist only inside the scratch namespaces below.
const A = '10.77.0.1';
const B = '10.77.0.2';

describeIpvlan('ipvlan L2 on a veth parent (kernel)', () => {
  let hub: ScratchNetns; // holds the parent veth pair, as a host would hold its uplink
  let a: ScratchNetns;
  let b: ScratchNetns;

  const link = (ns: ScratchNetns, name: string): IpLink => ns.ipJson<IpLink[]>(['-d', 'link', 'show', 'dev', name])[0]!;
  // busybox ping exits 0 when any reply came back; -W bounds the wait for the first one.
  const ping = (from: ScratchNetns, to: string, count = 3) =>
    from.exec('busybox', ['ping', '-c', String(count), '-i', '0.2', '-W', count === 1 ? '1' : '2', to], { timeoutMs: 15_000 });

  beforeAll(async () => {
    hub = await scratchNetns('tsV-hub');
    a = await scratchNetns('tsV-a');
    b = await scratchNetns('tsV-b');
    for (const ns of [hub, a, b]) ns.run('ip', ['link', 'set', 'lo', 'up']);
  });

  afterEach(() => {
    // Each test removes its own links; the ipvlans go with their parent.
    hub.exec('ip', ['link', 'del', 'tsVp']);
    for (const ns of [hub, a, b]) expect(ns.ipJson<IpLink[]>(['link', 'show']).map((l) => l.ifname)).toEqual(['lo']);
  });

  afterAll(async () => {
    await hub?.destroy();
    await a?.destroy();
    await b?.destroy();
  });

  /** A veth pair tsVp/tsVq in the hub with ipvlan children tsVa (moved into a) and tsVb (into b). */
  function wire(peerUp: boolean): void {
    hub.run('ip', ['link', 'add', 'tsVp', 'type', 'veth', 'peer', 'name', 'tsVq']);
    hub.run('ip', ['link', 'set', 'tsVp', 'up']);
    if (peerUp) hub.run('ip', ['link', 'set', 'tsVq', 'up']);
    for (const [ns, name, addr] of [[a, 'tsVa', A], [b, 'tsVb', B]] as const) {
      hub.run('ip', ['link', 'add', name, 'link', 'tsVp', 'type', 'ipvlan', 'mode', 'l2']);
      hub.run('ip', ['link', 'set', name, 'netns', String(ns.pid)]);
      ns.run('ip', ['addr', 'add', `${addr}/24`, 'dev', name]);
      ns.run('ip', ['link', 'set', name, 'up']);
    }
  }

  it('passes traffic both ways between two namespaces', () => {
    wire(true);
    const la = link(a, 'tsVa');
    expect(la.linkinfo?.info_kind).toBe('ipvlan');
    expect(la.linkinfo?.info_data?.mode).toBe('l2');
    expect(la.operstate).not.toBe('LOWERLAYERDOWN');

    const ab = ping(a, B);
    expect({ status: ab.status, out: ab.stdout + ab.stderr }).toMatchObject({ status: 0, out: expect.stringContaining('3 packets received') });
    const ba = ping(b, A);
    expect({ status: ba.status, out: ba.stdout + ba.stderr }).toMatchObject({ status: 0, out: expect.stringContaining('3 packets received') });
    // ipvlan children share their parent's MAC address: the trait that sets ipvlan apart from
    // macvlan, and what makes it usable where a switch port allows one MAC only.
    const mac = (ns: ScratchNetns, dev: string) => ns.ipJson<{ address: string }[]>(['link', 'show', 'dev', dev])[0]!.address;
    expect(mac(a, 'tsVa')).toBe(mac(hub, 'tsVp'));
    expect(mac(b, 'tsVb')).toBe(mac(hub, 'tsVp'));
  });

  it('has no carrier while the parent veth\'s peer is down (wiring must bring both ends up)', async () => {
    wire(false);
    expect(link(a, 'tsVa').flags).toContain('NO-CARRIER');
    expect(ping(a, B, 1).status).not.toBe(0);
    // Bringing the peer up is all it takes.
    hub.run('ip', ['link', 'set', 'tsVq', 'up']);
    await waitFor('carrier on tsVa', () => !link(a, 'tsVa').flags.includes('NO-CARRIER'), 5_000);
    // The failed ping above left B's ARP entry resolving or FAILED; a packet sent while it expires
    // is dropped, so poll until one gets through rather than betting on the first.
    await waitFor('a ping from a to B', () => ping(a, B, 1).status === 0, 15_000);
  }, 30_000);
});
