// The parts of an attach, each measured on its own, as ratios against a reference in the same
// run. These were wall-clock ceilings inside tests; timing belongs here, where a loaded machine
// makes a number worse instead of making a test fail.
//  - netlink wiring of a bridge attach (veth with its peer in the container, 2 addresses, 2
//    routes: 7 requests on open sockets) vs one `ip link add … type veth` process     ≤ 1.0×
//  - one nft attach batch (what Engine.attach sends: the network's elements, two published ports,
//    the port guard) vs starting `nft` to list tables: the default way (elements straight to
//    nf_tables over netlink) ≤ 0.2×, through the nft process (the fallback) ≤ 2.0×; libnftables
//    in-process and the kernel's own part (the same messages pre-encoded) beside them
//  - IPAM on the local store (fsync on): allocations 191-200 vs 2-11 in one subnet      ≤ 3.0×
//    (and the same without the hint, as a control)
//  - the kernel floor of forgetting a container's conntrack flows: one ctnetlink dump, which
//    walks the machine-wide conntrack hash whatever it holds (paid when an address is reused,
//    runtime/conntrack-reuse.ts), and the entry-count request that skips it in an empty table
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ipam, keyLayout } from '../../runtime/ipam/ipam.js';
import { parseSubnet } from '../../config/address.js';
import { LocalStore } from '../../runtime/store/local.js';
import { Rtnl } from '../../runtime/netlink/rtnl.js';
import { createPinnedNetns, deletePinnedNetns, openNetnsFd } from '../../runtime/netns/netns.js';
import { NftFirewall } from '../../runtime/firewall/backend.js';
import { addElements, addEndpointBatch, addNetworkBatch, guardElements, type NftBatch } from '../../runtime/firewall/nft-rules.js';
import { encodeElementBatch, sendElementBatch } from '../../runtime/firewall/nfnl.js';
import { NlSocket } from '../../runtime/netlink/socket.js';
import { NETLINK_NETFILTER } from '../../runtime/netns/sys.js';
import { IPCTNL_MSG, ctDumpBody, ctMsgType, ctStatsBody } from '../../runtime/netlink/ctnl.js';
import { readFileSync } from 'node:fs';
import { Report, median, timeCommand } from '../lib.js';

export async function partsSuite(report: Report, runs: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-parts-'));
  try {
    await netlinkWiring(report, runs, dir);
    await nftBatch(report, runs);
    await ipamFlat(report, Math.max(3, Math.min(runs, 7)), dir);
    await conntrackWalk(report, runs);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench runs in a network namespace of its own (run.ts): the bridge lives there. */
async function netlinkWiring(report: Report, runs: number, dir: string): Promise<void> {
  report.section(`netlink wiring of one bridge attach, in-process (median of ${runs})`);
  const host = Rtnl.open();
  await host.createBridge({ name: 'tsbpart0', up: true });
  const bridge = (await host.getLink('tsbpart0'))!.index;
  await host.addAddress(bridge, '10.79.0.1/16');
  await host.addAddress(bridge, 'fd79::1/64');
  const create: number[] = [];
  const wire: number[] = [];
  const ipProcess: number[] = [];
  try {
    for (let i = 0; i < runs + 1; i++) {
      const pin = path.join(dir, `c${i}`);
      const t0 = performance.now();
      createPinnedNetns(pin);
      const t1 = performance.now();
      const ctr = Rtnl.open(pin);
      const fd = openNetnsFd(pin);
      const t2 = performance.now();
      try {
        await host.createVeth({ name: 'tsbpartv', peerName: 'eth0', peerNsFd: fd, master: bridge, up: true });
      } finally {
        closeSync(fd);
      }
      const eth0 = (await ctr.getLink('eth0'))!.index;
      await ctr.setUp(eth0);
      await ctr.addAddress(eth0, `10.79.0.${i + 2}/16`);
      await ctr.addAddress(eth0, `fd79::${(i + 2).toString(16)}/64`);
      await ctr.addRoute({ dst: 'default', gateway: '10.79.0.1' });
      await ctr.addRoute({ dst: 'default', gateway: 'fd79::1' });
      const t3 = performance.now();
      ctr.close();
      await host.deleteLink('tsbpartv');
      deletePinnedNetns(pin);
      const ip = timeCommand('ip', ['link', 'add', 'tsbpartr', 'type', 'veth', 'peer', 'name', 'tsbpartp']);
      timeCommand('ip', ['link', 'del', 'tsbpartr']);
      if (i === 0) continue; // warm-up: loads koffi, opens the first sockets
      create.push(t1 - t0);
      wire.push(t3 - t2);
      ipProcess.push(ip);
    }
  } finally {
    await host.deleteLink('tsbpartv');
    await host.deleteLink('tsbpart0');
    host.close();
  }
  report.add({ name: 'create and pin a network namespace (lo up)', value: median(create), unit: 'ms' });
  report.add({ name: 'netlink wiring: veth into the netns, up, 2 addresses, 2 routes', value: median(wire), unit: 'ms' });
  report.add({ name: 'one `ip link add … type veth` process', value: median(ipProcess), unit: 'ms' });
  report.add({ name: 'netlink wiring (7 requests) / one ip process', value: median(wire) / median(ipProcess), unit: '×', target: '≤ 1.0' });
}

async function nftBatch(report: Report, runs: number): Promise<void> {
  report.section(`one nft attach batch (a network's and a container's elements, 2 published ports), each way it can reach the kernel (median of ${runs})`);
  await new NftFirewall().ensureBase();
  const net = { name: 'parts', bridge: 'tsbpart0', subnets4: ['10.79.0.0/16'], subnets6: ['fd79::/64'], internal: false, icc: true };
  // Each way through NftFirewall.attach, as Engine.attach calls it: the network's elements, the
  // ports, the port guard in one batch.
  const endpoint = (n: number) => ({
    containerId: `bench-parts-${n}`,
    ipv4: `10.79.${1 + (n >> 8)}.${n & 255}`,
    ipv6: `fd79::${(n + 2).toString(16)}`,
    ports: [
      { hostPort: 21000 + n, containerPort: 80, protocol: 'tcp' as const },
      { hostPort: 41000 + n, containerPort: 53, protocol: 'udp' as const, hostIp: '127.0.0.1' },
    ],
    port: { ifname: `tsbpv${n}`, mac: `02:42:ac:4f:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}` },
  });
  const attachBatch = (n: number): NftBatch => {
    const ep = endpoint(n);
    return { nftables: [...addNetworkBatch(net).nftables, ...addEndpointBatch(ep).nftables, ...addElements(guardElements(ep))] };
  };
  const ways = { auto: new NftFirewall(), lib: new NftFirewall({ backend: 'lib' }), process: new NftFirewall({ backend: 'process' }) };
  const direct: number[] = [];
  const lib: number[] = [];
  const proc: number[] = [];
  const kernel: number[] = [];
  const floor: number[] = [];
  let n = 0;
  try {
    for (let i = 0; i < runs + 1; i++) {
      // Interleaved, each with new elements; every way sees the others' commits, as on a host.
      const t0 = performance.now();
      await ways.auto.attach(net, endpoint(n++));
      const t1 = performance.now();
      await ways.lib.attach(net, endpoint(n++));
      const t2 = performance.now();
      await ways.process.attach(net, endpoint(n++));
      const t3 = performance.now();
      // The kernel's own part: the same messages, encoded beforehand, sent and answered.
      const encoded = encodeElementBatch(attachBatch(n++))!;
      const t4 = performance.now();
      const refused = sendElementBatch(encoded);
      const t5 = performance.now();
      if (refused) throw new Error(refused.message);
      const nft = timeCommand('nft', ['-j', 'list', 'tables']);
      if (i === 0) continue; // warm-up: loads koffi and libnftables
      direct.push(t1 - t0);
      lib.push(t2 - t1);
      proc.push(t3 - t2);
      kernel.push(t5 - t4);
      floor.push(nft);
    }
  } finally {
    timeCommand('nft', ['delete', 'table', 'inet', 'tsrun']);
    timeCommand('nft', ['delete', 'table', 'bridge', 'tsrun']);
    timeCommand('nft', ['delete', 'table', 'bridge', 'tsrun_nd']);
  }
  report.add({ name: 'attach batch, default (elements straight to nf_tables)', value: median(direct), unit: 'ms' });
  report.add({ name: 'attach batch, libnftables in-process (TSRUN_NFT_BACKEND=lib)', value: median(lib), unit: 'ms' });
  report.add({ name: 'attach batch, nft process (the fallback)', value: median(proc), unit: 'ms' });
  report.add({ name: 'kernel floor: the same messages pre-encoded, sent, answered', value: median(kernel), unit: 'ms' });
  report.add({ name: 'nft -j list tables (starting nft)', value: median(floor), unit: 'ms' });
  report.add({ name: 'attach batch (default) / starting nft', value: median(direct) / median(floor), unit: '×', target: '≤ 0.2' });
  report.add({ name: 'attach batch (default) / kernel floor', value: median(direct) / median(kernel), unit: '×', note: 'the rest: building the JSON, encoding it' });
  report.add({ name: 'attach batch (libnftables) / starting nft', value: median(lib) / median(floor), unit: '×', note: 'its cache fill from the kernel before each batch' });
  report.add({ name: 'attach batch (nft process) / starting nft', value: median(proc) / median(floor), unit: '×', target: '≤ 2.0' });
}

const N = 200;

async function ipamFlat(report: Report, rounds: number, dir: string): Promise<void> {
  report.section(`IPAM on the local store, fsync on: ${N} allocations in one subnet (${rounds} rounds)`);
  const net = { name: 'parts', subnet: '10.44.0.0/16' };
  const measure = async (hint: boolean) => {
    const early: number[] = [];
    const late: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const store = new LocalStore(path.join(dir, `ipam-${hint}-${r}`), { fsync: true });
      const ipam = new Ipam(store);
      const hintKey = keyLayout.hint(net.name, parseSubnet(net.subnet));
      for (let i = 0; i < N; i++) {
        if (!hint) await store.deleteIf(hintKey);
        const t = performance.now();
        await ipam.allocate(net, `c${i}`);
        const ms = performance.now() - t;
        if (i >= 1 && i <= 10) early.push(ms);
        if (i >= N - 10) late.push(ms);
      }
    }
    return { early: median(early), late: median(late) };
  };
  const withHint = await measure(true);
  const control = await measure(false);
  report.add({ name: 'allocation, leases 2-11', value: withHint.early, unit: 'ms' });
  report.add({ name: `allocation, leases ${N - 9}-${N}`, value: withHint.late, unit: 'ms' });
  report.add({ name: `allocations ${N - 9}-${N} / 2-11 (the hint keeps it flat)`, value: withHint.late / withHint.early, unit: '×', target: '≤ 3.0' });
  report.add({ name: `control without the hint: ${N - 9}-${N} / 2-11`, value: control.late / control.early, unit: '×' });
}

/** What forgetting flows costs the kernel: a dump walks every bucket of the shared hash. */
async function conntrackWalk(report: Report, runs: number): Promise<void> {
  let buckets = '?';
  try {
    buckets = readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim();
  } catch {
    // no conntrack module: the dump below fails and says so
  }
  report.section(`conntrack: one ctnetlink dump of this namespace (${buckets} buckets machine-wide) vs the entry count (median of ${runs})`);
  const sock = new NlSocket(undefined, NETLINK_NETFILTER);
  const dump: number[] = [];
  const count: number[] = [];
  try {
    for (let i = 0; i < runs + 1; i++) {
      const t0 = performance.now();
      await sock.dump(ctMsgType(IPCTNL_MSG.GET), 0, ctDumpBody());
      const t1 = performance.now();
      await sock.request(ctMsgType(IPCTNL_MSG.GET_STATS), 0, ctStatsBody());
      const t2 = performance.now();
      if (i === 0) continue;
      dump.push(t1 - t0);
      count.push(t2 - t1);
    }
  } catch (err) {
    report.add({ name: 'conntrack dump (unavailable here)', value: 0, unit: '', note: (err as Error).message });
    return;
  } finally {
    sock.close();
  }
  report.add({ name: 'ctnetlink dump: the walk of the whole hash (kernel floor of a flush)', value: median(dump), unit: 'ms', note: 'paid when an address is reused, not at detach' });
  report.add({ name: 'ctnetlink entry count (IPCTNL_MSG_CT_GET_STATS)', value: median(count), unit: 'ms' });
}
