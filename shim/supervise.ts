// Supervision of `runc run`: signals sent to tsrun reach the container (runc run proxies what it
// receives to the container's init), and the container's end becomes tsrun's exit status.
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves with runc's exit; forwards signals until then. */
export function superviseChild(child: ChildProcess): Promise<ChildExit> {
  const forward = (sig: NodeJS.Signals) => {
    child.kill(sig);
  };
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  return new Promise<ChildExit>((resolve, reject) => {
    child.once('error', (err) => {
      for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
      resolve({ code, signal });
    });
  });
}

/** The shell's convention, as docker and podman use it: a signal N becomes 128+N. */
export function exitStatusOf(exit: ChildExit): number {
  if (exit.code !== null) return exit.code;
  const signo = exit.signal ? constants.signals[exit.signal] : undefined;
  return 128 + (signo ?? 0);
}
