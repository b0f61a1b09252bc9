// Logging: pino JSON lines to a file, written synchronously because tsrun's processes are short
// and a hook's process may be gone a moment after its last line (pino docs/asynchronous.md).
// No transports: they start worker threads, which a cold hook process cannot afford.
// stdout/stderr belong to the user (or, for a hook, to the runtime), so the file is the default;
// `--debug` adds readable lines on stderr.
import { mkdirPrivate } from './files.js';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config/settings.js';

export type { Logger };

export interface LogOptions {
  file: string;
  level: LogLevel;
  debug: boolean;
  bindings?: Record<string, unknown>;
}

export function createLogger(opts: LogOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  try {
    mkdirPrivate(path.dirname(opts.file));
    streams.push({ level: opts.level === 'silent' ? 'fatal' : opts.level, stream: pino.destination({ dest: opts.file, sync: true, mkdir: true }) });
  } catch {
    // An unwritable log must not stop a container: keep going without the file.
  }
  if (opts.debug) streams.push({ level: 'debug', stream: { write: (line: string) => process.stderr.write(humanLine(line)) } });
  const level = opts.debug ? 'debug' : opts.level;
  if (streams.length === 0) return pino({ level: 'silent' });
  return pino({ level, base: { pid: process.pid, ...opts.bindings } }, pino.multistream(streams));
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** `12:00:01.123 DEBUG step done step="create veth" ms=0.8` */
export function humanLine(jsonLine: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const { time, level, msg, pid: _pid, hostname: _hostname, ...rest } = rec;
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const fields = Object.entries(rest)
    .map(([k, val]) => `${k}=${typeof val === 'string' ? JSON.stringify(val) : JSON.stringify(val)}`)
    .join(' ');
  return `${when} ${LEVEL_NAMES[level as number] ?? level} ${String(msg ?? '')}${fields ? ` ${fields}` : ''}\n`;
}
