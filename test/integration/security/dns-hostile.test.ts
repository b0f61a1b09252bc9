// The resolver's batched UDP path (runtime/dns/udp-batch.ts) and its answer cache (answer-cache.ts)
// against what a hostile container can send: real datagrams from inside a container's namespace to
// its network's gateway. The resolver must answer well-formed queries, never answer a response
// (no reflection loops between two resolvers), survive anything else, and never hand a client
// what the cache learnt for a client of another network.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { BridgeWorld, OUTSIDE_IP } from '../../harness/bridge-world.js';
import { PROJECT_ROOT } from '../../harness/sandbox.js';

const FIXTURES = path.join(PROJECT_ROOT, 'dist/test/integration/fixtures');
const RAW = path.join(FIXTURES, 'dns-raw.js');
const GW_A = '10.63.0.1';
const GW_B = '10.64.0.1';

let w: BridgeWorld;
let resolvDir: string;

function resolverPid(): number | undefined {
  const file = path.join(w.host.root, 'run', 'dns', 'resolver.pid');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid : undefined;
}

/** Sends `datagrams` from inside container `id` to `server` and returns the replies, decoded
 * where they decode (undefined where not). */
function send(id: string, network: string, server: string, datagrams: Buffer[], waitMs = 1000): { raw: Buffer; p: dnsPacket.DecodedPacket | undefined }[] {
  const r = w.host.ns.exec('nsenter', [`--net=${w.endpoint(id, network).netnsPath}`, '--', process.execPath, RAW, server, String(waitMs), ...datagrams.map((d) => d.toString('hex'))]);
  if (r.status !== 0) throw new Error(`dns-raw: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { replies: string[] }).replies.map((h) => {
    const raw = Buffer.from(h, 'hex');
    let p: dnsPacket.DecodedPacket | undefined;
    try {
      p = dnsPacket.decode(raw);
    } catch {
      p = undefined;
    }
    return { raw, p };
  });
}

function query(id: number, name: string, type = 'A'): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as 'A', name }] });
}

const addressesOf = (p: dnsPacket.DecodedPacket | undefined) => (p?.answers ?? []).map((a) => String((a as { data?: unknown }).data)).sort();

beforeAll(async () => {
  resolvDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-dnsh-'));
  writeFileSync(path.join(resolvDir, 'resolv.conf'), `nameserver ${OUTSIDE_IP}\n`);
  w = await BridgeWorld.create('dnsh', { env: { TSRUN_RESOLV_CONF: path.join(resolvDir, 'resolv.conf') } });
  w.tsrunOk(['network', 'create', 'dnsha', '--subnet', '10.63.0.0/24']);
  w.tsrunOk(['network', 'create', 'dnshb', '--subnet', '10.64.0.0/24']);
});
afterAll(async () => {
  const pid = resolverPid();
  await w.destroy();
  if (pid !== undefined && existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
  rmSync(resolvDir, { recursive: true, force: true });
});
afterEach(async () => {
  await w.stopAll();
  expect(w.leaks()).toEqual([]);
});

describe('hostile datagrams to the resolver', () => {
  it('survives empty, header-only, oversized, looping and response datagrams, answers no response, and answers a flood larger than a batch', async () => {
    const db = await w.start(['--net', 'dnsha', '--network-alias', 'db'], 'sleep 600');
    const cl = await w.start(['--net', 'dnsha'], 'sleep 600');
    const ip = w.ip(db.id, 'dnsha');
    // Warm: the resolver is up and answers.
    expect(addressesOf(send(cl.id, 'dnsha', GW_A, [query(1, 'db')])[0]?.p)).toEqual([ip]);
    const pid = resolverPid();
    expect(pid).toBeDefined();

    const header = (id: number, flags: number, qd: number) => {
      const b = Buffer.alloc(12);
      b.writeUInt16BE(id, 0);
      b.writeUInt16BE(flags, 2);
      b.writeUInt16BE(qd, 4);
      return b;
    };
    // A question whose name is a pointer to itself (offset 12): a decoder that follows pointers
    // without a bound never returns.
    const loop = Buffer.concat([header(0x4c00, 0x0100, 1), Buffer.from([0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01])]);
    // Two pointers to each other.
    const loop2 = Buffer.concat([header(0x4c01, 0x0100, 1), Buffer.from([0x01, 0x61, 0xc0, 0x0e, 0x00, 0x01, 0x00, 0x01])]);
    // A response to "db" (QR set): answering it would let two resolvers bounce it for ever.
    const response = dnsPacket.encode({ type: 'response', id: 0x5200, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'db' }], answers: [] });
    // A well-formed header and question, padded beyond a receive slot (4096 bytes).
    const big = Buffer.concat([query(0x5300, 'db'), Buffer.alloc(5000 - query(0, 'db').length)]);
    const hostile = [Buffer.alloc(0), header(0x4a00, 0x0100, 0), header(0x4b00, 0x0100, 1), loop, loop2, response, big, Buffer.from([0xff])];
    // More queries than one recvmmsg batch (32), each with its own ID.
    const flood = Array.from({ length: 48 }, (_, i) => query(0x6000 + i, i % 2 === 0 ? 'db' : 'nobody'));
    const replies = send(cl.id, 'dnsha', GW_A, [...hostile, ...flood], 1500);

    // The resolver is the same process, and still answers.
    expect(resolverPid()).toBe(pid);
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    expect(addressesOf(send(cl.id, 'dnsha', GW_A, [query(2, 'db')])[0]?.p)).toEqual([ip]);

    const ids = replies.map((r) => (r.raw.length >= 2 ? r.raw.readUInt16BE(0) : -1));
    // No reply to the response, and none that is itself a query (every reply has QR set).
    expect(ids).not.toContain(0x5200);
    for (const r of replies) if (r.raw.length >= 3) expect(r.raw[2]! & 0x80).toBe(0x80);
    // Every query of the flood answered, correctly.
    for (let i = 0; i < flood.length; i++) {
      const r = replies.find((x) => x.raw.length >= 2 && x.raw.readUInt16BE(0) === 0x6000 + i);
      expect(r?.p).toBeDefined();
      if (i % 2 === 0) expect(addressesOf(r!.p)).toEqual([ip]);
      else expect((r!.p as { rcode?: string }).rcode).toBe('NXDOMAIN');
    }
    // The malformed ones: an error or nothing, never an address.
    for (const id of [0x4a00, 0x4b00, 0x4c00, 0x4c01, 0x5300]) {
      for (const r of replies.filter((x) => x.raw.length >= 2 && x.raw.readUInt16BE(0) === id)) {
        expect(addressesOf(r.p)).toEqual([]);
        expect(r.raw[3]! & 0x0f).not.toBe(0); // an rcode other than NOERROR
      }
    }
  });

  it('never serves a client of one network what the cache learnt for a client of another', async () => {
    const alpha = await w.start(['--net', 'dnsha', '--network-alias', 'alpha'], 'sleep 600');
    const a = await w.start(['--net', 'dnsha'], 'sleep 600');
    const b = await w.start(['--net', 'dnshb'], 'sleep 600');
    const ip = w.ip(alpha.id, 'dnsha');
    // The very same bytes (same ID too) from a, twice (the second from the listener's cache)...
    const q = query(0x7777, 'alpha');
    for (let i = 0; i < 2; i++) expect(addressesOf(send(a.id, 'dnsha', GW_A, [q])[0]?.p)).toEqual([ip]);
    // ...then from b, to network A's gateway (routed through the host) and to its own.
    for (const server of [GW_A, GW_B]) {
      for (let i = 0; i < 2; i++) {
        for (const r of send(b.id, 'dnshb', server, [q], 700)) expect(addressesOf(r.p)).not.toContain(ip);
      }
    }
    // And a still gets its answer from the cache.
    expect(addressesOf(send(a.id, 'dnsha', GW_A, [q])[0]?.p)).toEqual([ip]);
  });
});
