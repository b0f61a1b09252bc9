// tsrun-runc's own failures, reported the way runc reports its own, because engines read them
// the way they read runc's: with `--log FILE`, one line appended to FILE in `--log-format`
// (json: {"level":"error","msg":…,"time":…}, which containerd's go-runc and podman parse; text:
// logrus's `time="…" level=error msg="…"`) and the bare message on stderr; without `--log`, the
// formatted line on stderr. (runc 1.1 does exactly this in its fatal().)
import { appendFileSync } from 'node:fs';

export interface RuncLogTarget {
  /** --log FILE, when given. */
  file?: string | undefined;
  /** --log-format: json or text (runc's default). */
  format?: string | undefined;
}

/** runc's time stamps: RFC 3339 in UTC, to the second. */
function timestamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One log line in runc's format. */
export function formatRuncLogLine(level: string, msg: string, format: string | undefined, now = new Date()): string {
  if (format === 'json') return `${JSON.stringify({ level, msg, time: timestamp(now) })}\n`;
  return `time="${timestamp(now)}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

/** Reports one error line; never throws (an unwritable log still leaves the stderr line). */
export function reportRuncError(target: RuncLogTarget, msg: string, writeErr: (s: string) => void = (s) => void process.stderr.write(s)): void {
  const line = formatRuncLogLine('error', msg, target.format);
  if (target.file === undefined || target.file === '') {
    writeErr(line);
    return;
  }
  try {
    appendFileSync(target.file, line);
  } catch {
    // the engine still gets the stderr line
  }
  writeErr(`${msg}\n`);
}
