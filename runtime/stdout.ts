// Writing a front door's answer to stdout without process.stdout: the first use of process.stdout
// builds its stream (net, stream, tty: ~4-5 ms of a cold process), too much for the one line
// `run -d` and `rm` print and the one JSON object a CNI call answers with (measured: node writing
// 700 bytes to a pipe through process.stdout 38.0 ms, through writeSync 33.8 ms, node -e 0 33.4 ms;
// 30 interleaved runs).
import { writeSync } from 'node:fs';

/** What writeAll waits on between two tries at a full non-blocking pipe (nothing wakes it). */
let pause: Int32Array | undefined;

/**
 * `text` on stdout, written to fd 1 directly and all of it before returning: the doors that print
 * with this leave through process.exit or libc's _exit right after, which drop whatever a stream
 * still has queued. A pipe that cannot take it now (EAGAIN: non-blocking, as libuv leaves a pipe
 * it opened, here or in a process sharing it, and full) is tried again after 1 ms until it has
 * taken everything, as a blocking write would wait. (Handing the rest to process.stdout lost it
 * at that exit.)
 */
export function writeStdout(text: string): void {
  writeAll(1, text);
}

/**
 * A door's failure line on stderr, as writeStdout writes stdout: process.stderr queues what a
 * full pipe (the runtime's stderr, read late by a pager or a log collector) cannot take now, and
 * the exit right after dropped the one line that says why the call failed. It also spares a
 * failing call building that stream.
 */
export function writeStderr(text: string): void {
  writeAll(2, text);
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let done = 0;
  while (done < buf.length) {
    try {
      done += writeSync(fd, buf, done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait((pause ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1);
    }
  }
}
