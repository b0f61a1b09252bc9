// Data-plane throughput on one host (iperf3, run in the namespaces with nsenter), each tsrun
// path beside the reference and beside its kernel floor (bench/throughput.ts), interleaved
// round by round; every ratio is the median of the per-round ratios, so a round slowed down by
// the machine slows both sides of its ratio alike.
//  - container to container on one tsrun bridge vs a bare veth pair             target ≥ 0.95×
//    the floor: a bare Linux bridge with conntrack active; tsrun / floor         target ≥ 0.9×
//  - through a published port vs the container's own address                    target ≥ 0.95×
//    the floor: the same DNAT on the bare bridge; tsrun / floor                  target ≥ 0.9×
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { resolveSettings } from '../../config/settings.js';
import { createLogger } from '../../runtime/log.js';
import { openEngine } from '../../runtime/context.js';
import { createPinnedNetns, deletePinnedNetns } from '../../runtime/netns/netns.js';
import { Report, benchEnv, interleave, median } from '../lib.js';
import { BareBridge, IPERF_ROUNDS, IPERF_SECONDS, VethPair, measure, type Path } from '../throughput.js';

export async function throughputSuite(report: Report): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-tp-'));
  const settings = resolveSettings(benchEnv({ TSRUN_ROOT: root }));
  const log = createLogger({ file: settings.logFile, level: 'warn', debug: false });
  const handle = await openEngine(settings, log);
  const pins = ['tp-a', 'tp-b'].map((id) => path.join(settings.runDir, 'netns', id));
  let veth: VethPair | undefined;
  let floor: BareBridge | undefined;
  try {
    for (const p of pins) createPinnedNetns(p);
    const a = await handle.engine.attach({ containerId: 'tp-a', netnsPath: pins[0]!, network: 'tsrun', ports: [] });
    const b = await handle.engine.attach({ containerId: 'tp-b', netnsPath: pins[1]!, network: 'tsrun', ports: [{ hostPort: 15201, containerPort: 5201, protocol: 'tcp' }] });
    veth = await VethPair.create();
    floor = await BareBridge.create();
    const f = floor;
    const bridged: Path = { server: pins[1]!, client: pins[0]!, address: b.ipv4!.address };
    const published: Path = { ...bridged, address: a.ipv4!.gateway!, port: 15201, serverPort: 5201 };

    report.section(`throughput on one host: iperf3 ${IPERF_SECONDS} s, ${IPERF_ROUNDS} interleaved rounds, medians`);
    const cost: Record<string, number[]> = {};
    // interleave() keeps the throughput; the CPU per GB of each run goes beside it
    const run = (name: string, p: Path): number => {
      const r = measure(p);
      (cost[name] ??= []).push(r.cpuPerGB);
      return r.bps;
    };
    const t = interleave(IPERF_ROUNDS, {
      veth: () => run('veth', veth!.path),
      // br_netfilter alone: the bridge with no ruleset in its host
      bareBridge: () => {
        f.conntrack(false);
        try {
          return run('bareBridge', f.bridged);
        } finally {
          f.conntrack(true);
        }
      },
      floor: () => run('floor', f.bridged),
      tsrun: () => run('tsrun', bridged),
      floorOwn: () => run('floorOwn', f.bridged),
      floorPublished: () => run('floorPublished', f.published),
      published: () => run('published', published),
      own: () => run('own', bridged),
    });
    const gb = (xs: number[]) => median(xs) / 1e9;
    const ratio = (x: number[], y: number[]) => median(x.map((v, i) => v / y[i]!));
    // CPU per GB as the inverse ratio (> 1: the first needs less CPU per byte), the same way round as throughput
    const cpu = (x: string, y: string) => `CPU per GB: ${ratio(cost[y]!, cost[x]!).toFixed(2)}×`;
    report.add({ name: 'two bare namespaces over one veth pair', value: gb(t.veth!), unit: 'Gb/s' });
    report.add({ name: 'bare Linux bridge, no ruleset (br_netfilter loaded)', value: gb(t.bareBridge!), unit: 'Gb/s' });
    report.add({ name: 'the floor: bare Linux bridge, conntrack and NAT active', value: gb(t.floor!), unit: 'Gb/s' });
    report.add({ name: 'container to container on one tsrun bridge', value: gb(t.tsrun!), unit: 'Gb/s' });
    report.add({ name: 'tsrun bridge / bare veth', value: ratio(t.tsrun!, t.veth!), unit: '×', target: '≥ 0.95', note: `the kernel floor below; ${cpu('tsrun', 'veth')}` });
    report.add({ name: 'the kernel floor: bare bridge with conntrack / bare veth', value: ratio(t.floor!, t.veth!), unit: '×', note: cpu('floor', 'veth') });
    report.add({ name: 'tsrun bridge / the floor', value: ratio(t.tsrun!, t.floor!), unit: '×', target: '≥ 0.9', note: cpu('tsrun', 'floor') });
    report.add({ name: 'to the container own address', value: gb(t.own!), unit: 'Gb/s' });
    report.add({ name: 'through a published port (gateway address, DNAT)', value: gb(t.published!), unit: 'Gb/s' });
    report.add({ name: 'published port / own address', value: ratio(t.published!, t.own!), unit: '×', target: '≥ 0.95', note: `the kernel floor below; ${cpu('published', 'own')}` });
    report.add({ name: 'the kernel floor: bare bridge, DNAT / own address', value: ratio(t.floorPublished!, t.floorOwn!), unit: '×', note: cpu('floorPublished', 'floorOwn') });
    report.add({ name: 'tsrun published port / the floor\'s DNAT', value: ratio(t.published!, t.floorPublished!), unit: '×', target: '≥ 0.9', note: cpu('published', 'floorPublished') });
  } finally {
    await handle.engine.detach('tp-a').catch(() => undefined);
    await handle.engine.detach('tp-b').catch(() => undefined);
    for (const p of pins) deletePinnedNetns(p);
    veth?.destroy();
    floor?.destroy();
    await handle.close();
    spawnSync('ip', ['link', 'del', 'tsrun0']);
    rmSync(root, { recursive: true, force: true });
  }
}
