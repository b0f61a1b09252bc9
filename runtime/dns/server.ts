// The resolver: one process per host (per state root and network namespace), serving every
// network whose containers use it, on the network's gateway addresses, port 53, UDP and TCP.
//
// Its records are the Store's endpoint records, read whole when it starts (and every 10 s, and when
// the networks change): a resolver that crashed and was restarted knows everything its predecessor
// knew. A reload that names its containers re-reads only theirs (endpoint-cache.ts). A reload
// builds a new table and swaps it in; sockets of networks that stay are never closed, so no query
// is lost while containers come and go (aardvark-dns#389). Sockets open for networks that appear and close for
// networks that are gone.
//
// Changes reach it through its control socket, a unix socket file in the state root's dns/ (0700;
// paths.ts: controlAddress). tsrun asks for a reload after every attach and detach and waits for "ok", so when
// `tsrun run` starts a container its name already resolves, and when it returns after a removal
// the name is gone. Watching the state root instead (inotify) would need a recursive watch over
// the store's directories, would not work for the etcd store, and could not tell the writer when
// the change was live. The resolver's lock is a record lock on dns/resolver.lock, held for its
// life: the kernel drops it when that process dies, so there is no stale holder to recognize (the
// abstract socket name was the lock before session 7, but any local user could bind it first).
// The pidfile beside it is for gc and for people, with the start time so a recycled pid is not
// taken for the resolver.
import dgram from 'node:dgram';
import net from 'node:net';
import { closeSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import ipaddr from 'ipaddr.js';
import type { Settings } from '../../config/settings.js';
import { parseResolvConf, parseUpstream } from '../../config/resolv-conf.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { isContainerId } from '../../config/ids.js';
import { EndpointCache } from './endpoint-cache.js';
import type { EndpointRecord } from '../records.js';
import { processStartTime } from '../containers.js';
import { DnsTable, keptListeners, listenerBridges, normalizeIp, type Lookup, type RemoteEndpoint } from './table.js';
import { clusterOf } from '../store/scoped.js';
import { ENDPOINTS_PREFIX, parseOverlayEndpoint } from '../overlay/keys.js';
import { FairCap } from './fair-cap.js';
import { Forwarder, capUnderLimit, literalLookup, type Upstream } from './forward.js';
import { fastAnswer, parseSimpleQuery, questionEnd } from './wire.js';
import { controlAddress, pidfilePath, readResolverPid, resolverLockPath } from './paths.js';
import { F_WRLCK, libcRecordLocks } from '../host-lock.js';
import { mkdirPrivate, removeFile, writeFileReplacing } from '../files.js';
import { BatchUdpSocket } from './udp-batch.js';
import { AnswerCache } from './answer-cache.js';
import { ErrnoError } from '../netns/errno.js';

/** With no endpoint left, the resolver waits this long for a new one before it exits. */
export const IDLE_EXIT_MS = 2000;
/** A reload every so often catches a change whose notification was lost (a killed tsrun). */
const RESYNC_MS = 10_000;
const BIND_RETRY_MS = 250;
/** How long a new resolver waits for an older tsrun's to let go of port 53 (retirePredecessor);
 * past it, its binds retry as for an address not there yet. */
const RETIRE_TIMEOUT_MS = 5000;
/** A full garbage collection this long after the last reload (see collectSoon). */
const GC_AFTER_RELOAD_MS = 1000;
const TTL = 0;

/** Answers cached per listening address: queries up to this size, this many at most. */
const MAX_CACHED_QUERY = 300;
const MAX_CACHED_ANSWERS = 8192;
/** Socket buffers of a listening UDP socket (the kernel caps them at its rmem/wmem_max). */
const UDP_BUFFER_BYTES = 4 << 20;

/** A client TCP connection is not read while more than this many bytes of its answers wait to
 * be sent, or this many of its queries are being answered (onTcp). */
const TCP_WRITE_HIGH = 64 * 1024;
const TCP_PENDING_MAX = 256;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** A cached outcome: forward the query, to these servers of the container's own (--dns), or
 * (undefined) to the host's as they are when the query comes. */
class ForwardTo {
  constructor(readonly own: string[] | undefined) {}
}
const FORWARD_TO_HOST = new ForwardTo(undefined);

/** What the table says about a query (the answer's bytes, or where to forward it), by client
 * and query bytes, valid for one table generation (answer-cache.ts). */
type Answers = AnswerCache<Buffer | ForwardTo>;

/** What answers go out through: the batched socket (udp-batch.ts) or node:dgram's. */
interface UdpOut {
  send(msg: Buffer, port: number, address: string): void;
  /** `done` once the port is free (at once for the batched socket: close(2) frees it). */
  close(done?: () => void): void;
}

/** The source of one datagram (node:dgram's rinfo has these and more). */
interface Peer {
  address: string;
  port: number;
}

interface Listener {
  address: string;
  udp: UdpOut;
  tcp: net.Server;
}

/** How the resolver reads and answers UDP: 'batch' (recvmmsg/sendmmsg, udp-batch.ts; node:dgram
 * when libc cannot be reached) or 'dgram' (node:dgram only; TSRUN_RESOLVER_UDP=dgram). */
export type UdpMode = 'batch' | 'dgram';

export interface ResolverStats {
  pid: number;
  generation: number;
  endpoints: number;
  listening: string[];
  queries: number;
  answered: number;
  forwarded: number;
  servfail: number;
  malformed: number;
  rssBytes: number;
  /** V8's heap (used, reserved) and memory held outside it (Buffers): what of rssBytes is ours
   * and not the node binary's shared pages. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

export class Resolver {
  private table = new DnsTable([], []);
  private readonly listeners = new Map<string, Listener>();
  private readonly pendingBinds = new Map<string, NodeJS.Timeout>();
  private readonly forwarder = new Forwarder();
  /** Client TCP connections: at most 32 per client, 256 overall (or an eighth of the open-file
   * limit); a newcomer under its fair share closes the busiest client's oldest connection. */
  private readonly tcpClients = new FairCap<net.Socket>(capUnderLimit(256, 1 / 8), 32, (c) => c.destroy());
  /** A container's own upstreams (--dns), parsed once per table (the table's arrays are the keys). */
  private readonly ownUpstreams = new WeakMap<string[], Upstream[]>();
  private readonly forwardTos = new WeakMap<string[], ForwardTo>();
  /** Clients' addresses as the answer caches key them (node:dgram gives them as text). */
  private readonly clientKeys = new Map<string, Buffer>();
  private control?: net.Server;
  /** The record lock's file while this resolver holds it. */
  private lockFd?: number;
  private hostUpstreams: Upstream[] = [];
  private resolvConfCheckedAt = 0;
  private resolvConfMtime = 0;
  private generation = 0;
  private reloading?: Promise<void>;
  /** What the next round of the reload loop reads: everything, or these containers' records. */
  private pendingFull = false;
  private readonly pendingContainers = new Set<string>();
  private readonly cache: EndpointCache;
  private remote: RemoteEndpoint[] = [];
  /** The table is what the cache, `remote` and `hostAddrs` describe (a reload completed: built
   * from them, or changed in place for the containers the cache re-read). */
  private tableMatchesCache = false;
  /** tableInputs at the last full read, while no change was made in place since (saves computing
   * it again from the cache at the next one). */
  private builtFrom: string | undefined;
  private hostAddrs = new Set<string>();
  private idleTimer?: NodeJS.Timeout;
  private gcTimer?: NodeJS.Timeout;
  private collectAfterReload = false;
  private resyncTimer?: NodeJS.Timeout;
  private stopping = false;
  private stopWatch?: () => Promise<void>;
  private stopped!: () => void;
  readonly done = new Promise<void>((r) => (this.stopped = r));
  private readonly stats = { queries: 0, answered: 0, forwarded: 0, servfail: 0, malformed: 0 };

  private udpMode: UdpMode;

  constructor(private readonly settings: Settings, private readonly store: Store, private readonly log: Logger, opts: { udp?: UdpMode } = {}) {
    this.cache = new EndpointCache(store);
    this.udpMode = opts.udp ?? 'batch';
  }

  /** Binds the control socket (false: another resolver holds it), loads the table, listens. */
  async start(): Promise<boolean> {
    const address = controlAddress(this.settings.runDir);
    if (!address.startsWith('\0')) {
      // A socket file in a directory only root can enter (paths.ts says why). Which resolver may
      // bind it is the record lock's to say (the lock the abstract name was): one that died left
      // its file behind, and only the next holder of the lock removes it.
      mkdirPrivate(path.dirname(address));
      if (!this.takeLock()) return false;
      removeFile(address);
    }
    const control = net.createServer((c) => this.onControl(c));
    const bound = await new Promise<boolean>((resolve) => {
      control.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRINUSE' ? false : (this.log.error({ err: e }, 'control socket'), false)));
      control.listen(address, () => resolve(true));
    });
    if (!bound) {
      this.releaseLock();
      return false;
    }
    this.control = control;
    control.on('error', (e) => this.log.warn({ err: e }, 'control socket error'));
    if (this.lockFd !== undefined) await this.retirePredecessor();
    const pidfile = pidfilePath(this.settings.runDir);
    try {
      mkdirPrivate(path.dirname(pidfile));
      // Temp then rename: a reader (gc, the next command) never sees a half-written pidfile. The
      // temporary goes when its write fails: on a full run directory every start that failed here
      // (several per attach, each retried) left one, never removed.
      writeFileReplacing(pidfile, `${JSON.stringify({ pid: process.pid, start: processStartTime(process.pid), runDir: this.settings.runDir, started: new Date().toISOString() })}\n`, 0o644);
    } catch (err) {
      // Nothing left of this start: the control socket (its file goes with it) and the lock.
      await new Promise<void>((r) => control.close(() => r()));
      this.control = undefined;
      this.releaseLock();
      throw new Error(`write its pidfile ${pidfile}: ${(err as Error).message}`);
    }
    await this.reload().catch(() => {});
    await this.watchCluster();
    this.resyncTimer = setInterval(() => {
      // The state root removed under us (a sandbox torn down): nothing left to serve.
      if (!existsSync(this.settings.runDir)) return void this.stop('state root gone');
      this.reload({ periodic: true }).catch(() => {});
    }, RESYNC_MS);
    this.log.info({ listening: this.listenAddresses() }, 'resolver started');
    return true;
  }

  /**
   * A resolver of a tsrun from before session 7 still running after an upgrade: its control
   * socket is the abstract name and it holds no record lock, so this one took the lock, but the
   * old one keeps port 53 on every gateway (this one's binds would retry for ever) and hears no
   * reload (clients now knock on the socket file): its table would go stale, refreshed only by
   * its 10 s re-read, and it never exits while containers run. The pidfile (root's 0700
   * directory; pid and start time) names it; a live process named there while this resolver
   * holds the lock is not a resolver of this version (one writes its pidfile only once it holds
   * the lock, and removes it before letting go). Asked to stop (SIGTERM: it closes its DNS
   * sockets first) and waited for, so this one binds port 53 at its first reload.
   */
  private async retirePredecessor(): Promise<void> {
    const old = readResolverPid(this.settings.runDir);
    if (!old || old.pid === process.pid || old.start === undefined || processStartTime(old.pid) !== old.start) return;
    this.log.warn({ pid: old.pid }, 'a resolver of an older tsrun holds the gateways: asking it to stop');
    try {
      process.kill(old.pid, 'SIGTERM');
    } catch {
      return; // gone already
    }
    const deadline = Date.now() + RETIRE_TIMEOUT_MS;
    while (Date.now() < deadline && processStartTime(old.pid) === old.start) await new Promise((r) => setTimeout(r, 20));
  }

  /** The resolver's lock (paths.ts: resolverLockPath), held until it stops; false: another holds it. */
  private takeLock(): boolean {
    const fd = libcRecordLocks.open(resolverLockPath(this.settings.runDir));
    if (libcRecordLocks.set(fd, F_WRLCK, 0)) {
      this.lockFd = fd;
      return true;
    }
    closeSync(fd);
    return false;
  }

  private releaseLock(): void {
    if (this.lockFd === undefined) return;
    closeSync(this.lockFd); // the kernel drops the process's record locks on the file
    this.lockFd = undefined;
  }

  listenAddresses(): string[] {
    return [...this.listeners.keys()];
  }

  /**
   * Re-reads the Store; concurrent callers share one reload that starts after their request.
   * `containers`: the change was made for these containers only, whose records are all that is
   * read again (see endpoint-cache.ts); otherwise everything is.
   */
  async reload(opts: { periodic?: boolean; containers?: readonly string[] } = {}): Promise<void> {
    // Only a reload someone asked for (a change) is followed by a collection: the periodic
    // re-read mostly finds nothing new, and a full collection every 10 s would be a pause in the
    // latency tail for nothing.
    if (!opts.periodic) this.collectAfterReload = true;
    if (opts.containers && opts.containers.length > 0) for (const id of opts.containers) this.pendingContainers.add(id);
    else this.pendingFull = true;
    // Already reloading: the loop below runs once more before the shared promise settles, so this
    // caller's change (written before it asked) is in the table when it hears back.
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        while (this.pendingFull || this.pendingContainers.size > 0) {
          const containers = this.pendingFull ? undefined : [...this.pendingContainers];
          this.pendingFull = false;
          this.pendingContainers.clear();
          try {
            await this.reloadOnce(containers);
          } catch (err) {
            // A store that cannot be read (a torn record, etcd away): keep serving the last table,
            // and read everything next time (what this one missed is not known).
            this.pendingFull = true;
            this.log.error({ err: (err as Error).message }, 'reload failed: serving the previous table');
            throw err;
          }
        }
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  private async reloadOnce(containers: string[] | undefined): Promise<void> {
    // Host addresses and other hosts' containers change with networks and the cluster, not with
    // this host's containers: read on a full reload only.
    let table: DnsTable | undefined;
    let unchanged = false;
    // Until this read is done, the table may not be what the cache describes (a failed read).
    const matched = this.tableMatchesCache;
    this.tableMatchesCache = false;
    const full = containers === undefined || !(await this.cache.update(containers));
    if (full) {
      // A full read that finds what the table was built from (the periodic re-read, nearly
      // always) keeps the table and its generation: a new generation empties every cached
      // answer, and at 1000 queries/s the next few hundred queries (one per name and client)
      // then took the slow path, over 1 % of a dnsperf run's queries: the p99 against aardvark-dns.
      const before = matched ? (this.builtFrom ?? tableInputs(this.cache.networksText(), this.cache.records(), this.remote, this.hostAddrs)) : undefined;
      const [, remote] = await Promise.all([this.cache.loadAll(), this.remoteEndpoints()]);
      this.remote = remote;
      this.hostAddrs = hostAddresses();
      const after = tableInputs(this.cache.networksText(), this.cache.records(), remote, this.hostAddrs);
      unchanged = before !== undefined && before === after;
      if (unchanged) table = this.table;
      this.builtFrom = after;
    } else if (containers.every((id) => this.table.replaceContainer(id, this.cache.recordsOf(id)))) {
      // Changed in place, at the cost of these containers' endpoints (replaceContainer refuses
      // all of them or none: it refuses a table with other hosts' containers).
      table = this.table;
    }
    if (!full) this.builtFrom = undefined;
    table ??= new DnsTable(this.cache.networks(), this.cache.records(), this.remote, this.hostAddrs);
    this.hostUpstreams = this.readHostUpstreams(table);
    this.table = table;
    this.tableMatchesCache = true;
    if (!unchanged) this.generation++;
    const want = new Set(table.listenAddresses());
    // Waits for the first attempt of each new address, so a container started after this reload
    // finds its resolver listening; retries go on in the background.
    await Promise.all([...want].filter((a) => !this.listeners.has(a) && !this.pendingBinds.has(a)).map((a) => this.bind(a)));
    // A network whose last container left keeps its listener while its bridge holds the gateway
    // (keptListeners): the next container's attach then binds nothing, and its detach closes
    // nothing. Looked at on every reload while the network is idle: before answering when the
    // networks changed (network rm, gc, the periodic re-read: a removed network's listener is
    // closed when they return), right after answering when one container's records did (the
    // networks are as they were; only an address taken off its bridge by hand is left to find,
    // and the detach that asked need not wait for the netlink dump that finds it).
    if (full) await this.closeIdle();
    else if ([...this.listeners.keys()].some((a) => !want.has(a))) setImmediate(() => void this.closeIdle().catch((err: Error) => this.log.warn({ err: err.message }, 'idle listener check failed')));
    for (const [a, t] of this.pendingBinds) {
      if (want.has(a)) continue;
      clearTimeout(t);
      this.pendingBinds.delete(a);
    }
    this.log.debug({ generation: this.generation, endpoints: table.endpointCount, listening: [...want] }, 'reloaded');
    if (this.collectAfterReload) {
      this.collectAfterReload = false;
      this.collectSoon();
    }
    if (table.endpointCount === 0) {
      this.idleTimer ??= setTimeout(() => void this.idleCheck(), IDLE_EXIT_MS);
    } else if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  /** Closes the listeners no network is served on any more, but those keptListeners keeps. */
  private async closeIdle(): Promise<void> {
    const idle = [...this.listeners.keys()].filter((a) => !this.table.listenAddresses().includes(a));
    if (idle.length === 0) return;
    const nets = this.cache.networks();
    const kept = keptListeners(idle, nets, await this.bridgeAddresses(listenerBridges(idle, nets).values()));
    // As the table is now: a reload during the await may serve one of them again.
    const wanted = new Set(this.table.listenAddresses());
    for (const a of idle) {
      const l = this.listeners.get(a);
      if (!l || kept.has(a) || wanted.has(a)) continue;
      l.udp.close();
      l.tcp.close();
      this.listeners.delete(a);
      this.log.info({ address: a }, 'stopped listening (network gone)');
    }
  }

  /**
   * The addresses on these bridges, by bridge name, from netlink (the bridge gone: none). Any
   * failure (netlink or libc out of reach) means none: the listener is closed, as before.
   */
  private async bridgeAddresses(bridges: Iterable<string>): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const names = [...new Set(bridges)];
    if (names.length === 0) return out;
    let rtnl: import('../netlink/rtnl.js').Rtnl | undefined;
    try {
      const { Rtnl } = await import('../netlink/rtnl.js');
      rtnl = Rtnl.open();
      const all = await rtnl.listAddresses();
      for (const name of names) {
        const link = await rtnl.getLink(name);
        out.set(name, link ? all.filter((a) => a.ifindex === link.index).map((a) => a.address) : []);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot read the bridges\' addresses: closing idle listeners');
      out.clear();
    } finally {
      rtnl?.close();
    }
    return out;
  }

  /**
   * Every reload leaves the previous table, its records and its answer caches behind: long-lived
   * objects, in the old generation, which V8 collects only when that grows past its limit (or,
   * idle for a while, by its memory reducer). Containers coming and going then grow the
   * resolver's resident memory by ~0.5 MB a reload (measured: 13 -> 33 MiB private after the
   * bench's 40 reloads under load). A full collection once the reloads have settled gives it
   * back: a few milliseconds of pause, at most once a second, only after a reload that was asked
   * for (not the periodic re-read). Needs
   * --expose-gc (resolverCommand passes it); without it, nothing happens.
   */
  private collectSoon(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) return;
    clearTimeout(this.gcTimer);
    this.gcTimer = setTimeout(() => gc(), GC_AFTER_RELOAD_MS).unref();
  }

  /** Overlay containers of every host, from the cluster store (none with a local store). */
  private async remoteEndpoints(): Promise<RemoteEndpoint[]> {
    if (!clusterOf(this.store)) return [];
    try {
      return (await this.store.list(ENDPOINTS_PREFIX)).map((e) => parseOverlayEndpoint(e.value)).filter((e): e is NonNullable<typeof e> => e !== undefined);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot list overlay endpoints: names of other hosts are not served');
      return [];
    }
  }

  /** Other hosts' containers come and go without telling us: watch the cluster's endpoints. */
  private async watchCluster(): Promise<void> {
    if (!clusterOf(this.store) || !this.store.watch) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      this.stopWatch = await this.store.watch(ENDPOINTS_PREFIX, () => {
        // A burst of changes is one reload.
        timer ??= setTimeout(() => {
          timer = undefined;
          this.reload().catch(() => {});
        }, 50);
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot watch overlay endpoints: other hosts\' names refresh every 10 s');
    }
  }

  private async idleCheck(): Promise<void> {
    this.idleTimer = undefined;
    await this.reload().catch(() => {});
    if (this.table.endpointCount === 0) await this.stop('no endpoint uses the resolver');
  }

  /** The host's resolv.conf changes (DHCP, VPN, resolvconf): looked at once a second at most. */
  private refreshHostUpstreams(): void {
    const now = Date.now();
    if (now - this.resolvConfCheckedAt < 1000) return;
    this.resolvConfCheckedAt = now;
    let mtime = 0;
    try {
      mtime = statSync(this.settings.resolvConf).mtimeMs;
    } catch {
      // absent: no upstreams
    }
    if (mtime !== this.resolvConfMtime) this.hostUpstreams = this.readHostUpstreams(this.table);
  }

  private readHostUpstreams(table: DnsTable): Upstream[] {
    let text = '';
    try {
      this.resolvConfMtime = statSync(this.settings.resolvConf).mtimeMs;
      text = readFileSync(this.settings.resolvConf, 'utf8');
    } catch {
      return [];
    }
    const own = new Set([...table.listenAddresses(), ...this.listeners.keys()]);
    // A host whose resolv.conf names one of our own gateways (served, or kept listening) would loop.
    return parseResolvConf(text).nameservers.map((n) => toUpstream(n)).filter((u): u is Upstream => u !== undefined && !own.has(u.address));
  }

  /** Opens UDP and TCP on address:53, retrying while the address is not there yet (a bridge
   * being created, IPv6 duplicate address detection). */
  private bind(address: string, attempt = 0): Promise<boolean> {
    this.pendingBinds.delete(address);
    if (this.stopping) return Promise.resolve(false);
    let settle!: (ok: boolean) => void;
    const result = new Promise<boolean>((r) => (settle = r));
    const tcp = net.createServer((c) => this.onTcp(c, address));
    const cache: Answers = new AnswerCache(MAX_CACHED_ANSWERS);
    let udp: UdpOut | undefined;
    const fail = (what: string, e: NodeJS.ErrnoException) => {
      udp?.close();
      tcp.close();
      if (attempt % 20 === 0) this.log.warn({ address, err: e.message, attempt }, `cannot listen on ${what}: retrying`);
      this.pendingBinds.set(address, setTimeout(() => void this.bind(address, attempt + 1), BIND_RETRY_MS));
      settle(false);
    };
    const listenTcp = () => {
      tcp.once('error', (e) => fail('tcp', e));
      tcp.listen({ host: address, port: 53, exclusive: true }, () => {
        tcp.removeAllListeners('error');
        tcp.on('error', (e) => this.log.warn({ address, err: e.message }, 'tcp socket error'));
        if (this.stopping || !this.table.listenAddresses().includes(address)) {
          udp!.close();
          tcp.close();
          return settle(false);
        }
        this.listeners.set(address, { address, udp: udp!, tcp });
        this.log.info({ address }, 'listening');
        settle(true);
      });
    };
    if (this.udpMode === 'batch') {
      try {
        const b = BatchUdpSocket.bind(address, 53, UDP_BUFFER_BYTES);
        b.start(
          (s, n) => this.onBatch(s, n, cache, address),
          (e) => this.log.warn({ address, err: e.message }, 'udp socket error'),
        );
        udp = b;
        listenTcp();
        return result;
      } catch (e) {
        // The address not there yet: retried as node:dgram's bind would be.
        if (e instanceof ErrnoError && e.syscall === 'bind') {
          fail('udp', e);
          return result;
        }
        // libc out of reach (koffi missing, another libc): node:dgram from now on.
        this.udpMode = 'dgram';
        this.log.warn({ err: (e as Error).message }, 'batched UDP unavailable: using node:dgram');
      }
    }
    const type = address.includes(':') ? 'udp6' : 'udp4';
    const d = dgram.createSocket({ type, recvBufferSize: UDP_BUFFER_BYTES, sendBufferSize: UDP_BUFFER_BYTES, lookup: literalLookup });
    udp = d;
    d.once('error', (e) => fail('udp', e));
    d.bind({ address, port: 53, exclusive: true }, () => {
      d.removeAllListeners('error');
      d.on('error', (e) => this.log.warn({ address, err: e.message }, 'udp socket error'));
      listenTcp();
    });
    d.on('message', (msg, rinfo) => this.onUdp(d, cache, msg, rinfo, address));
    return result;
  }

  /**
   * A batch of datagrams read by the batched socket: a query answered before (the cache below)
   * is answered from the batch's memory, with no object made for it; any other datagram is
   * copied out and goes the way node:dgram's would (onUdp).
   */
  private onBatch(sock: BatchUdpSocket, count: number, cache: Answers, local: string): void {
    this.syncCache(cache);
    const rx = sock.rx;
    for (let i = 0; i < count; i++) {
      const o = sock.offset(i);
      const len = sock.length(i);
      const address = sock.sourceAddress(i);
      if (sock.truncated(i)) {
        // Larger than a slot: not a query this resolver can read whole.
        this.stats.malformed++;
        if (len >= 12 && (rx[o + 2]! & 0x80) === 0) sock.send(header(rx.subarray(o, o + len), RCODE.FORMERR), sock.sourcePort(i), address);
        continue;
      }
      // The client is the source address's bytes, where recvmmsg wrote them.
      const ao = sock.addressOffset(i);
      const al = sock.addressLength(i);
      if (len <= MAX_CACHED_QUERY && len >= 12) {
        const hit = cache.get(rx, ao, al, rx, o, len);
        if (hit instanceof Buffer) {
          this.stats.queries++;
          this.stats.answered++;
          sock.reply(i, hit);
          continue;
        }
        if (hit instanceof ForwardTo) {
          this.stats.queries++;
          this.forwardUdp(sock, Buffer.from(rx.subarray(o, o + len)), { address, port: sock.sourcePort(i) }, hit.own, local);
          continue;
        }
      }
      // Copied: the batch's memory is read again by the next batch.
      this.onUdp(sock, cache, Buffer.from(rx.subarray(o, o + len)), { address, port: sock.sourcePort(i) }, local, Buffer.from(rx.subarray(ao, ao + al)));
    }
  }

  /** Empties a listener's answer cache when the table changed since it was filled. */
  private syncCache(cache: Answers): void {
    if (cache.generation !== this.generation) {
      cache.generation = this.generation;
      cache.clear();
    }
  }

  /** A client's address as the cache keys it: its 4 or 16 bytes, as the batched socket has them. */
  private clientBytes(address: string): Buffer {
    let b = this.clientKeys.get(address);
    if (!b) {
      if (this.clientKeys.size >= 4096) this.clientKeys.clear();
      try {
        b = Buffer.from(ipaddr.parse(address).toByteArray());
      } catch {
        b = Buffer.from(address, 'latin1');
      }
      this.clientKeys.set(address, b);
    }
    return b;
  }

  private onTcp(c: net.Socket, local: string): void {
    // Connections held per client and overall (fair-cap.ts): each is a descriptor, kept while the
    // client sends within the idle timeout.
    const client = clientOf(normalizeIp(c.remoteAddress ?? ''), local);
    if (!this.tcpClients.take(client, c)) {
      c.destroy();
      return;
    }
    c.once('close', () => this.tcpClients.release(client, c));
    let buf = Buffer.alloc(0);
    c.setTimeout(10_000, () => c.destroy());
    c.on('error', () => {});
    // Backpressure: a client that sends queries and never reads the answers made the resolver
    // read on and keep every answer in memory (one connection grew it by 142 MB in 8 s). Reading
    // stops while the answers not yet taken by the kernel exceed TCP_WRITE_HIGH or too many of
    // its queries are still being answered, and resumes when they drain: what such a client gets
    // in is what the kernel's buffers hold.
    let answering = 0;
    const flow = () => {
      if (c.destroyed) return;
      if (answering >= TCP_PENDING_MAX || c.writableLength > TCP_WRITE_HIGH) c.pause();
      else if (c.isPaused()) c.resume();
    };
    c.on('drain', flow);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        answering++;
        void this.safeAnswer(Buffer.from(msg), normalizeIp(c.remoteAddress ?? ''), local, 'tcp').then((out) => {
          answering--;
          if (out && !c.destroyed) {
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length, 0);
            c.write(Buffer.concat([len, out]));
          }
          flow();
        });
      }
      flow();
    });
  }

  /**
   * One UDP query. The common ones never reach the general decoder, a promise or a timer:
   *  - a query seen before from the same client since the last reload: a local answer is copied
   *    from the cache with the new ID, a forwarded name goes straight to the forwarder (the key
   *    is the whole query but its ID, so case, flags and EDNS0 size match exactly; the table is
   *    immutable between reloads, so is what it says about the query);
   *  - a simple A/AAAA query (wire.ts): looked up, answered locally or forwarded with the
   *    client's bytes as they are, and the outcome cached;
   *  - anything else (PTR, odd packets): answer(), the general path.
   */
  private onUdp(udp: UdpOut, cache: Answers, msg: Buffer, rinfo: Peer, local: string, client: Buffer = this.clientBytes(rinfo.address)): void {
    this.syncCache(cache);
    const cacheable = msg.length <= MAX_CACHED_QUERY && msg.length >= 12;
    let hit = cacheable ? cache.get(client, 0, client.length, msg, 0, msg.length) : undefined;
    if (hit === undefined) {
      const q = parseSimpleQuery(msg);
      const result = q && this.table.lookup(q.name, q.type, normalizeIp(rinfo.address), local);
      if (!q || !result || (result.kind !== 'answer' && result.kind !== 'nodata' && result.kind !== 'nxdomain' && result.kind !== 'forward')) {
        void this.safeAnswer(msg, rinfo.address, local, 'udp').then((out) => {
          if (out) udp.send(out, rinfo.port, rinfo.address);
        });
        return;
      }
      if (result.kind === 'forward') {
        hit = result.upstreams === undefined ? FORWARD_TO_HOST : this.forwardTo(result.upstreams);
      } else {
        const rcode = result.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR;
        hit = fastAnswer(msg, q.qEnd, q.type, result.kind === 'answer' ? result.addresses : [], rcode, q.edns, q.udpLimit, TTL);
      }
      // Bounded against a flood of distinct queries: emptied when full, refilled by the next ones.
      if (cacheable) cache.set(client, 0, client.length, msg, 0, msg.length, hit);
    }
    this.stats.queries++;
    if (hit instanceof ForwardTo) return this.forwardUdp(udp, msg, rinfo, hit.own, local);
    this.stats.answered++;
    // A copy with the client's ID: the cached bytes are never handed to the socket, which may
    // still hold a send when the next query comes.
    const out = Buffer.allocUnsafe(hit.length);
    hit.copy(out, 0);
    out[0] = msg[0]!;
    out[1] = msg[1]!;
    udp.send(out, rinfo.port, rinfo.address);
  }

  private forwardUdp(udp: UdpOut, msg: Buffer, rinfo: Peer, own: string[] | undefined, local: string): void {
    this.stats.forwarded++;
    this.forwarder.forward(msg, this.upstreamsFor(own), (answer) => {
      if (answer) {
        this.stats.answered++;
        return void udp.send(answer, rinfo.port, rinfo.address);
      }
      this.stats.servfail++;
      const q = parseSimpleQuery(msg);
      if (q) udp.send(fastAnswer(msg, q.qEnd, q.type, [], RCODE.SERVFAIL, q.edns, q.udpLimit, TTL, false), rinfo.port, rinfo.address);
    }, clientOf(rinfo.address, local));
  }

  /** One ForwardTo per container upstream list (the table's arrays), so cache entries share it. */
  private forwardTo(own: string[]): ForwardTo {
    let f = this.forwardTos.get(own);
    if (!f) this.forwardTos.set(own, (f = new ForwardTo(own)));
    return f;
  }

  /** The servers a forwarded query goes to: the container's own (--dns), else the host's. */
  private upstreamsFor(own: string[] | undefined): Upstream[] {
    this.refreshHostUpstreams();
    if (!own || own.length === 0) return this.hostUpstreams;
    let ups = this.ownUpstreams.get(own);
    if (!ups) {
      ups = own.map(toUpstream).filter((u): u is Upstream => u !== undefined);
      this.ownUpstreams.set(own, ups);
    }
    return ups;
  }

  /** answer(), and SERVFAIL for a query it could not handle: one odd packet never stops the
   * server (an unhandled rejection would end the process). */
  private async safeAnswer(msg: Buffer, source: string, local: string, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    try {
      return await this.answer(msg, source, local, transport);
    } catch (err) {
      this.stats.servfail++;
      this.log.warn({ err: (err as Error).message, source }, 'query failed');
      return msg.length >= 12 && (msg.readUInt16BE(2) & 0x8000) === 0 ? header(msg, RCODE.SERVFAIL) : undefined;
    }
  }

  /** The answer to one query (undefined: drop it, the packet was not a DNS query). */
  async answer(msg: Buffer, source: string, local: string, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    this.stats.queries++;
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      this.stats.malformed++;
      if (msg.length < 12 || (msg.readUInt16BE(2) & 0x8000) !== 0) return undefined;
      return header(msg, RCODE.FORMERR);
    }
    if (q.type !== 'query') {
      this.stats.malformed++;
      return undefined;
    }
    const question = q.questions?.[0];
    const opcode = (msg.readUInt16BE(2) >> 11) & 0xf;
    if (opcode !== 0 || !question) return this.done1(respond(q, opcode !== 0 ? RCODE.NOTIMP : RCODE.FORMERR, []), q, transport);

    const result: Lookup = this.table.lookup(question.name, question.type, normalizeIp(source), local);
    const fast = this.fastPath(msg, q, question.type, result, transport);
    if (fast) return fast;
    switch (result.kind) {
      case 'answer':
        return this.done1(respond(q, RCODE.NOERROR, result.addresses.map((a) => ({ name: question.name, type: question.type as 'A' | 'AAAA', ttl: TTL, data: a }))), q, transport);
      case 'ptr':
        return this.done1(respond(q, RCODE.NOERROR, result.names.map((n) => ({ name: question.name, type: 'PTR' as const, ttl: TTL, data: n }))), q, transport);
      case 'nodata':
        return this.done1(respond(q, RCODE.NOERROR, []), q, transport);
      case 'nxdomain':
        return this.done1(respond(q, RCODE.NXDOMAIN, []), q, transport);
      case 'refused':
        return this.done1(respond(q, RCODE.REFUSED, [], false), q, transport);
      case 'forward': {
        const ups = this.upstreamsFor(result.upstreams);
        this.stats.forwarded++;
        const client = clientOf(source, local);
        const out = transport === 'udp' ? await this.forwarder.udp(msg, ups, client) : await this.forwarder.tcp(msg, ups, client);
        if (out) {
          this.stats.answered++;
          return out;
        }
        this.stats.servfail++;
        return this.done1(respond(q, RCODE.SERVFAIL, [], false), q, transport);
      }
    }
  }

  /** Local A/AAAA answers, NODATA and NXDOMAIN for the common query, without the general encoder. */
  private fastPath(msg: Buffer, q: dnsPacket.DecodedPacket, type: string, result: Lookup, transport: 'udp' | 'tcp'): Buffer | undefined {
    if (result.kind !== 'answer' && result.kind !== 'nodata' && result.kind !== 'nxdomain') return undefined;
    if ((type !== 'A' && type !== 'AAAA') || q.questions!.length !== 1) return undefined;
    const qEnd = questionEnd(msg);
    if (qEnd === undefined) return undefined;
    this.stats.answered++;
    const edns = q.additionals?.some((a) => a.type === 'OPT') ?? false;
    const addresses = result.kind === 'answer' ? result.addresses : [];
    const rcode = result.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR;
    return fastAnswer(msg, qEnd, type, addresses, rcode, edns, transport === 'udp' ? udpLimit(q) : 65535, TTL);
  }

  /** Encodes a local answer; over UDP, one larger than the client takes is sent truncated. */
  private done1(p: dnsPacket.Packet, q: dnsPacket.DecodedPacket, transport: 'udp' | 'tcp'): Buffer {
    this.stats.answered++;
    let out = dnsPacket.encode(p);
    if (transport === 'udp' && out.length > udpLimit(q)) {
      out = dnsPacket.encode({ ...p, answers: [], flags: (p.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE });
    }
    return out;
  }

  private onControl(c: net.Socket): void {
    let buf = '';
    c.on('error', () => {});
    c.setTimeout(30_000, () => c.destroy());
    c.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        void this.command(cmd).then(
          (reply) => c.write(`${reply}\n`),
          (err: Error) => c.write(`error ${err.message.replace(/\n/g, ' ')}\n`),
        );
      }
    });
  }

  private async command(line: string): Promise<string> {
    // A resolver on its way out answers nothing: the client then starts a new one.
    if (this.stopping) throw new Error('stopping');
    const [cmd, ...args] = line.split(/\s+/);
    switch (cmd) {
      case 'reload': {
        // "reload <id>...": the change was made for these containers (see endpoint-cache.ts).
        const containers = args.filter((id) => isContainerId(id));
        if (containers.length !== args.length) throw new Error(`reload: invalid container id in ${JSON.stringify(args.join(' '))}`);
        await this.reload({ containers });
        if (this.stopping) throw new Error('stopping');
        return `ok ${this.generation}`;
      }
      case 'ping':
        return 'pong';
      case 'stats':
        return JSON.stringify(this.statsNow());
      default:
        throw new Error(`unknown command ${line}`);
    }
  }

  statsNow(): ResolverStats {
    return { pid: process.pid, generation: this.generation, endpoints: this.table.endpointCount, listening: this.listenAddresses(), ...this.stats, ...memory() };
  }

  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ why }, 'resolver exiting');
    clearInterval(this.resyncTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.gcTimer);
    for (const t of this.pendingBinds.values()) clearTimeout(t);
    // DNS sockets first, the control socket (the lock) last: a successor that takes the lock
    // finds port 53 free.
    await Promise.all([...this.listeners.values()].flatMap((l) => [new Promise<void>((r) => l.udp.close(() => r())), new Promise<void>((r) => l.tcp.close(() => r()))]));
    this.listeners.clear();
    this.forwarder.close();
    await this.stopWatch?.().catch(() => {});
    const pidfile = pidfilePath(this.settings.runDir);
    try {
      if (JSON.parse(readFileSync(pidfile, 'utf8')).pid === process.pid) rmSync(pidfile, { force: true });
    } catch {
      // gone already
    }
    await new Promise<void>((r) => (this.control ? this.control.close(() => r()) : r()));
    this.releaseLock();
    this.stopped();
  }
}

function toUpstream(text: string): Upstream | undefined {
  try {
    return parseUpstream(text.replace(/%.*$/, ''));
  } catch {
    return undefined;
  }
}

function respond(q: dnsPacket.DecodedPacket, rcode: number, answers: dnsPacket.Answer[], authoritative = true): dnsPacket.Packet {
  const rd = q.flags !== undefined && (q.flags & dnsPacket.RECURSION_DESIRED) !== 0 ? dnsPacket.RECURSION_DESIRED : 0;
  const edns = q.additionals?.some((a) => a.type === 'OPT');
  return {
    id: q.id,
    type: 'response',
    flags: rd | dnsPacket.RECURSION_AVAILABLE | (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rcode,
    questions: q.questions,
    answers,
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as dnsPacket.OptAnswer] : [],
  };
}

/** The largest UDP answer the client takes: 512 bytes, or its EDNS0 buffer size. */
function udpLimit(q: dnsPacket.DecodedPacket): number {
  const opt = q.additionals?.find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
  return opt ? Math.max(512, Math.min(opt.udpPayloadSize, 4096)) : 512;
}

function memory(): Pick<ResolverStats, 'rssBytes' | 'heapUsedBytes' | 'heapTotalBytes' | 'externalBytes'> {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
}

/** A header-only answer for a query that could not be decoded. */
function header(msg: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(12);
  msg.copy(out, 0, 0, 2);
  out.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
  return out;
}

/** The host's own addresses (this namespace's): queries from the host come from any of them
 * (the kernel picks a global address, not necessarily the gateway's). */
/** Everything a DnsTable is built from, as one string: equal strings, equal tables. Records in
 * the order the cache keeps them (the Store's key order), host addresses sorted. */
export function tableInputs(networksText: string, records: readonly EndpointRecord[], remote: readonly RemoteEndpoint[], hostAddrs: ReadonlySet<string>): string {
  return JSON.stringify([networksText, records, remote, [...hostAddrs].sort()]);
}

function hostAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(normalizeIp(a.address.replace(/%.*$/, '')));
  return out;
}

/**
 * Who a query counts against in the resolver's caps (fair-cap.ts): its source address. Link-local
 * sources, which the port guard lets a container choose freely (with its own MAC), count as one
 * client per listening address, so a container cannot make itself many clients with them.
 */
export function clientOf(source: string, local: string): string {
  const c = source.charCodeAt(0) | 0x20;
  const d = source.charCodeAt(1) | 0x20;
  const e = source.charCodeAt(2) | 0x20;
  // fe80::/10: "fe8", "fe9", "fea", "feb"
  if (c === 0x66 && d === 0x65 && (e === 0x38 || e === 0x39 || e === 0x61 || e === 0x62) && source.includes(':')) return `link-local@${local}`;
  return source;
}
