// Random names (container ids, temporary file names) from the kernel's generator, read from
// /dev/urandom: node:crypto gives the same bytes but costs a cold process ~5 ms to load, and
// `tsrun run --net none` needs nothing else from it.
import { closeSync, openSync, readSync } from 'node:fs';

/** `bytes` random bytes as lowercase hex (2 × bytes characters). */
export function randomHex(bytes: number): string {
  // Every byte is read into before it is used (a short read throws): allocUnsafe, which every tsrun
  // process has compiled already (fs.readFileSync's), not alloc, one more first call before runc.
  const buf = Buffer.allocUnsafe(bytes);
  const fd = openSync('/dev/urandom', 'r');
  try {
    for (let off = 0; off < bytes; ) {
      const n = readSync(fd, buf, off, bytes - off, null);
      if (n <= 0) throw new Error('/dev/urandom: short read');
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf.toString('hex');
}
