// `tsrun logs`: conmon's k8s-file log, one record per line:
//   2026-11-29T06:59:52.806787252+00:00 stdout F hello
// F ends a line, P is part of one (conmon splits long lines and lines still being written).
// stdout records go to stdout, stderr records to stderr.
import { closeSync, openSync, readSync, fstatSync, statSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  /** The whole line (with the P parts before it joined), without its newline. */
  text: string;
  /** The end of the log, a line that never got its end (printed without a newline). */
  partial?: boolean;
}

/** Parses complete log lines; partial (P) records are joined onto the line they begin. */
export class LogParser {
  private pending: { time: string; stream: 'stdout' | 'stderr'; text: string } | undefined;
  private rest = '';

  push(chunk: string): LogRecord[] {
    const data = this.rest + chunk;
    const lines = data.split('\n');
    this.rest = lines.pop()!;
    const out: LogRecord[] = [];
    for (const line of lines) {
      const a = line.indexOf(' ');
      const b = line.indexOf(' ', a + 1);
      const c = line.indexOf(' ', b + 1);
      if (a < 0 || b < 0) continue;
      const time = line.slice(0, a);
      const stream = line.slice(a + 1, b) === 'stderr' ? 'stderr' : 'stdout';
      const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
      const text = c < 0 ? '' : line.slice(c + 1);
      if (this.pending && this.pending.stream === stream) {
        this.pending.text += text;
      } else {
        if (this.pending) out.push(this.pending); // a P run interrupted by the other stream
        this.pending = { time, stream, text };
      }
      if (!tag.startsWith('P')) {
        out.push(this.pending);
        this.pending = undefined;
      }
    }
    return out;
  }

  /** What is left once nothing more will come: a last line without its end. */
  flush(): LogRecord[] {
    const last = this.pending;
    this.pending = undefined;
    return last ? [{ ...last, partial: true }] : [];
  }
}

export interface LogsOptions {
  follow: boolean;
  tail?: number | undefined;
  timestamps: boolean;
  /** Polled while following: true once the container has ended (no more lines will come). */
  ended(): boolean;
}

export async function printLogs(file: string, o: LogsOptions): Promise<void> {
  const parser = new LogParser();
  const decoder = new StringDecoder('utf8'); // a character may be split between two reads
  let fd: number | undefined;
  let offset = 0;
  const buf = Buffer.alloc(64 * 1024);
  const readMore = (): LogRecord[] => {
    if (fd === undefined) {
      try {
        fd = openSync(file, 'r');
      } catch {
        return []; // nothing logged yet
      }
    }
    const out: LogRecord[] = [];
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, offset);
      if (n <= 0) break;
      offset += n;
      out.push(...parser.push(decoder.write(buf.subarray(0, n))));
    }
    return out;
  };
  const emit = (records: LogRecord[]) => {
    for (const r of records) {
      const line = `${o.timestamps ? `${r.time} ` : ''}${r.text}${r.partial ? '' : '\n'}`;
      try {
        writeSync(r.stream === 'stderr' ? 2 : 1, line);
      } catch {
        // the reader went away (logs | head): nothing more to write
      }
    }
  };
  try {
    const first = readMore();
    emit(o.tail === undefined ? first : o.tail === 0 ? [] : first.slice(-o.tail));
    while (o.follow) {
      const ended = o.ended(); // looked at before the read, so the last lines are not missed
      emit(readMore());
      if (ended) break;
      await new Promise((r) => setTimeout(r, 100));
      if (fd !== undefined && fstatSync(fd).size < offset) offset = 0; // truncated
      if (fd !== undefined && replaced(file, fd)) {
        // --log-max-size: conmon closed the full log and renamed a new one over it. What the old
        // file still held is read first, then the new one from its start.
        emit(readMore());
        closeSync(fd);
        fd = undefined;
        offset = 0;
      }
    }
    emit(parser.flush());
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function replaced(file: string, fd: number): boolean {
  try {
    return statSync(file).ino !== fstatSync(fd).ino;
  } catch {
    return false; // between conmon's close and rename: looked at again on the next round
  }
}
