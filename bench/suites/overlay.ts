// Overlay: two simulated hosts on one underlay segment, etcd beside them, a `tsrun agent` each
// (the cluster harness the integration tests use).
//  - iperf3 between containers on two hosts over VXLAN vs between the two hosts' underlay
//    addresses, interleaved in one run: target ≥ 0.9×; beside it the kernel floor, a bare VXLAN
//    device and bridge in the same two hosts (bench/throughput.ts): tsrun / floor ≥ 0.9×
//  - time from `tsrun run` on host B until host A's container reaches the new container (ping),
//    reported (median of a few), with the part spent before the agent of A had programmed it
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Report, benchBundle, median } from '../lib.js';
import { BUSYBOX, OverlayCluster, type OverlayHost } from '../../test/harness/overlay-cluster.js';
import { haveEtcd } from '../../test/harness/etcd.js';
import { VXLAN_PORT } from '../../runtime/overlay/devices.js';
import { BareVxlan, IPERF_SECONDS, iperfRun, type IperfResult } from '../throughput.js';

const ROUNDS = Number(process.env.BENCH_OVERLAY_ROUNDS ?? process.env.BENCH_IPERF_ROUNDS ?? 3);
const REACH_RUNS = 5;
const VNI = 4242;
const DEV = `tsvx${VNI}`;

export async function overlaySuite(report: Report): Promise<void> {
  report.section(`overlay: two hosts over VXLAN (iperf3 ${IPERF_SECONDS} s each, ${ROUNDS} interleaved rounds, run in the namespaces with nsenter)`);
  if (!haveEtcd) {
    console.log('skipped: /usr/bin/etcd is missing (npm run setup installs etcd-server)');
    return;
  }
  const cluster = await OverlayCluster.create({ prefix: `bench${process.pid}`, ttlSeconds: 10, resyncSeconds: 30 });
  const bundle = benchBundle(['sh', '-c', 'trap "exit 0" TERM; sleep 100000 & wait']);
  let floor: BareVxlan | undefined;
  try {
    const A = await cluster.addHost('A', 1);
    const B = await cluster.addHost('B', 2);
    await A.startAgent();
    await B.startAgent();
    const created = A.tsrun(['network', 'create', 'ov', '--driver', 'overlay', '--subnet', '10.251.0.0/24', '--vni', String(VNI)]);
    if (created.status !== 0) throw new Error(`network create: ${created.stderr}`);
    const a1 = await A.runContainer('a1', 'ov', bundle.dir);
    const b1 = await B.runContainer('b1', 'ov', bundle.dir);
    void a1;
    if (!waitPing(A, 'a1', b1, 10_000)) throw new Error('a1 cannot reach b1');

    floor = await BareVxlan.create({ ns: A.ns, address: A.address }, { ns: B.ns, address: B.address }, { vni: VNI + 1, port: VXLAN_PORT, subnet: '10.247.0' });
    const bare = floor.path;
    const runs: Record<'underlay' | 'floor' | 'overlay', IperfResult[]> = { underlay: [], floor: [], overlay: [] };
    for (let i = 0; i < ROUNDS; i++) {
      runs.underlay.push(iperfRun(B.ns.path, A.ns.path, B.address, 5201));
      runs.floor.push(iperfRun(bare.server, bare.client, bare.address, 5204));
      runs.overlay.push(iperfRun(B.pin('b1'), A.pin('a1'), b1, 5202));
    }
    const [underlay, floorBps, overlay] = [runs.underlay, runs.floor, runs.overlay].map((rs) => rs.map((r) => r.bps)) as [number[], number[], number[]];
    // CPU per GB as the inverse ratio (> 1: the first needs less CPU per byte), the same way round as throughput
    const cpu = (x: IperfResult[], y: IperfResult[]) => `CPU per GB: ${median(x.map((r, i) => y[i]!.cpuPerGB / r.cpuPerGB)).toFixed(2)}×`;
    const u = median(underlay);
    const o = median(overlay);
    const fl = median(floorBps);
    const ratio = (x: number[], y: number[]) => median(x.map((v, i) => v / y[i]!));
    const brnf = spawnSync('nsenter', [`--net=${A.ns.path}`, 'cat', '/proc/sys/net/bridge/bridge-nf-call-iptables'], { encoding: 'utf8' }).stdout.trim();
    report.add({ name: 'host A → host B, underlay addresses', value: u / 1e9, unit: 'Gb/s' });
    report.add({ name: 'container on A → container on B, overlay', value: o / 1e9, unit: 'Gb/s', note: 'container MTU 1450 over a 1500 underlay' });
    report.add({ name: 'the floor: bare VXLAN + bridge in the same hosts', value: fl / 1e9, unit: 'Gb/s', note: 'configured as tsrun configures its own' });
    report.add({ name: 'overlay / underlay', value: ratio(overlay, underlay), unit: '×', target: '≥ 0.9', note: `the kernel floor below; ${cpu(runs.overlay, runs.underlay)}` });
    report.add({ name: 'the kernel floor: bare VXLAN / underlay', value: ratio(floorBps, underlay), unit: '×', note: cpu(runs.floor, runs.underlay) });
    report.add({ name: 'tsrun overlay / the floor', value: ratio(overlay, floorBps), unit: '×', target: '≥ 0.9', note: `${cpu(runs.overlay, runs.floor)}; bridge-nf-call-iptables=${brnf || '?'} in the hosts` });

    report.section(`overlay: time from tsrun run on host B until host A's container reaches it (median of ${REACH_RUNS})`);
    const total: number[] = [];
    const programmed: number[] = [];
    for (let i = 0; i < REACH_RUNS; i++) {
      const r = await timeToReach(A, B, `reach${i}`, bundle.dir);
      total.push(r.reachMs);
      programmed.push(r.programmedMs);
      await B.stopContainer(`reach${i}`);
    }
    report.add({ name: 'tsrun run on B → entries programmed on A', value: median(programmed), unit: 'ms' });
    report.add({ name: 'tsrun run on B → first ping from A\'s container answered', value: median(total), unit: 'ms' });
  } finally {
    floor?.destroy();
    await cluster.destroy();
    bundle.cleanup();
  }
}

function waitPing(h: OverlayHost, id: string, ip: string, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) if (h.ping(id, ip, 1, 1)) return true;
  return false;
}

/** Starts a container on B and measures until A has its entries and until a1's ping succeeds. */
async function timeToReach(A: OverlayHost, B: OverlayHost, id: string, bundle: string): Promise<{ programmedMs: number; reachMs: number }> {
  const started = performance.now();
  B.spawnContainer(id, 'ov', bundle);
  const pidFile = path.join(B.sandbox.root, 'run', 'containers', id, 'pid');
  let ip: string | undefined;
  let programmedMs: number | undefined;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (ip === undefined && existsSync(B.pin(id))) ip = B.containerIp(id);
    if (ip !== undefined && programmedMs === undefined && A.neighbours(DEV).some((n) => n.ip === ip)) programmedMs = performance.now() - started;
    if (programmedMs !== undefined && A.inContainer('a1', BUSYBOX, ['ping', '-c', '1', '-W', '1', ip!]).status === 0) {
      return { programmedMs, reachMs: performance.now() - started };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`a1 never reached ${id} (pid file ${existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : 'absent'})`);
}
