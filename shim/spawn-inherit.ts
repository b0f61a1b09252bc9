// Starts a program with tsrun's own stdin, stdout and stderr (`runc run`: runc hands these very
// descriptors to the container) without loading child_process when it can.
//
// Why: `tsrun run` starts one program on its happy path, and requiring child_process loads net,
// stream, dgram and their internals, ~5 ms of a cold process (measured: node requiring
// child_process and spawning /bin/true with inherited stdio, 43.5 ms, against 38.0 ms through the
// process handle directly, medians of 21 interleaved runs). A child with inherited stdio needs
// none of that: child_process's ChildProcess is a thin layer over Node's process handle
// (process.binding('process_wrap').Process), and this file is the same layer for this one case.
//
// process.binding is deprecated in Node's documentation (DEP0111), not removed, and emits a
// warning only under --pending-deprecation; when the binding is missing, looks different, or that
// flag is set, the child is started by child_process.spawn as before. The contract (the events and
// kill() below, as ChildProcess has them) is tested on both paths (test/unit/shim/spawn-inherit).
import { EventEmitter } from 'node:events';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** What supervising a child needs of it (a subset of ChildProcess's API). */
export interface InheritingChild {
  readonly pid?: number | undefined;
  /** false when the child is gone (ESRCH), as ChildProcess.kill. */
  kill(signal: NodeJS.Signals): boolean;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
}

interface ProcessHandle {
  pid?: number;
  onexit: (exitCode: number, signalCode: string) => void;
  spawn(options: { file: string; args: string[]; envPairs: string[]; stdio: { type: 'fd'; fd: number }[]; detached: boolean; windowsHide: boolean }): number;
  kill(signal: number): number;
  close(): void;
}

type ProcessCtor = new () => ProcessHandle;

let ctor: ProcessCtor | null | undefined;

/** Node's process handle class, or null when it cannot be used here. */
function processHandle(): ProcessCtor | null {
  if (ctor !== undefined) return ctor;
  ctor = null;
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
  // Node wraps process.binding (a function named `deprecated`) to warn under pending deprecation:
  // the flag, and NODE_PENDING_DEPRECATION=1, which the flags do not show.
  const own = (process as unknown as { binding?: unknown }).binding;
  if (flags.includes('pending-deprecation') || typeof own !== 'function' || own.name !== 'binding' || process.env.TSRUN_SPAWN === 'child_process') return ctor;
  try {
    const binding = (process as unknown as { binding(name: string): { Process?: unknown } }).binding('process_wrap');
    const P = binding.Process as ProcessCtor | undefined;
    if (typeof P === 'function' && typeof P.prototype.spawn === 'function' && typeof P.prototype.kill === 'function') ctor = P;
  } catch {
    // no such binding in this Node
  }
  return ctor;
}

/** libuv's error name for a negative errno, e.g. -2 → ENOENT. */
function errnoName(err: number): string {
  return Object.entries(constants.errno).find(([, n]) => n === -err)?.[0] ?? `E${-err}`;
}

class HandleChild extends EventEmitter implements InheritingChild {
  pid: number | undefined;
  private exited = false;

  constructor(private readonly handle: ProcessHandle, file: string, args: readonly string[]) {
    super();
    handle.onexit = (exitCode, signalCode) => {
      this.exited = true;
      handle.close();
      const signal = signalCode ? (signalCode as NodeJS.Signals) : null;
      this.emit('exit', signal ? null : exitCode, signal);
    };
    const envPairs = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    const err = handle.spawn({ file, args: [file, ...args], envPairs, stdio: [0, 1, 2].map((fd) => ({ type: 'fd' as const, fd })), detached: false, windowsHide: false });
    if (err !== 0) {
      // As ChildProcess: the failure is an 'error' event, after the caller has subscribed.
      this.exited = true;
      handle.close();
      const code = errnoName(err);
      const error = Object.assign(new Error(`spawn ${file} ${code}`), { errno: err, code, syscall: `spawn ${file}`, path: file, spawnargs: [...args] });
      process.nextTick(() => this.emit('error', error));
      return;
    }
    this.pid = handle.pid;
  }

  kill(signal: NodeJS.Signals): boolean {
    if (this.exited) return false;
    const signo = constants.signals[signal];
    if (signo === undefined) throw new TypeError(`unknown signal ${signal}`);
    const err = this.handle.kill(signo);
    if (err === 0) return true;
    if (errnoName(err) !== 'ESRCH') process.nextTick(() => this.emit('error', Object.assign(new Error(`kill ${errnoName(err)}`), { errno: err, code: errnoName(err), syscall: 'kill' })));
    return false;
  }
}

/** `file args…` with tsrun's stdio, in tsrun's environment and working directory. */
export function spawnInherit(file: string, args: readonly string[]): InheritingChild {
  const P = processHandle();
  if (P === null) return spawn(file, [...args], { stdio: 'inherit' });
  return new HandleChild(new P(), file, args);
}
