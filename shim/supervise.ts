// Supervision of `runc run`: signals sent to tsrun reach the container (runc run proxies what it
// receives to the container's init), and the container's end becomes tsrun's exit status.
//
// A stop request (SIGINT or SIGTERM) is forwarded, and if the container is still running after
// the stop timeout (docker's 10 s by default) it is killed: a PID 1 that ignores SIGTERM (a shell
// script, a program not written to be PID 1) must not make `tsrun run` hang forever. SIGKILL cannot
// be proxied by runc, so the kill goes through `runc kill` (the caller's `kill`).
import type { InheritingChild } from './spawn-inherit.js';
import { constants } from 'node:os';

export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
/**
 * The signals that abort a setup in progress: every forwarded one but SIGWINCH, which only says the
 * terminal changed size (its default action is to be ignored). A window resized while tsrun sets up
 * a container is no reason to tear the setup down; once the container runs it is forwarded.
 */
export const SETUP_INTERRUPTS: readonly NodeJS.Signals[] = FORWARDED_SIGNALS.filter((s) => s !== 'SIGWINCH');
const STOP_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set(['SIGINT', 'SIGTERM']);

/** docker's default: seconds between the stop signal and SIGKILL. */
export const DEFAULT_STOP_TIMEOUT_S = 10;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StopPolicy {
  /** Milliseconds from the first stop signal to `kill`. */
  stopTimeoutMs: number;
  /** Kills the container outright (runc kill <id> KILL). */
  kill(): Promise<void> | void;
  /** Told when the timeout fired. */
  onKill?(): void;
}

/** How long a held signal waits between two looks at SupervisionOptions.ready. */
export const HELD_SIGNAL_POLL_MS = 2;

export interface SupervisionOptions {
  /** Signals that arrived before the supervision began (after runc's spawn), forwarded first. */
  pending?: readonly NodeJS.Signals[];
  /** runc can take a signal: until then forwarded signals are held, and looked at again every
   * HELD_SIGNAL_POLL_MS while one is held. A `runc run` that has not yet installed its own handlers
   * (its Go runtime's first milliseconds) dies of a SIGINT or SIGTERM instead of passing it on. */
  ready?: () => boolean;
}

/** Resolves with runc's exit; forwards signals until then (held until `o.ready`), and kills after
 * the stop timeout, which runs from the stop signal's arrival, held or not. */
export function superviseChild(child: InheritingChild, stop?: StopPolicy, o: SupervisionOptions = {}): Promise<ChildExit> {
  let timer: NodeJS.Timeout | undefined;
  let held: NodeJS.Signals[] = [];
  let poll: NodeJS.Timeout | undefined;
  let ready = o.ready === undefined;
  const flush = () => {
    ready ||= o.ready!();
    if (!ready) return false;
    const now = held;
    held = [];
    for (const sig of now) child.kill(sig);
    return true;
  };
  const forward = (sig: NodeJS.Signals) => {
    held.push(sig);
    if (!flush() && poll === undefined) {
      poll = setInterval(() => {
        if (flush()) {
          clearInterval(poll);
          poll = undefined;
        }
      }, HELD_SIGNAL_POLL_MS);
    }
    if (stop && STOP_SIGNALS.has(sig) && timer === undefined) {
      timer = setTimeout(() => {
        stop.onKill?.();
        void Promise.resolve(stop.kill()).catch(() => undefined);
      }, stop.stopTimeoutMs);
    }
  };
  const done = () => {
    for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
    if (timer !== undefined) clearTimeout(timer);
    if (poll !== undefined) clearInterval(poll);
  };
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  for (const sig of o.pending ?? []) forward(sig);
  return new Promise<ChildExit>((resolve, reject) => {
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('exit', (code, signal) => {
      done();
      resolve({ code, signal });
    });
  });
}

/**
 * Resolves once the event loop has polled for I/O at least once since the call: a signal reaches
 * its JS handler only there (libuv's C handler writes it into a pipe the poll reads). One
 * setImmediate is not enough: called from a poll-phase callback (an fs or child-process callback,
 * where most awaits resume) it runs in the same iteration's check phase, with no poll in between,
 * so a signal that came during the synchronous stretch before it was still unseen. The second one
 * runs in the next iteration's check phase, after its poll (a zero-timeout epoll: microseconds).
 */
export async function pollSignals(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

export interface HeldSignals {
  /** The signals that arrived so far. */
  readonly held: readonly NodeJS.Signals[];
  /** Stop holding: from then on a signal has its default effect again. */
  release(): void;
}

/**
 * Holds signals while teardown runs: without a handler a second Ctrl-C would kill tsrun halfway
 * through removing the container's network (and, once it is done, would still turn the
 * container's exit status into tsrun's own death by signal).
 */
export function holdSignals(): HeldSignals {
  const held: NodeJS.Signals[] = [];
  const hold = (sig: NodeJS.Signals) => void held.push(sig);
  for (const sig of FORWARDED_SIGNALS) process.on(sig, hold);
  return {
    held,
    release: () => {
      for (const sig of FORWARDED_SIGNALS) process.off(sig, hold);
    },
  };
}

/** The shell's convention, as docker and podman use it: a signal N becomes 128+N. */
export function exitStatusOf(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  const signo = exit.signal ? constants.signals[exit.signal] : undefined;
  return 128 + (signo ?? 0);
}
