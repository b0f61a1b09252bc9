// Forgetting a detached endpoint's flows. Conntrack keeps a UDP "flow" alive as long as packets
// keep coming, and with it the DNAT decision made for its first packet: a client sending to a
// published port keeps reaching the removed container's old address, even after another
// container publishes the port (the CNI portmap plugin learned this the hard way). So detach
// deletes every entry whose original or reply side names the endpoint's addresses: flows it
// started (orig src), flows to it (orig dst), DNATed flows to its published ports (reply src)
// and masqueraded ones (reply dst).
//
// In-process over ctnetlink, no process spawned: one NETLINK_NETFILTER socket opened inside the
// host namespace, one dump (both address families), the matching done here, one delete per match. The
// kernel has no delete-by-address (only by tuple), which is what the conntrack tool does too.
// Any failure (no ctnetlink in this kernel, no permission) is a warning: flows also expire.
//
// The dump is the expensive part, and its cost does not depend on how many entries there are: the
// kernel walks every bucket of the conntrack hash, which all namespaces share and which is sized
// for the whole machine (262144 buckets here: 23-36 ms for a dump that returns nothing). So the
// namespace's own entry count is asked first (IPCTNL_MSG_CT_GET_STATS, one small request): when
// it is 0 there is no flow to forget, and the walk is skipped. That answer is as good as the
// dump's: a dump also only sees the flows that exist while it runs.
import { AF_UNSPEC } from './netlink/codec.js';
import { IPCTNL_MSG, ctDeleteBody, ctDumpBody, ctMsgType, ctStatsBody, isUdpTo, namesAddress, parseCtEntry, parseCtEntryCount, type CtEntry } from './netlink/ctnl.js';
import { parseIp } from './netlink/addr.js';
import { NetlinkRefusal } from './netlink/refusal.js';
import { SyncNlSocket, type NlTransport } from './netlink/sync-socket.js';
import { withNetnsSync } from './netns/netns.js';
import { NETLINK_NETFILTER } from './netns/sys.js';
import type { Logger } from './log.js';
import type { PortMapping } from '../config/ports.js';

const ENOENT = 2;

/** Deletes the conntrack entries of `addresses` in the namespace `netns` (undefined: this one). */
export async function forgetFlows(addresses: string[], log: Logger, netns?: string): Promise<void> {
  if (addresses.length === 0) return;
  const ips = addresses.map(parseIp);
  const families = [...new Set(ips.map((ip) => ip.family))];
  const bytes = ips.map((ip) => ip.bytes);
  await forget(families.length === 1 ? families[0]! : AF_UNSPEC, (e) => namesAddress(e, bytes), log, netns);
}

/** More UDP ports than this in one attach: their old flows are left to expire. */
const MAX_PORT_FLUSHES = 32;

/**
 * At attach: deletes the flows to the host ports just published over UDP. A client that kept
 * sending while the port had no container has a flow that was NOT DNATed (nothing matched then),
 * and conntrack would keep it that way as long as the client keeps sending.
 */
export async function forgetPortFlows(ports: PortMapping[], log: Logger, netns?: string): Promise<void> {
  const udp = ports.filter((p) => p.protocol === 'udp');
  if (udp.length === 0 || udp.length > MAX_PORT_FLUSHES) return;
  const matchers = udp.map((p) => {
    const ip = p.hostIp ? parseIp(p.hostIp) : undefined;
    return { family: ip?.family, match: (e: CtEntry) => isUdpTo(e, p.hostPort, ip?.bytes) };
  });
  // A port published on every address: its flows of both families.
  const families = new Set(matchers.map((m) => m.family));
  const family = families.size === 1 && !families.has(undefined) ? [...families][0]! : AF_UNSPEC;
  await forget(family, (e) => matchers.some((m) => (m.family === undefined || m.family === e.family) && m.match(e)), log, netns);
}

/** One dump of `family` (AF_UNSPEC: both), then a delete for every entry that `match`es. */
async function forget(family: number, match: (e: CtEntry) => boolean, log: Logger, netns?: string): Promise<void> {
  let sock: NlTransport;
  try {
    sock = netns === undefined ? open() : withNetnsSync(netns, open);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot open a conntrack netlink socket: stale flows are left to expire');
    return;
  }
  try {
    if ((await entryCount(sock)) === 0) {
      log.debug({ deleted: 0 }, 'no conntrack entries in the namespace: nothing to forget');
      return;
    }
    const messages = await sock.dump(ctMsgType(IPCTNL_MSG.GET), 0, ctDumpBody(family));
    const doomed = messages.map((m) => parseCtEntry(m.data)).filter((e): e is CtEntry => e !== undefined && match(e));
    await Promise.all(
      doomed.map((e) =>
        sock.request(ctMsgType(IPCTNL_MSG.DELETE), 0, ctDeleteBody(e)).catch((err: unknown) => {
          // ENOENT: the entry expired or was deleted by someone else since the dump.
          if (!(err instanceof NetlinkRefusal && err.errno === ENOENT)) log.debug({ err: (err as Error).message }, 'conntrack delete failed');
        }),
      ),
    );
    log.debug({ deleted: doomed.length }, 'conntrack flows forgotten');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot list conntrack flows: stale flows are left to expire');
  } finally {
    sock.close();
  }
}

/** The namespace's conntrack entry count; undefined when the kernel does not say (then: dump). */
async function entryCount(sock: NlTransport): Promise<number | undefined> {
  try {
    const replies = await sock.request(ctMsgType(IPCTNL_MSG.GET_STATS), 0, ctStatsBody());
    for (const m of replies) {
      const n = parseCtEntryCount(m.data);
      if (n !== undefined) return n;
    }
  } catch {
    // an old kernel without the request: the dump decides
  }
  return undefined;
}

// Synchronous, as Rtnl's (netlink/sync-socket.ts): ctnetlink answers inside sendmsg too, and a
// dump's next part is queued by the recv that empties the queue.
const open = (): NlTransport => new SyncNlSocket(undefined, NETLINK_NETFILTER);
