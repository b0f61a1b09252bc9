// conmon, the per-container monitor podman uses, started the way podman starts it: conmon runs
// `runc create` under itself, reports the container's pid on the sync pipe, and then stays as the
// container's parent (daemonized: the process tsrun started exits at once). It keeps the log
// (k8s-file), writes the exit status into the exit directory when the container ends, and then
// runs the exit command (`tsrun cleanup ID`), so the network is torn down with no tsrun running.
import { spawn } from 'node:child_process';
import { closeSync, constants as fsc, openSync, writeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { SystemError, UserError } from '../../config/errors.js';
import { DetachedRuncFailure, lastRuncError, type RuncPaths } from '../runc.js';
import { readPid, type ContainerPaths } from './record.js';
import { closeInherited } from '../../runtime/inherited-fds.js';
import { libcFunction, loadKoffi, type LibcFn } from '../../runtime/koffi.js';
import { pipeCloexec, reapIfEnded, spawnClosesTheRest, spawnDetached } from '../../runtime/spawn-detached.js';

export { killMonitor, readPid } from './record.js';

export interface ConmonOptions {
  id: string;
  paths: ContainerPaths;
  runc: RuncPaths;
  /** -t: conmon gives runc a console socket and holds the pty master. */
  tty: boolean;
  /** -i: conmon keeps a pipe to the container's stdin open (fed through its attach socket). */
  stdin: boolean;
  /** Bytes after which conmon starts the log afresh (it renames a new, empty file over it); -1 or
   * undefined: no limit. */
  logSizeMax?: number | undefined;
  /** Program and arguments conmon runs once the container has ended. */
  exitCommand: string[];
  env: NodeJS.ProcessEnv;
  conmonBinary?: string;
  timeoutMs?: number;
}

export interface ConmonStarted {
  /** The container's init, in the host's pid namespace. */
  pid: number;
  conmonPid: number;
}

export function conmonArgs(o: ConmonOptions): string[] {
  const p = o.paths;
  const args = [
    '--api-version', '1',
    '-c', o.id,
    '-u', o.id,
    '-n', o.id,
    '-r', o.runc.binary,
    '-b', p.bundle,
    '-p', p.pidFile,
    '-l', `k8s-file:${p.log}`,
    '--exit-dir', p.exitDir,
    '--persist-dir', p.persistDir,
    // The attach socket is made under here (a symlink to the bundle keeps its path short).
    '--socket-dir-path', p.dir,
    '--conmon-pidfile', p.conmonPidFile,
    // runc's private root and a JSON log, so a failure to create is reported in one line.
    '--runtime-arg', `--root=${o.runc.root}`,
    '--runtime-arg', '--log-format=json',
    '--runtime-arg', `--log=${p.runcLog}`,
    '--exit-command', o.exitCommand[0]!,
    ...o.exitCommand.slice(1).flatMap((a) => ['--exit-command-arg', a]),
  ];
  if (o.logSizeMax !== undefined && o.logSizeMax > 0) args.push('--log-size-max', String(o.logSizeMax));
  if (o.tty) args.push('-t');
  // The container's stdin stays open when an attach ends (tsrun attach's detach keys, or its
  // process ending): conmon closed it at the first attach's end, so a second attach, or a detach
  // with docker's ctrl-p ctrl-q, found its program's stdin at its end.
  else if (o.stdin) args.push('-i', '--leave-stdin-open');
  return args;
}

/** conmon started and held on its start pipe (spawnConmon). */
export interface ConmonHandle {
  /** Lets it go on: conmon forks into the background and runs `runc create`. Resolves with the
   * container's pid once created, or rejects with runc's (or conmon's) one-line error. */
  start(): Promise<ConmonStarted>;
  /** Ends the conmon process this one started, if it still runs (it has not forked yet, or is
   * waiting on its start pipe): for a rollback. The forked monitor's pid is in its pid file. */
  kill(): void;
  /** How it was started (the log's "detached container created" line says). */
  spawnedBy: 'posix_spawn' | 'child_process';
}

/**
 * Starts conmon held on its start pipe (_OCI_STARTPIPE, the pipe podman uses to move conmon into
 * a cgroup before it runs anything): conmon loads, parses its arguments and opens its log, then
 * waits for a byte there before it forks and runs `runc create`. So it can be started as soon as
 * the state directory exists, and its start-up (exec, its shared libraries, GLib; ~5-10 ms) runs
 * beside the rest of the setup; start() once the bundle is written. Until then conmon has made
 * nothing but its (empty) log file. (Were this process to die first, the pipe's end would let
 * conmon go on: with no bundle yet runc create fails and conmon exits; with one, the container
 * waits, created and never started, as when this process dies just after start(): gc and rm
 * remove it.)
 *
 * fd 3 is the sync pipe: conmon writes {"data": pid} (or a negative data and a message) when runc
 * create has finished. fd 4, the start pipe: one byte lets it go on. fd 2, its stderr, for the
 * message of a conmon that fails before it can answer. Started through libc's posix_spawn where
 * koffi loads (spawnThroughLibc), else through node:child_process (spawnThroughNode): the same
 * process, descriptors, environment and session either way.
 */
const EAGAIN = 11;
const EINTR = 4;

export function spawnConmon(o: ConmonOptions): ConmonHandle {
  const file = o.conmonBinary ?? 'conmon';
  const args = conmonArgs(o);
  const env = { ...o.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' };
  const viaLibc = spawnThroughLibc(file, args, env);
  return viaLibc !== undefined ? monitorHandle(o, viaLibc, 'posix_spawn') : monitorHandle(o, spawnThroughNode(file, args, env), 'child_process');
}

/** The conmon process this one started, whichever way. */
interface ConmonProcess {
  /** Sync pipe reading: `data` for each chunk, `end` at its end, `failed` when it could not be
   * started. The Node way reads from the start, the libc way from release() on. */
  listen(data: (text: string) => void, end: () => void, failed: (err: NodeJS.ErrnoException) => void): void;
  /** The start byte. */
  release(): void;
  /** What it wrote on its stderr so far. */
  stderr(): string;
  /** SIGKILL, unless it has ended. */
  kill(): void;
  /** This process's ends of the pipes, once conmon has answered (or failed). */
  close(): void;
}

function monitorHandle(o: ConmonOptions, proc: ConmonProcess, spawnedBy: ConmonHandle['spawnedBy']): ConmonHandle {
  let timer: NodeJS.Timeout | undefined;
  let timeoutHandler: () => void = () => undefined;
  let settled = false;

  const created = new Promise<ConmonStarted>((resolve, reject) => {
    let buf = '';
    let answered = false;
    const finish = (err: Error | undefined, value?: ConmonStarted) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.close();
      if (err) reject(err);
      else resolve(value!);
    };
    timeoutHandler = () => {
      proc.kill();
      finish(new SystemError(`start conmon for ${o.id}`, new Error(`no answer within ${(o.timeoutMs ?? 30_000) / 1000} s`)));
    };
    proc.listen(
      (d) => {
        if (answered) return;
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        let msg: { data?: number; message?: string };
        try {
          msg = JSON.parse(buf.slice(0, nl)) as { data?: number; message?: string };
        } catch {
          finish(new SystemError(`start conmon for ${o.id}`, new Error(`unexpected sync message ${JSON.stringify(buf.slice(0, 200))}`)));
          return;
        }
        if (typeof msg.data !== 'number' || msg.data <= 0) {
          finish(new DetachedRuncFailure(lastRuncError(o.paths.runcLog) ?? msg.message?.trim() ?? 'container create failed', false));
          return;
        }
        const pid = msg.data;
        answered = true;
        // Its pid file may land just after the message (seen once in 20 parallel starts on a loaded
        // machine): a few more looks before giving up.
        void waitPid(o.paths.conmonPidFile, 2_000).then((conmonPid) => {
          if (conmonPid === undefined) finish(new SystemError(`start conmon for ${o.id}`, new Error(`no pid in ${o.paths.conmonPidFile}`)));
          else finish(undefined, { pid, conmonPid });
        });
      },
      () => {
        if (answered) return; // the pid came: its pid file is being waited for
        // The pipe closed without a message: conmon failed before it could create anything.
        setTimeout(() => finish(new UserError(`conmon: ${lastLine(proc.stderr()) ?? lastRuncError(o.paths.runcLog) ?? 'exited without creating the container'}`)), 50);
      },
      (err) => finish(new UserError(`conmon: ${err.code === 'ENOENT' ? 'not installed (run scripts/setup-host.sh)' : err.message}`)),
    );
  });
  // A failure before start() (conmon not installed, gone) is reported by start(); until then no
  // unhandled rejection.
  created.catch(() => undefined);
  return {
    start() {
      if (!settled) {
        timer = setTimeout(timeoutHandler, o.timeoutMs ?? 30_000);
        proc.release();
      }
      return created;
    },
    kill() {
      proc.kill();
    },
    spawnedBy,
  };
}

/** node:child_process's way: its pipes are sockets (a socketpair each) read by the event loop. */
function spawnThroughNode(file: string, args: string[], env: NodeJS.ProcessEnv): ConmonProcess {
  // conmon outlives this process: nothing else of the caller's goes with it (runtime/inherited-fds.ts).
  closeInherited();
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env, detached: true });
  const sync = child.stdio[3] as Readable;
  const startPipe = child.stdio[4] as Writable;
  startPipe.on('error', () => undefined); // conmon gone: the sync pipe's end reports it
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    listen(data, end, failed) {
      child.once('error', failed);
      sync.on('data', (d: Buffer) => data(d.toString()));
      sync.once('end', end);
    },
    release: () => sendStartByte(startPipe),
    stderr: () => stderr,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    close() {
      sync.destroy();
      startPipe.destroy();
      child.stderr!.destroy();
      child.unref();
    },
  };
}

/**
 * libc's way (runtime/spawn-detached.ts): three pipes of its own, conmon started by posix_spawn
 * (nothing of this process is copied; glibc reports a failed exec), its ends closed here. This
 * process's read ends are new descriptions of the same pipes opened non-blocking
 * (/proc/self/fd/N), so conmon's ends stay blocking, as it expects: the sync pipe is then read
 * every millisecond from the start byte until conmon answers (a blocking read on libuv's pool
 * would keep process.exit() waiting for ever on a pool thread), its stderr only when it failed.
 * Undefined when koffi or a libc function is not to be had, or posix_spawn fails (conmon not
 * installed: node:child_process then reports it as before; `TSRUN_SPAWN=child_process` forces
 * that way); nothing is left open then. The
 * process started forks the monitor and exits just after the byte; it is reaped when conmon has
 * answered (close(), long after that exit as a rule; still running, it is left to init), and until
 * then it is a zombie at worst, so kill() never signals a pid that is another process's.
 */
function spawnThroughLibc(file: string, args: string[], env: NodeJS.ProcessEnv): ConmonProcess | undefined {
  // node:child_process's way forced, as for runc (docs/fast-path.md): tests run both.
  if (process.env.TSRUN_SPAWN === 'child_process') return undefined;
  const open: number[] = [];
  const closeAll = (fds: number[]) => {
    for (const fd of fds) {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
    }
  };
  let pid: number;
  let readFd: LibcFn;
  let errno: () => number;
  let syncRead: number;
  let errRead: number;
  let startWrite: number;
  let conmonEnds: number[];
  try {
    readFd = libcFunction('long read(int fd, void *buf, unsigned long count)');
    const koffi = loadKoffi();
    errno = () => koffi.errno();
    const [syncR, syncW] = pipeCloexec();
    open.push(syncR, syncW);
    const [startR, startW] = pipeCloexec();
    open.push(startR, startW);
    const [errR, errW] = pipeCloexec();
    open.push(errR, errW);
    syncRead = openSync(`/proc/self/fd/${syncR}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
    open.push(syncRead);
    errRead = openSync(`/proc/self/fd/${errR}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
    open.push(errRead);
    startWrite = startW;
    conmonEnds = [syncW, startR, errW, syncR, errR];
    // posix_spawn closes the rest in the child where glibc can (2.34 on); else as for Node's way.
    if (!spawnClosesTheRest()) closeInherited();
    const envList = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    pid = spawnDetached(file, [file, ...args], { fds: [undefined, undefined, errW, syncW, startR], env: envList, search: !file.includes('/') });
  } catch {
    closeAll(open);
    return undefined;
  }
  closeAll(conmonEnds);
  let onData: (text: string) => void = () => undefined;
  let onEnd: () => void = () => undefined;
  let poll: NodeJS.Timeout | undefined;
  let closed = false;
  let reaped = false;
  let stderr = '';
  const buf = Buffer.allocUnsafe(4096);
  // A chunk, null at the end (or on an error), undefined when nothing is there yet: libc's read,
  // since fs.readSync throws for EAGAIN, and the Error it builds (a stack trace, the uv error's
  // name) at every look of the poll cost run -d ~1 ms of CPU while runc create ran.
  const read = (fd: number): string | null | undefined => {
    const n = readFd(fd, buf, buf.length);
    if (n > 0) return buf.toString('utf8', 0, n);
    if (n >= 0) return null;
    const e = errno();
    return e === EAGAIN || e === EINTR ? undefined : null;
  };
  const readSyncPipe = () => {
    poll = undefined;
    for (;;) {
      if (closed) return;
      const text = read(syncRead);
      if (text === undefined) {
        poll = setTimeout(readSyncPipe, 1);
        return;
      }
      if (text === null) {
        onEnd();
        return;
      }
      onData(text);
    }
  };
  return {
    listen(data, end) {
      onData = data;
      onEnd = end;
    },
    release() {
      try {
        writeSync(startWrite, 's');
      } catch {
        // conmon gone (EPIPE): the sync pipe's end reports it
      }
      closeAll([startWrite]);
      startWrite = -1;
      readSyncPipe();
    },
    stderr() {
      if (!closed) {
        for (let text = read(errRead); typeof text === 'string'; text = read(errRead)) stderr += text;
      }
      return stderr;
    },
    kill() {
      if (reaped) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // not ours to signal (EPERM after a setuid exec): nothing to do
      }
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(poll);
      closeAll(startWrite >= 0 ? [syncRead, errRead, startWrite] : [syncRead, errRead]);
      try {
        reaped = reapIfEnded(pid);
      } catch {
        // left to init, as an orphan
      }
    },
  };
}

/**
 * The start byte, written straight into the pipe's descriptor (a socket of libuv's, non-blocking,
 * empty: one byte always fits): `end('s')` went through the stream's write, finish and shutdown
 * machinery, ~1 ms of CPU on run -d's path to conmon's fork (session 7's profiles). conmon reads
 * one byte (or the end) and closes its end; the socket is destroyed with the others once conmon
 * has answered. Where the descriptor is not to be had, or the write fails (conmon gone: EPIPE),
 * the stream's own end(), whose error the caller's listener takes.
 */
function sendStartByte(pipe: Writable): void {
  const fd = (pipe as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd === 'number' && fd >= 0) {
    try {
      if (writeSync(fd, 's') === 1) return;
    } catch {
      // EPIPE, EAGAIN: the stream reports it
    }
  }
  pipe.end('s');
}

/**
 * Starts conmon and waits for `runc create` under it: resolves with the container's pid, or
 * rejects with runc's (or conmon's) one-line error. The container is created, not started.
 */
export function startConmon(o: ConmonOptions): Promise<ConmonStarted> {
  return spawnConmon(o).start();
}

function lastLine(s: string): string | undefined {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.pop()?.replace(/^\[conmon:\w\]:\s*/, '');
}

/** readPid, looked at again every 2 ms until there is one or `timeoutMs` has passed. */
async function waitPid(file: string, timeoutMs: number): Promise<number | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const pid = readPid(file);
    if (pid !== undefined || performance.now() > deadline) return pid;
    await new Promise((r) => setTimeout(r, 2));
  }
}

