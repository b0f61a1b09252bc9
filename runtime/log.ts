// Logging: JSON lines to a file, written synchronously because tsrun's processes are short and a
// hook's process may be gone a moment after its last line (pino's docs/asynchronous.md says the
// same). stdout/stderr belong to the user (or, for a hook, to the runtime), so the file is the
// default; `--debug` adds readable lines on stderr.
//
// The lines are pino's format ({"level":30,"time":…,"pid":…,<bindings>,<fields>,"msg":"…"}, an
// Error under `err` as {type, message, stack, …}), so existing readers and tools keep working. It
// is not pino itself: every front door is a cold process, and requiring pino (with sonic-boom,
// thread-stream, worker_threads, stream and assert) cost a cold start ~20 ms, more than most
// commands' own work. What tsrun uses of it is this file: levels, child loggers with bindings, a
// per-line formatter (the hook's elapsedMs), and synchronous sinks.
import { openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { mkdirPrivate } from './files.js';
import type { LogLevel } from '../config/settings.js';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
type Level = keyof typeof LEVELS;

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface ChildOptions {
  /** Rewrites the fields of every line (this logger's and its children's), as pino's formatters.log. */
  formatters?: { log?: (obj: Record<string, unknown>) => Record<string, unknown> };
}

export interface Logger {
  readonly level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>, opts?: ChildOptions): Logger;
}

/** Where lines go: each sink takes the lines at or above its own level. */
export interface LogSink {
  level: number;
  write(line: string): void;
}

export interface LogOptions {
  file: string;
  level: LogLevel;
  debug: boolean;
  bindings?: Record<string, unknown>;
}

export function createLogger(opts: LogOptions): Logger {
  const sinks: LogSink[] = [];
  const file = fileSink(opts.file, levelValue(opts.level === 'silent' ? 'fatal' : opts.level));
  if (file) sinks.push(file);
  if (opts.debug) sinks.push(stderrSink(LEVELS.debug));
  const level = opts.debug ? 'debug' : opts.level;
  if (sinks.length === 0) return makeLogger('silent', [], {}, undefined);
  return makeLogger(level, sinks, { pid: process.pid, ...opts.bindings }, undefined);
}

/** A logger over the given sinks (the agent: stderr and the file). */
export function loggerTo(level: LogLevel | 'debug', sinks: LogSink[], bindings: Record<string, unknown> = {}): Logger {
  return makeLogger(level, sinks, { pid: process.pid, ...bindings }, undefined);
}

/** The log file, opened for appending; undefined when it cannot be (an unwritable log must not
 * stop a container: the caller goes on without it). */
export function fileSink(file: string, level: number): LogSink | undefined {
  let fd: number;
  try {
    mkdirPrivate(path.dirname(file));
    fd = openSync(file, 'a');
  } catch {
    return undefined;
  }
  // One write(2) per line on an O_APPEND descriptor: lines of concurrent processes never
  // interleave. The descriptor lives as long as the process, as pino's destination did.
  return { level, write: (line) => void writeSync(fd, line) };
}

export function stderrSink(level: number): LogSink {
  return { level, write: (line) => void process.stderr.write(humanLine(line)) };
}

export function levelValue(level: string): number {
  return (LEVELS as Record<string, number>)[level] ?? LEVELS.info;
}

type Formatter = (obj: Record<string, unknown>) => Record<string, unknown>;

function makeLogger(level: string, sinks: LogSink[], bindings: Record<string, unknown>, format: Formatter | undefined): Logger {
  const threshold = levelValue(level);
  // The bindings are serialized once per logger, not per line, and only once it writes one: an
  // attach makes a child logger whose lines are mostly below the level.
  let bound: string | undefined;
  const method = (name: Level): LogFn => {
    const value = LEVELS[name];
    if (value < threshold || sinks.every((s) => value < s.level)) return () => {};
    return ((a: unknown, b?: string) => {
      let fields: Record<string, unknown>;
      let msg: string | undefined;
      if (typeof a === 'string') {
        fields = {};
        msg = a;
      } else if (a instanceof Error) {
        fields = { err: a };
        msg = b ?? a.message;
      } else {
        fields = (a ?? {}) as Record<string, unknown>;
        msg = b;
      }
      if (format) fields = format(fields);
      const body = serializeFields(fields);
      bound ??= serializeFields(bindings);
      let line = `{"level":${value},"time":${Date.now()}`;
      if (bound) line += `,${bound}`;
      if (body) line += `,${body}`;
      if (msg !== undefined) line += `,"msg":${JSON.stringify(msg)}`;
      line += '}\n';
      for (const s of sinks) if (value >= s.level) s.write(line);
    }) as LogFn;
  };
  return {
    level,
    trace: method('trace'),
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
    fatal: method('fatal'),
    isLevelEnabled: (l) => levelValue(l) >= threshold,
    child: (more, opts) => {
      const own = opts?.formatters?.log;
      const chained: Formatter | undefined = own && format ? (o) => own(format(o)) : (own ?? format);
      return makeLogger(level, sinks, { ...bindings, ...more }, chained);
    },
  };
}

/** `"a":1,"b":"x"` (no braces); Errors become {type, message, stack, …own fields}. */
function serializeFields(fields: Record<string, unknown>): string {
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined);
  if (keys.length === 0) return '';
  let json: string;
  try {
    json = JSON.stringify(fields, replacer(new Set()));
  } catch {
    json = JSON.stringify({ logError: 'fields could not be serialized' });
  }
  return json.slice(1, -1);
}

function replacer(seen: Set<unknown>): (this: unknown, key: string, value: unknown) => unknown {
  return function (this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return value.toString();
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    if (value instanceof Error) return serializeError(value);
    return value;
  };
}

function serializeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.constructor?.name ?? 'Error', message: err.message, stack: err.stack };
  for (const [k, v] of Object.entries(err)) if (!(k in out)) out[k] = v;
  if (err.cause !== undefined && !('cause' in out)) out.cause = err.cause;
  return out;
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
