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

const RCODE_SERVFAIL = 2;
const RCODE_REFUSED = 5;

interface Pending {
  sentTo: Set<string>;
  /** A SERVFAIL/REFUSED kept while other servers may still answer better. */
  fallback?: Buffer | undefined;
  finish(answer: Buffer | undefined, answeredBy?: string): void;
  /** A server refused: ask the next one now instead of after the hedge delay. */
  onRefusal(from: string): void;
}

const keyOf = (u: { address: string; port: number }) => `${u.address}#${u.port}`;

export class Forwarder {
  private readonly sockets = new Map<'udp4' | 'udp6', dgram.Socket>();
  private readonly pending = new Map<number, Pending>();
  /** Consecutive unanswered queries per server; a server that answers is back to 0. */
  private readonly misses = new Map<string, number>();
  private closed = false;

  /** Healthy servers first, in the configured order; then the others, least missed first. */
  order(upstreams: Upstream[]): Upstream[] {
    return upstreams
      .map((u, i) => ({ u, i, m: this.misses.get(keyOf(u)) ?? 0 }))
      .sort((a, b) => (a.m > 0 ? 1 : 0) - (b.m > 0 ? 1 : 0) || (a.m > 0 && b.m > 0 ? a.m - b.m : 0) || a.i - b.i)
      .map((x) => x.u);
  }

  /** Relays `query` over UDP; undefined when no server answered in time. */
  udp(query: Buffer, upstreams: Upstream[]): Promise<Buffer | undefined> {
    if (this.closed || upstreams.length === 0 || query.length < 12) return Promise.resolve(undefined);
    const servers = this.order(upstreams);
    const id = this.freeId();
    if (id === undefined) return Promise.resolve(undefined);
    const out = Buffer.from(query);
    out.writeUInt16BE(id, 0);
    const originalId = query.readUInt16BE(0);
    return new Promise((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      let next = 0;
      const refused = new Set<string>();
      const p: Pending = {
        sentTo: new Set(),
        finish: (answer, answeredBy) => {
          for (const t of timers) clearTimeout(t);
          this.pending.delete(id);
          for (const k of p.sentTo) {
            if (k === answeredBy) this.misses.set(k, 0);
            else this.misses.set(k, (this.misses.get(k) ?? 0) + 1);
          }
          if (answer) answer.writeUInt16BE(originalId, 0);
          resolve(answer);
        },
        onRefusal: (from) => {
          refused.add(from);
          if (next < servers.length) sendNext();
          else if (refused.size === p.sentTo.size) p.finish(p.fallback);
        },
      };
      const sendNext = () => {
        const s = servers[next++];
        if (!s) return;
        p.sentTo.add(keyOf(s));
        this.socketFor(s.address).send(out, s.port, s.address, () => {});
        if (next < servers.length) timers.push(setTimeout(sendNext, HEDGE_MS));
      };
      this.pending.set(id, p);
      timers.push(setTimeout(() => p.finish(p.fallback), UDP_DEADLINE_MS));
      sendNext();
    });
  }

  /** Relays `query` over TCP, one server after the other, each with a short budget. */
  async tcp(query: Buffer, upstreams: Upstream[]): Promise<Buffer | undefined> {
    let fallback: Buffer | undefined;
    for (const s of this.order(upstreams)) {
      const answer = await tcpExchange(s, query, TCP_PER_SERVER_MS).catch(() => undefined);
      if (!answer) {
        this.misses.set(keyOf(s), (this.misses.get(keyOf(s)) ?? 0) + 1);
        continue;
      }
      this.misses.set(keyOf(s), 0);
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
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
    for (const p of [...this.pending.values()]) p.finish(undefined);
  }

  private freeId(): number | undefined {
    for (let i = 0; i < 64; i++) {
      const id = Math.floor(Math.random() * 65536);
      if (!this.pending.has(id)) return id;
    }
    return undefined;
  }

  private socketFor(address: string): dgram.Socket {
    const type = ipaddr.parse(address).kind() === 'ipv6' ? 'udp6' : 'udp4';
    let s = this.sockets.get(type);
    if (!s) {
      s = dgram.createSocket({ type, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      s.on('message', (msg, rinfo) => this.onAnswer(msg, rinfo));
      s.on('error', () => {});
      s.bind(0);
      this.sockets.set(type, s);
    }
    return s;
  }

  private onAnswer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    const from = keyOf({ address: normalize(rinfo.address), port: rinfo.port });
    // Only an answer from a server this query went to counts (no blind spoofing by ID alone).
    if (!p || !p.sentTo.has(from)) return;
    const rcode = msg.readUInt16BE(2) & 0xf;
    if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED) {
      p.fallback ??= Buffer.from(msg);
      p.onRefusal(from);
      return;
    }
    p.finish(Buffer.from(msg), from);
  }
}

function normalize(a: string): string {
  try {
    return ipaddr.parse(a).toString();
  } catch {
    return a;
  }
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
