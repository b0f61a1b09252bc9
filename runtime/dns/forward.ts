// Forwarding to upstream servers, query bytes in, answer bytes out: the query is relayed as the
// client sent it (its EDNS0 buffer size included) with only the ID rewritten, so a truncated
// upstream answer reaches the client truncated and the client retries over TCP, which is
// forwarded over TCP.
//
// One dead server must not cost the client its whole timeout (aardvark-dns#482): the first
// server gets the query at once, the next one HEDGE_MS later if no answer has come, and so on;
// the first answer wins. Servers that left a query unanswered move behind the ones that answer,
// so after one miss a dead server costs nothing at all until it answers again.
//
// Against off-path spoofing (as aardvark-dns and dnsmasq do): every query goes out from its own
// socket, bound by the kernel to a fresh random ephemeral port and closed with the query, with an
// ID from the crypto generator; an answer counts only when it comes to that socket, from a server
// and port the query went to, with the query's ID and question. A spoofer must guess ~32 bits
// (port and ID) per query, not 16, and a tenant whose --dns server sees its queries learns
// nothing about the next ones: one shared socket gave away the port, and Math.random's IDs are
// predictable from a few observed ones.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { FairCap } from './fair-cap.js';

export interface Upstream {
  address: string;
  port: number;
}

export const HEDGE_MS = 200;
export const UDP_DEADLINE_MS = 2500;
export const TCP_PER_SERVER_MS = 1000;
/** Hedges and deadlines are checked this often (one timer for every query in flight, instead of
 * two timers per query: at a few thousand forwarded queries a second those were most of the
 * forwarder's allocations, and so of its garbage-collection pauses). */
const SWEEP_MS = 20;

/** Forwarded queries in flight (UDP and TCP) one client may have, and all clients together
 * (fair-cap.ts): each holds a socket (two when it was hedged to both families) until its answer
 * or its deadline. Beyond them a query is answered SERVFAIL at once, holding nothing. Per client
 * above dnsperf's default of 100 outstanding queries; overall at most a quarter of the open-file
 * limit (read once), so the cap is reached before EMFILE is. */
export const FORWARDS_PER_CLIENT = 128;
export const MAX_FORWARDS = 1024;

/** The open-file limit of this process (Node raises the soft limit to the hard one at start), or
 * undefined where /proc cannot say. */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** `max`, or less where the open-file limit is low: at most `share` of it, never under 16. */
export function capUnderLimit(max: number, share: number, limit = openFileLimit()): number {
  return limit === undefined ? max : Math.max(16, Math.min(max, Math.floor(limit * share)));
}

const RCODE_SERVFAIL = 2;
const RCODE_REFUSED = 5;

/** The answer bytes (its ID already the client's), or undefined: no server answered in time. */
export type ForwardDone = (answer: Buffer | undefined) => void;

class Pending {
  /** Keys of the servers this query went to. */
  readonly sentTo: string[] = [];
  next = 0;
  refused = 0;
  finished = false;
  /** A SERVFAIL/REFUSED kept while other servers may still answer better. */
  fallback: Buffer | undefined;
  /** When the next server gets the query if no answer has come (Infinity: no server left). */
  hedgeAt = Infinity;
  /** The query's own sockets, one per address family it used (closed when it finishes). */
  sock4: dgram.Socket | undefined;
  sock6: dgram.Socket | undefined;
  readonly deadline: number;
  constructor(
    readonly id: number,
    readonly originalId: number,
    readonly query: Buffer,
    /** Where the query's question section ends (an answer must repeat it). */
    readonly qEnd: number,
    readonly servers: Upstream[],
    readonly done: ForwardDone,
    readonly created: number,
    /** Who asked (fair-cap.ts). */
    readonly client: string,
  ) {
    this.deadline = created + UDP_DEADLINE_MS;
  }
}

const keyOf = (u: Upstream) => `${u.address}#${u.port}`;

/** What the forwarder needs from the system: UDP sockets and a clock (unit tests pass fakes). */
export interface ForwarderSystem {
  socket(type: 'udp4' | 'udp6'): dgram.Socket;
  now(): number;
}

/** A TCP forward's place in the cap: `cancel` ends it (its connection closed, no answer). */
interface TcpForward {
  cancel(): void;
}

const realSystem: ForwarderSystem = {
  // One answer per socket: the default buffers do (no setsockopt calls per query).
  socket: (type) => dgram.createSocket({ type, lookup: literalLookup }),
  now: () => performance.now(),
};

export class Forwarder {
  /** Queries in flight, oldest first (a Set keeps insertion order). Each has its own unconnected
   * sockets (see the top): not connected ones, as a connected socket fails its next send after
   * an ICMP error (a hedge to a restarting server would be lost). */
  private readonly pending = new Set<Pending>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Consecutive unanswered queries per server, for servers with at least one; a server that
   * answers is deleted (0), so with every server healthy the order costs nothing. */
  private readonly misses = new Map<string, number>();
  private closed = false;
  /** Forwarded queries in flight per client and overall; a query taken from a flooding client
   * to make room ends as unanswered (SERVFAIL). */
  private readonly cap: FairCap<Pending | TcpForward>;

  constructor(
    private readonly sys: ForwarderSystem = realSystem,
    limits: { total?: number; perClient?: number } = {},
  ) {
    this.cap = new FairCap(limits.total ?? capUnderLimit(MAX_FORWARDS, 1 / 4), limits.perClient ?? FORWARDS_PER_CLIENT, (item) =>
      item instanceof Pending ? this.finish(item, item.fallback) : item.cancel(),
    );
  }

  /** Forwarded queries in flight now (UDP and TCP). */
  get inFlight(): number {
    return this.cap.size;
  }

  /** Healthy servers first, in the configured order; then the others, least missed first. */
  order(upstreams: Upstream[]): Upstream[] {
    if (this.misses.size === 0) return upstreams;
    return upstreams
      .map((u, i) => ({ u, i, m: this.misses.get(keyOf(u)) ?? 0 }))
      .sort((a, b) => (a.m > 0 ? 1 : 0) - (b.m > 0 ? 1 : 0) || (a.m > 0 && b.m > 0 ? a.m - b.m : 0) || a.i - b.i)
      .map((x) => x.u);
  }

  /** Relays `query` over UDP; undefined when no server answered in time. */
  udp(query: Buffer, upstreams: Upstream[], client = ''): Promise<Buffer | undefined> {
    return new Promise((resolve) => this.forward(query, upstreams, resolve, client));
  }

  /**
   * Relays `query` over UDP and calls `done` once, with the first good answer (its ID set back to
   * the client's), a SERVFAIL/REFUSED when every server said so, or undefined after the deadline.
   * The per-query path of the resolver: no promise, no timer, one copy of the query.
   */
  forward(query: Buffer, upstreams: Upstream[], done: ForwardDone, client = ''): void {
    if (this.closed || upstreams.length === 0 || query.length < 12) return done(undefined);
    const qEnd = questionEnd(query);
    if (qEnd === undefined) return done(undefined);
    const id = randomInt(65536);
    const out = Buffer.allocUnsafe(query.length);
    query.copy(out, 0);
    out.writeUInt16BE(id, 0);
    const p = new Pending(id, query.readUInt16BE(0), out, qEnd, this.order(upstreams), done, this.sys.now(), client);
    // Over the cap: no socket, answered at once (SERVFAIL).
    if (!this.cap.take(client, p)) return done(undefined);
    this.pending.add(p);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    this.sendNext(p);
  }

  /** Relays `query` over TCP, one server after the other, each with a short budget. */
  async tcp(query: Buffer, upstreams: Upstream[], client = ''): Promise<Buffer | undefined> {
    if (this.closed) return undefined;
    const abort: { now?: () => void } = {};
    let cancelled = false;
    const slot: TcpForward = {
      cancel: () => {
        cancelled = true;
        abort.now?.();
      },
    };
    if (!this.cap.take(client, slot)) return undefined;
    try {
      return await this.tcpInCap(query, upstreams, abort, () => cancelled);
    } finally {
      this.cap.release(client, slot);
    }
  }

  private async tcpInCap(query: Buffer, upstreams: Upstream[], abort: { now?: () => void }, cancelled: () => boolean): Promise<Buffer | undefined> {
    let fallback: Buffer | undefined;
    for (const s of this.order(upstreams)) {
      const answer = await tcpExchange(s, query, TCP_PER_SERVER_MS, abort).catch(() => undefined);
      if (cancelled()) return undefined;
      if (!answer) {
        this.missed(keyOf(s));
        continue;
      }
      this.misses.delete(keyOf(s));
      const rcode = answer.length >= 4 ? answer.readUInt16BE(2) & 0xf : RCODE_SERVFAIL;
      if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED) {
        fallback ??= answer;
        continue;
      }
      return answer;
    }
    return fallback;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const p of [...this.pending.values()]) this.finish(p, undefined);
  }

  private sendNext(p: Pending): void {
    const s = p.servers[p.next++];
    if (!s) return;
    p.sentTo.push(keyOf(s));
    this.socketFor(p, s.address).send(p.query, s.port, s.address);
    p.hedgeAt = p.next < p.servers.length ? this.sys.now() + HEDGE_MS : Infinity;
  }

  private finish(p: Pending, answer: Buffer | undefined, answeredBy?: string): void {
    if (p.finished) return;
    p.finished = true;
    this.pending.delete(p);
    this.cap.release(p.client, p);
    p.sock4?.close();
    p.sock6?.close();
    for (const k of p.sentTo) {
      if (k === answeredBy) this.misses.delete(k);
      else this.missed(k);
    }
    if (answer) answer.writeUInt16BE(p.originalId, 0);
    p.done(answer);
  }

  private missed(key: string): void {
    this.misses.set(key, (this.misses.get(key) ?? 0) + 1);
  }

  /** Sends the hedges that are due and gives up on queries past their deadline. Queries are
   * visited oldest first and only while they are older than the hedge delay: nothing younger
   * is due, so with healthy servers a sweep looks at next to nothing (answers come within a
   * millisecond and leave the map). Finished queries are gone from the map, so nothing holds on
   * to them: they die young, in the cheap part of the garbage collector. */
  private sweep(): void {
    const now = this.sys.now();
    for (const p of this.pending.values()) {
      if (p.created + HEDGE_MS > now) break;
      if (p.deadline <= now) this.finish(p, p.fallback);
      else if (p.hedgeAt <= now) this.sendNext(p);
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** The query's socket for `address`'s family: bound to a port the kernel picks at random. */
  private socketFor(p: Pending, address: string): dgram.Socket {
    // Upstream addresses are canonical literals (parseUpstream): a colon means IPv6.
    const v6 = address.includes(':');
    let sock = v6 ? p.sock6 : p.sock4;
    if (!sock) {
      sock = this.sys.socket(v6 ? 'udp6' : 'udp4');
      sock.on('message', (msg, rinfo) => this.onAnswer(p, msg, rinfo));
      sock.on('error', () => {});
      sock.bind(0);
      if (v6) p.sock6 = sock;
      else p.sock4 = sock;
    }
    return sock;
  }

  private onAnswer(p: Pending, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (p.finished || msg.length < 12 || msg.readUInt16BE(0) !== p.id) return;
    // Only an answer from a server this query went to counts.
    // The kernel's IPv4 text is canonical; an IPv6 one is compared in ipaddr.js's form too.
    let from = `${rinfo.address}#${rinfo.port}`;
    if (!p.sentTo.includes(from)) {
      if (!rinfo.address.includes(':')) return;
      from = `${normalize(rinfo.address)}#${rinfo.port}`;
      if (!p.sentTo.includes(from)) return;
    }
    if (!sameQuestion(p.query, p.qEnd, msg)) return;
    const rcode = msg.readUInt16BE(2) & 0xf;
    if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED) {
      p.fallback ??= msg;
      p.refused++;
      // A server refused: ask the next one now instead of after the hedge delay.
      if (p.next < p.servers.length) this.sendNext(p);
      else if (p.refused >= p.sentTo.length) this.finish(p, p.fallback);
      return;
    }
    this.finish(p, msg, from);
  }
}

/** Where the question section of query `m` ends, or undefined: not walkable (a query's names
 * are never compressed). */
export function questionEnd(m: Buffer): number | undefined {
  let o = 12;
  for (let n = m.readUInt16BE(4); n > 0; n--) {
    for (;;) {
      if (o >= m.length) return undefined;
      const l = m[o]!;
      o++;
      if (l === 0) break;
      if (l > 63) return undefined;
      o += l;
    }
    o += 4;
  }
  return o <= m.length ? o : undefined;
}

/** Whether answer `a` repeats query `q`'s question section (its end at `qEnd`): same count,
 * label lengths, type and class; names compared without regard to ASCII case (RFC 4343). */
export function sameQuestion(q: Buffer, qEnd: number, a: Buffer): boolean {
  if (a.length < qEnd || a[4] !== q[4] || a[5] !== q[5]) return false;
  let o = 12;
  for (let n = q.readUInt16BE(4); n > 0; n--) {
    for (;;) {
      const l = q[o]!;
      if (a[o] !== l) return false;
      o++;
      if (l === 0) break;
      for (const end = o + l; o < end; o++) if (lower(q[o]!) !== lower(a[o]!)) return false;
    }
    for (const end = o + 4; o < end; o++) if (q[o] !== a[o]) return false;
  }
  return true;
}

const lower = (b: number) => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);

function normalize(a: string): string {
  try {
    return ipaddr.parse(a).toString();
  } catch {
    return a;
  }
}

/** dgram's address lookup for sockets only ever given IP literals: answers at once (the default,
 * dns.lookup, defers every send to the next tick). */
export function literalLookup(address: string, family: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** One query over a fresh TCP connection (RFC 7766 framing), within `timeoutMs`. */
export function tcpExchange(s: Upstream, query: Buffer, timeoutMs: number, abort?: { now?: () => void }): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: s.address, port: s.port });
    let buf = Buffer.alloc(0);
    const done = (answer: Buffer | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
    // Ended early (the cap took its place): the connection closed now, no answer.
    if (abort) abort.now = () => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length, 0);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('error', () => done(undefined));
    sock.on('close', () => done(undefined));
  });
}
