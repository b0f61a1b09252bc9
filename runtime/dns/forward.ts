// Forwarding to upstream servers, query bytes in, answer bytes out: the query is relayed as the
// client sent it (its EDNS0 buffer size included) with only the ID rewritten, so a truncated
// upstream answer reaches the client truncated and the client retries over TCP, which is
// forwarded over TCP.
//
// One dead server must not cost the client its whole timeout (aardvark-dns#482): the first
// server gets the query at once, the next one HEDGE_MS later if no answer has come, and so on;
// the first answer wins. Servers that left a query unanswered move behind the ones that answer,
// so after one miss a dead server costs nothing at all until it answers again.
import dgram from 'node:dgram';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

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
  readonly deadline: number;
  constructor(
    readonly id: number,
    readonly originalId: number,
    readonly query: Buffer,
    readonly servers: Upstream[],
    readonly done: ForwardDone,
    readonly created: number,
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

const realSystem: ForwarderSystem = {
  socket: (type) => dgram.createSocket({ type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, lookup: literalLookup }),
  now: () => performance.now(),
};

export class Forwarder {
  /** One unconnected socket per address family for every server. Not a connected socket per
   * server: a connected socket keeps the source address chosen when it connected (a host whose
   * address changes, DHCP or a VPN, would send from one it no longer has), and the kernel fails
   * its next send after an ICMP error (a server restarting would cost a query). */
  private readonly sockets = new Map<'udp4' | 'udp6', dgram.Socket>();
  /** Queries in flight by the ID they were sent with, oldest first (a Map keeps insertion order). */
  private readonly pending = new Map<number, Pending>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Consecutive unanswered queries per server, for servers with at least one; a server that
   * answers is deleted (0), so with every server healthy the order costs nothing. */
  private readonly misses = new Map<string, number>();
  private closed = false;

  constructor(private readonly sys: ForwarderSystem = realSystem) {}

  /** Healthy servers first, in the configured order; then the others, least missed first. */
  order(upstreams: Upstream[]): Upstream[] {
    if (this.misses.size === 0) return upstreams;
    return upstreams
      .map((u, i) => ({ u, i, m: this.misses.get(keyOf(u)) ?? 0 }))
      .sort((a, b) => (a.m > 0 ? 1 : 0) - (b.m > 0 ? 1 : 0) || (a.m > 0 && b.m > 0 ? a.m - b.m : 0) || a.i - b.i)
      .map((x) => x.u);
  }

  /** Relays `query` over UDP; undefined when no server answered in time. */
  udp(query: Buffer, upstreams: Upstream[]): Promise<Buffer | undefined> {
    return new Promise((resolve) => this.forward(query, upstreams, resolve));
  }

  /**
   * Relays `query` over UDP and calls `done` once, with the first good answer (its ID set back to
   * the client's), a SERVFAIL/REFUSED when every server said so, or undefined after the deadline.
   * The per-query path of the resolver: no promise, no timer, one copy of the query.
   */
  forward(query: Buffer, upstreams: Upstream[], done: ForwardDone): void {
    if (this.closed || upstreams.length === 0 || query.length < 12) return done(undefined);
    const id = this.freeId();
    if (id === undefined) return done(undefined);
    const out = Buffer.allocUnsafe(query.length);
    query.copy(out, 0);
    out.writeUInt16BE(id, 0);
    const p = new Pending(id, query.readUInt16BE(0), out, this.order(upstreams), done, this.sys.now());
    this.pending.set(id, p);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    this.sendNext(p);
  }

  /** Relays `query` over TCP, one server after the other, each with a short budget. */
  async tcp(query: Buffer, upstreams: Upstream[]): Promise<Buffer | undefined> {
    let fallback: Buffer | undefined;
    for (const s of this.order(upstreams)) {
      const answer = await tcpExchange(s, query, TCP_PER_SERVER_MS).catch(() => undefined);
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
    for (const sock of this.sockets.values()) sock.close();
    this.sockets.clear();
    for (const p of [...this.pending.values()]) this.finish(p, undefined);
  }

  private sendNext(p: Pending): void {
    const s = p.servers[p.next++];
    if (!s) return;
    p.sentTo.push(keyOf(s));
    this.socketFor(s.address).send(p.query, s.port, s.address);
    p.hedgeAt = p.next < p.servers.length ? this.sys.now() + HEDGE_MS : Infinity;
  }

  private finish(p: Pending, answer: Buffer | undefined, answeredBy?: string): void {
    if (p.finished) return;
    p.finished = true;
    this.pending.delete(p.id);
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

  private freeId(): number | undefined {
    for (let i = 0; i < 64; i++) {
      const id = Math.floor(Math.random() * 65536);
      if (!this.pending.has(id)) return id;
    }
    return undefined;
  }

  private socketFor(address: string): dgram.Socket {
    // Upstream addresses are canonical literals (parseUpstream): a colon means IPv6.
    const type = address.includes(':') ? 'udp6' : 'udp4';
    let sock = this.sockets.get(type);
    if (!sock) {
      sock = this.sys.socket(type);
      sock.on('message', (msg, rinfo) => this.onAnswer(msg, rinfo));
      sock.on('error', () => {});
      sock.bind(0);
      this.sockets.set(type, sock);
    }
    return sock;
  }

  private onAnswer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p) return;
    // Only an answer from a server this query went to counts (no blind spoofing by ID alone).
    // The kernel's IPv4 text is canonical; an IPv6 one is compared in ipaddr.js's form too.
    let from = `${rinfo.address}#${rinfo.port}`;
    if (!p.sentTo.includes(from)) {
      if (!rinfo.address.includes(':')) return;
      from = `${normalize(rinfo.address)}#${rinfo.port}`;
      if (!p.sentTo.includes(from)) return;
    }
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
export function tcpExchange(s: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: s.address, port: s.port });
    let buf = Buffer.alloc(0);
    const done = (answer: Buffer | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
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
