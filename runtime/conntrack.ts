// Forgetting a detached endpoint's flows. Conntrack keeps a UDP "flow" alive as long as packets
// keep coming, and with it the DNAT decision made for its first packet: a client sending to a
// published port keeps reaching the removed container's old address, even after another
// container publishes the port (the CNI portmap plugin learned this the hard way). So detach
// deletes every entry whose original or reply side names the endpoint's addresses: flows it
// started (orig src), flows to it (orig dst), DNATed flows to its published ports (reply src)
// and masqueraded ones (reply dst). Uses the conntrack tool (Debian: conntrack); without it the
// step is skipped with a warning, since flows also expire on their own.
import { execFile } from 'node:child_process';
import { resolveBinary } from './binaries.js';
import type { Logger } from './log.js';
import type { PortMapping } from '../config/ports.js';

const SIDES = ['--orig-src', '--orig-dst', '--reply-src', '--reply-dst'] as const;

/** Deletes the conntrack entries of `addresses` in the namespace `netns` (undefined: this one). */
export async function forgetFlows(addresses: string[], log: Logger, netns?: string): Promise<void> {
  if (addresses.length === 0) return;
  const conntrack = find(log);
  if (!conntrack) return;
  await run(addresses.flatMap((a) => SIDES.map((side) => [conntrack, '-D', '-f', a.includes(':') ? 'ipv6' : 'ipv4', side, a])), log, netns);
}

/** More UDP ports than this in one attach: their old flows are left to expire (one exec each). */
const MAX_PORT_FLUSHES = 32;

/**
 * At attach: deletes the flows to the host ports just published over UDP. A client that kept
 * sending while the port had no container has a flow that was NOT DNATed (nothing matched then),
 * and conntrack would keep it that way as long as the client keeps sending.
 */
export async function forgetPortFlows(ports: PortMapping[], log: Logger): Promise<void> {
  const udp = ports.filter((p) => p.protocol === 'udp');
  if (udp.length === 0 || udp.length > MAX_PORT_FLUSHES) return;
  const conntrack = find(log);
  if (!conntrack) return;
  await run(udp.map((p) => [conntrack, '-D', '-p', 'udp', '--orig-port-dst', String(p.hostPort), ...(p.hostIp ? ['-f', p.hostIp.includes(':') ? 'ipv6' : 'ipv4', '--orig-dst', p.hostIp] : [])]), log);
}

function find(log: Logger): string | undefined {
  try {
    return resolveBinary('conntrack');
  } catch {
    log.warn('conntrack tool not found: stale flows are left to expire');
    return undefined;
  }
}

async function run(runs: string[][], log: Logger, netns?: string): Promise<void> {
  await Promise.all(
    runs.map(
      (argv) =>
        new Promise<void>((resolve) => {
          const [file, args] = netns === undefined ? [argv[0]!, argv.slice(1)] : [resolveBinary('nsenter'), [`--net=${netns}`, ...argv]];
          // Exit 1 with "0 flow entries have been deleted" is the usual, harmless outcome.
          execFile(file, args, { timeout: 10_000, env: { LC_ALL: 'C' } }, (err, _out, stderr) => {
            if (err && !/0 flow entries/.test(String(stderr))) log.debug({ args, stderr: String(stderr).trim() }, 'conntrack -D failed');
            resolve();
          });
        }),
    ),
  );
}
