// runc started before the network is attached, held at its first hook until it is.
//
// `runc run` spends most of its ~20 ms before its hooks: its own start-up, the cgroups, `runc init`
// started and moved into the container's namespaces, the mounts (measured: the createRuntime hook
// runs 16-25 ms after runc's exec, runc's whole run of /bin/true 21-29 ms). A foreground run that
// wires a network can attach meanwhile (a cold attach is ~11 ms), if nothing of the container runs
// before the attach is done: runc runs its prestart and createRuntime hooks after the mounts and
// before pivot_root, and nothing of the container's own program before they all return. So the
// spec gets one more hook, first of all (a spec's own hooks still see the network attached): a
// shell that reads one line from a pipe this process holds and succeeds only on "go".
//
//  - The pipe's two ends are this process's (close-on-exec: runc and the container inherit
//    neither); the hook opens the read end by /proc/<pid>/fd/<n>. Written "go" when the attach is
//    done, the setup's last signal check passed and the container's resolv.conf written; the ends
//    are closed only once runc has exited, so the hook can never find them gone on the good path.
//  - Fail-closed: this process killed before "go" closes both ends, and the hook reads EOF (or,
//    had it not opened the pipe yet, finds no /proc/<pid>/fd/<n>): it fails, and runc fails the
//    container's creation and removes it (runc prints its line on the dead run's stderr). The
//    network is never half there for a running container: the container's program has not started.
//  - A setup that fails (the attach refused, a signal) kills runc (SIGKILL: a failed hook would make
//    runc print a second line after tsrun's own), waits for it, and rolls back as before; runc
//    killed before its hooks leaves at most its cgroup and state, which the rollback removes as it
//    does after any runc killed mid-way ('remove cgroup', 'remove runc state').
//
// Used only where koffi is already loaded (libc's pipe2; a run that wired a network) and /bin/sh
// exists; anything else and the run attaches first, as before (makeGate returns undefined).
import { closeSync, existsSync, readlinkSync, writeSync } from 'node:fs';
import { koffiLoaded, libcFunction } from '../runtime/koffi.js';
import type { ChildExit } from './supervise.js';
import type { InheritingChild } from './spawn-inherit.js';

/** An OCI hook (runtime-spec's `hooks.*[]` entry). */
export interface GateHook {
  path: string;
  args: string[];
}

export interface RuncGate {
  /** The hook to run first, before the spec's own. */
  readonly hook: GateHook;
  /** Lets runc go on: the container may start. */
  open(): void;
  /** Closes both ends (once runc has exited). Idempotent. */
  close(): void;
}

const O_CLOEXEC = 0o2000000;
const SHELL = '/bin/sh';

/** A gate, or undefined where there can be none here (no koffi loaded, no /bin/sh, pipe2 failed,
 * TSRUN_RUNC_GATE=0): the caller then attaches before starting runc. */
export function makeGate(): RuncGate | undefined {
  if (process.env.TSRUN_RUNC_GATE === '0' || !koffiLoaded() || !existsSync(SHELL)) return undefined;
  let pid: string;
  try {
    // The pid as the /proc the hook opens it through sees it (runc and its hooks share this
    // process's mount namespace), not process.pid, which is in this process's pid namespace.
    pid = readlinkSync('/proc/self');
  } catch {
    return undefined;
  }
  if (!/^[0-9]+$/.test(pid)) return undefined;
  const fds = new Int32Array(2);
  if (libcFunction('int pipe2(_Out_ int *fds, int flags)')(fds, O_CLOEXEC) !== 0) return undefined;
  const [readEnd, writeEnd] = [fds[0]!, fds[1]!];
  let closed = false;
  return {
    // The terminal's signals ignored: a Ctrl-C reaches the whole foreground process group, runc and
    // this hook with tsrun; a hook it ended made runc fail the creation and print a line of its own
    // beside tsrun's. tsrun aborts the setup itself and closes the pipe, which ends the hook.
    hook: { path: SHELL, args: ['sh', '-c', 'trap "" INT QUIT TSTP HUP TERM; read -r x < "$0" && [ "$x" = go ]', `/proc/${pid}/fd/${readEnd}`] },
    open() {
      writeSync(writeEnd, 'go\n');
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(writeEnd);
      closeSync(readEnd);
    },
  };
}

/** The spec's hooks with the gate first: before the prestart hooks when there are any (runc runs
 * them first), else before the createRuntime hooks (the same point, after the mounts, before
 * pivot_root). */
export function withGateHook<H>(hooks: Record<string, H[]> | undefined, hook: H): Record<string, H[]> {
  const out: Record<string, H[]> = { ...hooks };
  const point = (hooks?.prestart?.length ?? 0) > 0 ? 'prestart' : 'createRuntime';
  out[point] = [hook, ...(hooks?.[point] ?? [])];
  return out;
}

/**
 * The child with its end remembered from now: a listener added after it ended hears it at once
 * (superviseChild listens only once the setup is done, and runc may have failed before that).
 * `exited` settles with its end either way (an `error` as a rejection).
 */
export function rememberEnd(child: InheritingChild): InheritingChild & { readonly exited: Promise<ChildExit> } {
  type End = { exit: ChildExit } | { error: Error };
  let end: End | undefined;
  const exitListeners: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];
  const errorListeners: ((err: Error) => void)[] = [];
  let settle!: (e: End) => void;
  const ended = new Promise<End>((resolve) => (settle = resolve));
  const finish = (e: End) => {
    if (end !== undefined) return;
    end = e;
    settle(e);
    if ('exit' in e) for (const l of exitListeners.splice(0)) l(e.exit.code, e.exit.signal);
    else for (const l of errorListeners.splice(0)) l(e.error);
  };
  child.once('exit', (code, signal) => finish({ exit: { code, signal } }));
  child.once('error', (error) => finish({ error }));
  const wrapped = {
    get pid() {
      return child.pid;
    },
    kill: (signal: NodeJS.Signals) => child.kill(signal),
    once(event: 'exit' | 'error', listener: (...args: never[]) => void) {
      if (event === 'exit') {
        const l = listener as (code: number | null, signal: NodeJS.Signals | null) => void;
        if (end !== undefined && 'exit' in end) {
          const { code, signal } = end.exit;
          queueMicrotask(() => l(code, signal));
        } else exitListeners.push(l);
      } else {
        const l = listener as (err: Error) => void;
        if (end !== undefined && 'error' in end) {
          const { error } = end;
          queueMicrotask(() => l(error));
        } else errorListeners.push(l);
      }
      return wrapped;
    },
    exited: ended.then((e) => ('exit' in e ? e.exit : Promise.reject(e.error))),
  };
  // Never an unhandled rejection: callers that only listen read the error through `once`.
  wrapped.exited.catch(() => undefined);
  return wrapped as InheritingChild & { readonly exited: Promise<ChildExit> };
}
