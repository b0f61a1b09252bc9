// DNS: tsrun's resolver against aardvark-dns 1.4 (podman's), configured the same way and measured
// in the same run with dnsperf from a container's namespace:
//  - queries per second and latency percentiles for container names and for forwarded names (to
//    a local dnsmasq both forward to): target tsrun ≥ aardvark on QPS, ≤ on p99
//  - queries lost while containers come and go (tsrun: attach/detach, each a reload; aardvark: its
//    config file rewritten and SIGHUP, as netavark does): target 0 for tsrun
//  - resident memory of each server with 1 and 200 containers
// Both serve the same records on the same gateway address (tsrun on port 53, aardvark on 5533).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Report, TSRUN, benchEnv, median } from '../lib.js';
import { resolveSettings } from '../../config/settings.js';
import { createLogger } from '../../runtime/log.js';
import { openEngine } from '../../runtime/context.js';
import { createPinnedNetns, deletePinnedNetns } from '../../runtime/netns/netns.js';

const AARDVARK = '/usr/lib/podman/aardvark-dns';
const AARDVARK_PORT = 5533;
const NETWORK = 'bdns';
const GATEWAY = '10.240.0.1';
const CONTAINERS = 200;
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 3);
const RELOADS = 20;

interface Perf {
  qps: number;
  lost: number;
  sent: number;
  latenciesMs: number[];
}

export async function dnsSuite(report: Report, runs: number): Promise<void> {
  report.section(`dns: tsrun resolver vs aardvark-dns 1.4, dnsperf from a container namespace (${SECONDS} s per run)`);
  for (const [bin, pkg] of [['/usr/bin/dnsperf', 'dnsperf'], [AARDVARK, 'aardvark-dns'], ['/usr/sbin/dnsmasq', 'dnsmasq-base']] as const) {
    if (!existsSync(bin)) {
      console.log(`skipped: ${bin} is missing (npm run setup installs ${pkg})`);
      return;
    }
  }
  const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-dns-'));
  const resolvConf = path.join(root, 'host-resolv.conf');
  writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
  const env = benchEnv({ TSRUN_ROOT: root, TSRUN_RESOLV_CONF: resolvConf });
  const settings = resolveSettings(env);
  const log = createLogger({ file: settings.logFile, level: 'warn', debug: false });
  const aardDir = path.join(root, 'aardvark');
  mkdirSync(aardDir);
  const stops: (() => void)[] = [];
  const pins: string[] = [];
  const handle = await openEngine(settings, log);
  try {
    // the upstream both forward to: dnsmasq on this namespace's loopback
    const dnsmasqPid = path.join(root, 'dnsmasq.pid');
    must(spawnSync('dnsmasq', ['--conf-file=/dev/null', '--listen-address=127.0.0.1', '--bind-interfaces', '--port=53', '--no-resolv', '--no-hosts', '--address=/example.test/203.0.113.7', '--user=root', `--pid-file=${dnsmasqPid}`]), 'dnsmasq');
    stops.push(() => killPidFile(dnsmasqPid));
    must(spawnSync(TSRUN, ['network', 'create', NETWORK, '--subnet', '10.240.0.0/16'], { env }), 'network create');

    const entries: { id: string; ip: string; alias: string }[] = [];
    const attach = async (id: string, alias: string) => {
      const pin = path.join(settings.runDir, 'netns', id);
      createPinnedNetns(pin);
      pins.push(pin);
      const rec = await handle.engine.attach({ containerId: id, netnsPath: pin, network: NETWORK, ports: [], aliases: [alias] });
      entries.push({ id, ip: rec.ipv4!.address, alias });
      return pin;
    };
    const client = await attach('client', 'client');
    const writeAardvark = (list = entries) =>
      writeFileSync(path.join(aardDir, NETWORK), `${GATEWAY}\n${list.map((e) => `${e.id} ${e.ip}  ${e.id},${e.alias}`).join('\n')}\n`);
    writeAardvark();
    // aardvark reads /etc/resolv.conf: give it ours in a mount namespace of its own. It forks
    // into the background and writes aardvark.pid when it serves.
    must(spawnSync('unshare', ['-m', 'sh', '-c', `mount --bind ${resolvConf} /etc/resolv.conf && exec ${AARDVARK} --config ${aardDir} -p ${AARDVARK_PORT} run`], { stdio: ['ignore', 'ignore', 'pipe'] }), 'aardvark-dns');
    const aardPid = Number(readFileSync(path.join(aardDir, 'aardvark.pid'), 'utf8'));
    stops.push(() => process.kill(aardPid, 'SIGTERM'));
    const tsrunPid = () => (JSON.parse(readFileSync(path.join(settings.runDir, 'dns', 'resolver.pid'), 'utf8')) as { pid: number }).pid;

    const qfile = (name: string, lines: string[]) => {
      const f = path.join(root, name);
      writeFileSync(f, `${lines.join('\n')}\n`);
      return f;
    };
    const perf = (port: number, file: string, extra: string[] = []) => dnsperf(client, port, file, extra);
    const warm = qfile('warm', ['client A']);
    perf(53, warm, ['-l', '1']);
    perf(AARDVARK_PORT, warm, ['-l', '1']);
    const rss1 = { tsrun: rssKb(tsrunPid()), aardvark: rssKb(aardPid), tsrunAnon: rssKb(tsrunPid(), 'RssAnon'), aardvarkAnon: rssKb(aardPid, 'RssAnon') };

    for (let i = 1; i < CONTAINERS; i++) await attach(`c${i}`, `svc${i}`);
    writeAardvark();
    process.kill(aardPid, 'SIGHUP');
    await sleep(500);

    const names = qfile('names', entries.slice(1).map((e) => `${e.alias} A`));
    const forwarded = qfile('forwarded', Array.from({ length: 200 }, (_, i) => `n${i}.example.test A`));
    const n = Math.max(1, Math.min(runs, 3));
    for (const [label, file] of [['container names', names], ['forwarded names (to dnsmasq on loopback)', forwarded]] as const) {
      const qps: Record<string, number[]> = { tsrun: [], aardvark: [] };
      const lat: Record<string, number[]> = { tsrun: [], aardvark: [] };
      for (let i = 0; i < n; i++) {
        qps.tsrun!.push(perf(53, file).qps);
        qps.aardvark!.push(perf(AARDVARK_PORT, file).qps);
        // latency at a fixed, moderate rate: the servers' own time, not queueing in dnsperf
        lat.tsrun!.push(...perf(53, file, ['-Q', '1000', '-v']).latenciesMs);
        lat.aardvark!.push(...perf(AARDVARK_PORT, file, ['-Q', '1000', '-v']).latenciesMs);
      }
      report.section(`dns: ${label}, ${CONTAINERS} containers (median of ${n} runs; latency at 1000 queries/s)`);
      const t = median(qps.tsrun!);
      const a = median(qps.aardvark!);
      report.add({ name: 'tsrun resolver, queries per second', value: t, unit: 'q/s' });
      report.add({ name: 'aardvark-dns 1.4, queries per second', value: a, unit: 'q/s' });
      report.add({ name: 'QPS tsrun / aardvark', value: t / a, unit: '×', target: '≥ 1' });
      for (const p of [50, 90, 99]) {
        report.add({ name: `p${p} latency tsrun`, value: percentile(lat.tsrun!, p), unit: 'ms' });
        report.add({ name: `p${p} latency aardvark`, value: percentile(lat.aardvark!, p), unit: 'ms' });
      }
      report.add({ name: 'p99 tsrun / aardvark', value: percentile(lat.tsrun!, 99) / percentile(lat.aardvark!, 99), unit: '×', target: '≤ 1' });
    }

    // Reloads under a steady load: queries lost while containers come and go.
    report.section(`dns: queries lost during ${RELOADS} container arrivals and departures (dnsperf at 2000 q/s, 2 s timeout)`);
    const lostT = await underLoad(client, 53, names, async () => {
      for (let i = 0; i < RELOADS; i++) {
        const pin = await attach(`r${i}`, `rel${i}`);
        await handle.engine.detach(`r${i}`);
        deletePinnedNetns(pin);
        entries.pop();
      }
    });
    const lostA = await underLoad(client, AARDVARK_PORT, names, async () => {
      for (let i = 0; i < RELOADS; i++) {
        writeAardvark([...entries, { id: `r${i}`, ip: `10.240.250.${i + 1}`, alias: `rel${i}` }]);
        process.kill(aardPid, 'SIGHUP');
        await sleep(60);
        writeAardvark();
        process.kill(aardPid, 'SIGHUP');
        await sleep(60);
      }
    });
    report.add({ name: 'tsrun resolver, queries lost', value: lostT.lost, unit: 'q', target: '≤ 0', note: `of ${lostT.sent}` });
    report.add({ name: 'aardvark-dns 1.4, queries lost', value: lostA.lost, unit: 'q', note: `of ${lostA.sent}` });

    report.section('dns: resident memory of the server');
    report.add({ name: 'tsrun resolver, 1 container', value: rss1.tsrun / 1024, unit: 'MiB' });
    report.add({ name: 'aardvark-dns 1.4, 1 container', value: rss1.aardvark / 1024, unit: 'MiB' });
    report.add({ name: `tsrun resolver, ${CONTAINERS} containers`, value: rssKb(tsrunPid()) / 1024, unit: 'MiB' });
    report.add({ name: `aardvark-dns 1.4, ${CONTAINERS} containers`, value: rssKb(aardPid) / 1024, unit: 'MiB' });
    // A Node process's resident set is mostly the node binary's pages (~34 MiB for an empty
    // process), shared with every other Node process on the host; its private part (RssAnon:
    // heap, JIT code, buffers) is what the resolver adds.
    report.section('dns: private (anonymous) resident memory of the server');
    report.add({ name: 'tsrun resolver, 1 container', value: rss1.tsrunAnon / 1024, unit: 'MiB' });
    report.add({ name: 'aardvark-dns 1.4, 1 container', value: rss1.aardvarkAnon / 1024, unit: 'MiB' });
    report.add({ name: `tsrun resolver, ${CONTAINERS} containers`, value: rssKb(tsrunPid(), 'RssAnon') / 1024, unit: 'MiB' });
    report.add({ name: `aardvark-dns 1.4, ${CONTAINERS} containers`, value: rssKb(aardPid, 'RssAnon') / 1024, unit: 'MiB' });
  } finally {
    for (const stop of stops) {
      try {
        stop();
      } catch {
        // gone
      }
    }
    for (const e of ['client', ...Array.from({ length: CONTAINERS }, (_, i) => `c${i}`)]) await handle.engine.detach(e).catch(() => 0);
    for (const p of pins) deletePinnedNetns(p);
    spawnSync(TSRUN, ['network', 'rm', '-f', NETWORK], { env });
    await handle.close();
    await sleep(2500); // the resolver exits once no endpoint needs it
    rmSync(root, { recursive: true, force: true });
  }
}

function dnsperf(clientNetns: string, port: number, file: string, extra: string[] = []): Perf {
  const args = ['--net=' + clientNetns, '--', 'dnsperf', '-s', GATEWAY, '-p', String(port), '-d', file, '-l', String(SECONDS), '-t', '2', ...extra];
  const r = spawnSync('nsenter', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`dnsperf: ${r.stderr}`);
  return parsePerf(r.stdout);
}

/** Runs dnsperf at 2000 q/s while `churn` runs, and reports what it lost. */
async function underLoad(clientNetns: string, port: number, file: string, churn: () => Promise<void>): Promise<Perf> {
  const seconds = 8;
  const child = spawn('nsenter', ['--net=' + clientNetns, '--', 'dnsperf', '-s', GATEWAY, '-p', String(port), '-d', file, '-l', String(seconds), '-Q', '2000', '-t', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise((r) => child.once('exit', r));
  await sleep(500);
  await churn();
  await done;
  return parsePerf(out);
}

export function parsePerf(text: string): Perf {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const latenciesMs: number[] = [];
  for (const m of text.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)) latenciesMs.push(Number(m[1]) * 1000);
  return { qps: num(/Queries per second:\s+([\d.]+)/), lost: num(/Queries lost:\s+(\d+)/), sent: num(/Queries sent:\s+(\d+)/), latenciesMs };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** A resident-memory figure of /proc/PID/status in KiB: VmRSS (all of it) or RssAnon (private). */
function rssKb(pid: number, field: 'VmRSS' | 'RssAnon' = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

function killPidFile(file: string): void {
  try {
    process.kill(Number(readFileSync(file, 'utf8')), 'SIGTERM');
  } catch {
    // gone
  }
}

function must(r: ReturnType<typeof spawnSync>, what: string): void {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${r.stderr?.toString().trim()}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
