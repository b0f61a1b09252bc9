// The `bandwidth` capability applied by tsrun itself: a token bucket (tc tbf) on each side of the
// veth. Traffic into the container is shaped where it leaves the host (the host end), traffic out
// of it where it leaves the container (its own interface), so no ifb device is needed. Only for
// drivers with a host end (bridge, overlay); for macvlan/ipvlan leave bandwidth to the chained
// reference plugin. Both qdiscs go with their interfaces at DEL.
import { execa } from 'execa';
import { SystemError } from '../config/errors.js';
import type { Logger } from '../runtime/log.js';
import type { EndpointRecord } from '../runtime/records.js';
import { resolveBinary } from '../runtime/binaries.js';
import type { Bandwidth } from './config.js';
import { CODES, CniError } from './protocol.js';

/** tc's arguments for one direction: rate in bits/s, burst in bits (CNI's units) → bytes. */
export function tbfArgs(dev: string, rate: number, burstBits: number): string[] {
  const burst = Math.max(Math.ceil(burstBits / 8), 1600);
  return ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rate}bit`, 'burst', String(burst), 'latency', '25ms'];
}

export async function applyBandwidth(rec: EndpointRecord, netns: string, bw: Bandwidth, log: Logger): Promise<void> {
  if (!rec.hostIfname) {
    throw new CniError(CODES.unsupportedField, `unsupported field: runtimeConfig.bandwidth on a ${rec.driver} network: tsrun shapes veth pairs only; chain the bandwidth plugin instead`);
  }
  const tc = resolveBinary('tc');
  const run = async (args: string[], inContainer: boolean) => {
    const [file, argv] = inContainer ? [resolveBinary('nsenter'), [`--net=${netns}`, tc, ...args]] : [tc, args];
    const r = await execa(file, argv, { stdin: 'ignore', reject: false, timeout: 30_000 });
    if (r.exitCode !== 0) throw new SystemError(`tc ${args.join(' ')}`, new Error(String(r.stderr).trim() || `exit ${r.exitCode}`));
  };
  if (bw.ingressRate) await run(tbfArgs(rec.hostIfname, bw.ingressRate, bw.ingressBurst!), false);
  if (bw.egressRate) await run(tbfArgs(rec.ifname, bw.egressRate, bw.egressBurst!), true);
  log.info({ bandwidth: bw }, 'bandwidth limits applied');
}
