// SHA-256 and random bytes without node:crypto. A cold process that requires node:crypto pays
// ~2 ms for it, and ~1.5 ms more for node:stream, which it pulls in (its Hash and Cipher classes
// are streams); the hook and the CNI plugin hash a few short strings per process (the firewall
// schema id, a veth name, the resolver's socket name) and draw two random values, which does not
// justify either. The digests are byte for byte those of node:crypto (the unit test compares
// them); the random bytes come from the same kernel generator, /dev/urandom.
import { closeSync, openSync, readSync } from 'node:fs';

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 of `data` (a string is taken as UTF-8), as 64 lowercase hex digits. */
export function sha256Hex(data: string | Uint8Array): string {
  const msg = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  // Padding: 0x80, zeros, and the bit length as a 64-bit big-endian number, to a multiple of 64.
  const blocks = Math.ceil((msg.length + 9) / 64);
  const buf = new Uint8Array(blocks * 64);
  buf.set(msg);
  buf[msg.length] = 0x80;
  const bits = msg.length * 8;
  const hi = Math.floor(bits / 0x1_0000_0000);
  const lo = bits >>> 0;
  const end = buf.length;
  buf[end - 8] = hi >>> 24;
  buf[end - 7] = (hi >>> 16) & 0xff;
  buf[end - 6] = (hi >>> 8) & 0xff;
  buf[end - 5] = hi & 0xff;
  buf[end - 4] = lo >>> 24;
  buf[end - 3] = (lo >>> 16) & 0xff;
  buf[end - 2] = (lo >>> 8) & 0xff;
  buf[end - 1] = lo & 0xff;

  // Written for the interpreter: a hook stage or an attach hashes once or twice per process, so
  // this never gets optimized; rotations inline, no closure, no destructuring (its iterator
  // protocol), no checked Buffer reads (measured cold: ~3x faster than the plain form).
  const h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Int32Array(64);
  for (let off = 0; off < end; off += 64) {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      w[i] = (buf[j]! << 24) | (buf[j + 1]! << 16) | (buf[j + 2]! << 8) | buf[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    let a = h[0]!;
    let b = h[1]!;
    let c = h[2]!;
    let d = h[3]!;
    let e = h[4]!;
    let f = h[5]!;
    let g = h[6]!;
    let hh = h[7]!;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i]! + w[i]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = h[0]! + a;
    h[1] = h[1]! + b;
    h[2] = h[2]! + c;
    h[3] = h[3]! + d;
    h[4] = h[4]! + e;
    h[5] = h[5]! + f;
    h[6] = h[6]! + g;
    h[7] = h[7]! + hh;
  }
  let hex = '';
  for (let i = 0; i < 8; i++) hex += (h[i]! >>> 0).toString(16).padStart(8, '0');
  return hex;
}

/** `n` bytes from the kernel's random generator (/dev/urandom: never blocks once the system has
 * booted, the source crypto.randomBytes draws on too). Small draws come from a pool read ahead
 * (POOL bytes at a time, each byte handed out once, as crypto.randomBytes pools too): an attach
 * draws twice (its lease's instance, its veth's MAC), and each draw opened, read and closed
 * /dev/urandom. */
export function randomBytesSync(n: number): Buffer {
  if (n > POOL / 4) return readUrandom(n);
  if (pool === undefined || pooled + n > POOL) {
    pool = readUrandom(POOL);
    pooled = 0;
  }
  const out = Buffer.from(pool.subarray(pooled, pooled + n));
  pool.fill(0, pooled, pooled + n); // handed out: not kept in the pool
  pooled += n;
  return out;
}

const POOL = 256;
let pool: Buffer | undefined;
let pooled = 0;

function readUrandom(n: number): Buffer {
  const out = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < n) {
      const r = readSync(fd, out, got, n - got, null);
      if (r <= 0) throw new Error('/dev/urandom gave no bytes');
      got += r;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
