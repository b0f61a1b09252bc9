// forgetFlows / forgetPortFlows against the real kernel's conntrack table, in two scratch
// namespaces: "host" (whose table is cleaned) and "peer" (the clients, on three addresses of each
// family). The table is read back from /proc/net/nf_conntrack inside the host namespace, not with
// the code under test.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { forgetFlows, forgetPortFlows } from '../../../runtime/conntrack.js';
import type { Logger } from '../../../runtime/log.js';
import { ScratchNs } from '../../harness/sandbox.js';

let host: ScratchNs;
let peer: ScratchNs;
const warnings: string[] = [];
const log = {
  warn: (...a: unknown[]) => void warnings.push(a.map(String).join(' ')),
  debug: () => undefined,
  info: () => undefined,
  error: () => undefined,
  child: () => log,
} as unknown as Logger;

beforeAll(async () => {
  host = await ScratchNs.create('ctnl-host');
  peer = await ScratchNs.create('ctnl-peer');
  await host.sh(`ip link add ctnl0 type veth peer name ctnl1 netns ${peer.pid}
    ip addr add 10.77.0.1/24 dev ctnl0 && ip -6 addr add fd77::1/64 dev ctnl0 nodad && ip link set ctnl0 up
    sysctl -qw net.ipv4.ip_forward=1`);
  await peer.sh(`for i in 2 3 4; do ip addr add 10.77.0.$i/24 dev ctnl1; ip -6 addr add fd77::$i/64 dev ctnl1 nodad; done
    ip link set ctnl1 up`);
  // A DNAT rule (as a published port): UDP to .1:7000 goes to .2:53, so such a flow names .2
  // only on its reply side. The nat chain also turns conntrack on in this namespace.
  await host.sh(`printf '%s\\n' 'table inet ctnltest {' \\
    ' chain pre { type nat hook prerouting priority -100; ip daddr 10.77.0.1 udp dport 7000 dnat ip to 10.77.0.2:53; }' \\
    ' chain out { type filter hook output priority 0; ct state new counter; }' '}' | nft -f -`);
}, 30_000);

afterAll(async () => {
  await host?.destroy();
  await peer?.destroy();
});

/** UDP datagrams from `from` (fixed source port) to `to`:`port`, all in one node process. */
async function send(ns: ScratchNs, flows: [from: string, to: string, port: number][]): Promise<void> {
  const script = `const d=require('dgram');const f=JSON.parse(process.argv[1]);let n=f.length;for(const [a,b,p] of f){const s=d.createSocket(a.includes(':')?'udp6':'udp4');s.bind(41000,a,()=>s.send('x',p,b,()=>{s.close();if(--n===0)process.exit(0)}))}`;
  await ns.run([process.execPath, '-e', script, JSON.stringify(flows)]);
}

/** The kernel prints IPv6 addresses in full; the URL parser gives the RFC 5952 form. */
const canonical = (a: string): string => (a.includes(':') ? new URL(`http://[${a}]/`).hostname.slice(1, -1) : a);

/** The host's UDP entries as "src>dst:dport" of the original direction, sorted. */
async function table(): Promise<string[]> {
  const text = await host.run(['cat', '/proc/net/nf_conntrack']);
  return text
    .split('\n')
    .filter((l) => / udp /.test(l))
    .map((l) => {
      const src = canonical(/src=(\S+)/.exec(l)![1]!);
      const dst = canonical(/dst=(\S+)/.exec(l)![1]!);
      const dport = /dport=(\d+)/.exec(l)![1];
      return `${src}>${dst}:${dport}`;
    })
    .sort();
}

beforeEach(async () => {
  warnings.length = 0;
  // Every test starts with these flows (re-created or refreshed): from the peer's three
  // addresses, and one the host starts towards .2.
  await send(peer, [
    ['10.77.0.2', '10.77.0.1', 5000],
    ['10.77.0.3', '10.77.0.1', 5000],
    ['10.77.0.4', '10.77.0.1', 7000],
    ['fd77::2', 'fd77::1', 5000],
    ['fd77::3', 'fd77::1', 5000],
  ]);
  await send(host, [['10.77.0.1', '10.77.0.2', 6000]]);
});

describe('forgetFlows', () => {
  it('deletes exactly the entries naming the addresses, on either side, and leaves the rest', async () => {
    const before = await table();
    expect(before).toEqual(
      expect.arrayContaining(['10.77.0.2>10.77.0.1:5000', '10.77.0.3>10.77.0.1:5000', '10.77.0.4>10.77.0.1:7000', '10.77.0.1>10.77.0.2:6000', 'fd77::2>fd77::1:5000', 'fd77::3>fd77::1:5000']),
    );
    await forgetFlows(['10.77.0.2', 'fd77::2'], log, host.path);
    const after = await table();
    // orig src (.2), orig dst (.2), reply src (the DNATed flow of .4 answered by .2), and IPv6
    expect(after).not.toContain('10.77.0.2>10.77.0.1:5000');
    expect(after).not.toContain('10.77.0.1>10.77.0.2:6000');
    expect(after).not.toContain('10.77.0.4>10.77.0.1:7000');
    expect(after).not.toContain('fd77::2>fd77::1:5000');
    expect(after).toEqual(expect.arrayContaining(['10.77.0.3>10.77.0.1:5000', 'fd77::3>fd77::1:5000']));
    expect(warnings).toEqual([]);
  });

  it('is a no-op for an address without flows', async () => {
    const before = await table();
    await forgetFlows(['10.77.0.99'], log, host.path);
    expect(await table()).toEqual(before);
    expect(warnings).toEqual([]);
  });
});

describe('the entry count first', () => {
  it('a namespace without entries is not walked, even while another namespace has flows', async () => {
    const quiet = await ScratchNs.create('ctnl-quiet');
    const debug: string[] = [];
    const counting = { ...log, debug: (_o: unknown, msg: string) => void debug.push(msg), child: () => counting } as unknown as Logger;
    try {
      await forgetFlows(['10.77.0.2'], counting, quiet.path);
      expect(debug).toEqual(['no conntrack entries in the namespace: nothing to forget']);
      // The count is the namespace's own: the host's flows (beforeEach) make it walk there.
      debug.length = 0;
      await forgetFlows(['10.77.0.99'], counting, host.path);
      expect(debug).toEqual(['conntrack flows forgotten']);
      expect(warnings).toEqual([]);
    } finally {
      await quiet.destroy();
    }
  });
});

describe('forgetPortFlows', () => {
  it('deletes the UDP flows to a port on every address of both families, and nothing else', async () => {
    await forgetPortFlows([{ hostPort: 5000, containerPort: 53, protocol: 'udp' }], log, host.path);
    const after = await table();
    expect(after.filter((f) => f.endsWith(':5000'))).toEqual([]);
    expect(after).toEqual(expect.arrayContaining(['10.77.0.4>10.77.0.1:7000', '10.77.0.1>10.77.0.2:6000']));
    expect(warnings).toEqual([]);
  });

  it('with a host address, only the flows to that address', async () => {
    await forgetPortFlows([{ hostIp: 'fd77::1', hostPort: 5000, containerPort: 53, protocol: 'udp' }], log, host.path);
    const after = await table();
    expect(after.filter((f) => f.startsWith('fd77'))).toEqual([]);
    expect(after).toEqual(expect.arrayContaining(['10.77.0.2>10.77.0.1:5000', '10.77.0.3>10.77.0.1:5000']));
  });

  it('ignores TCP mappings', async () => {
    const before = await table();
    await forgetPortFlows([{ hostPort: 5000, containerPort: 53, protocol: 'tcp' }], log, host.path);
    expect(await table()).toEqual(before);
  });
});
