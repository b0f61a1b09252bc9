// Waiting for a process that is not this one's child to end (a container's init, a monitor).
//
// There is no waitpid for another's child, and Node exposes no pidfd: calling pidfd_open + poll
// through the FFI would cost its own load (~10 ms) for a wait that is usually shorter. So
// /proc/<pid>/stat is read at short intervals (1 ms, growing to 10 ms): a SIGKILLed init is gone
// within a few milliseconds and each look costs a few microseconds. A zombie counts as ended: its
// parent (conmon, an engine's shim, init) reaps it in its own time, and runc too takes a zombie
// for a stopped container. For comparison, `runc delete --force` sleeps 100 ms before it first
// looks whether the init it killed has ended.
import { isAlive } from './containers.js';

/** True once `pid` (started at `start`, clock ticks; '' for any) has ended, false on timeout.
 * `maxDelayMs`: the longest pause between two looks (1: every millisecond, for a wait that is on
 * the path of a command and should end within milliseconds, also on a loaded machine, where a
 * growing pause would overshoot the end by up to its length). */
export async function waitGone(pid: number, start: string, timeoutMs: number, maxDelayMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  let delay = 1;
  while (isAlive(pid, start)) {
    if (performance.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 1.5, maxDelayMs);
  }
  return true;
}

/**
 * SIGKILL to `pid` if it is still the process started at `start`, then waits until it has ended.
 * True when it is gone (or was already); false when it outlived `timeoutMs` (a frozen cgroup).
 */
export async function killAndWait(pid: number, start: string, timeoutMs: number, maxDelayMs?: number): Promise<boolean> {
  if (!isAlive(pid, start)) return true;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return !isAlive(pid, start); // ESRCH: ended in between
  }
  return waitGone(pid, start, timeoutMs, maxDelayMs);
}
