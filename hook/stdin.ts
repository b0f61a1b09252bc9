// Reading the state JSON a runtime pipes to a hook. Synchronous reads of fd 0: no stream machinery
// to load (process.stdin pulls in net/tty), and a hook has nothing else to do meanwhile. The size
// is capped so a hostile or broken writer cannot make the hook buffer without bound.
import { readSync } from 'node:fs';
import { UserError } from '../config/errors.js';

/** Real states are a few KiB (podman's, with every annotation, about 1.5 KiB). */
export const STATE_MAX_BYTES = 4 * 1024 * 1024;

/** Reads fd until end of file; refuses more than `max` bytes. */
export function readAllSync(fd: number, max = STATE_MAX_BYTES): string {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A non-blocking pipe with nothing in it yet: wait a moment, the writer is on its way.
      if (code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        continue;
      }
      throw new UserError(`cannot read the state JSON on stdin: ${code ?? (err as Error).message}`);
    }
    if (n === 0) break;
    total += n;
    if (total > max) throw new UserError(`the state JSON on stdin is larger than ${max} bytes`);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks, total).toString('utf8');
}
