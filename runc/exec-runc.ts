// Running runc from tsrun-runc's Node side (the shell front execs runc directly for everything
// else). runc gets tsrun-runc's own stdio and, for `--preserve-fds N`, descriptors 3…N+2 at the
// same numbers, since runc hands exactly those to the container; signals sent to tsrun-runc are
// passed on while runc runs, so the engine's kill reaches runc as if it had started it itself.
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';

export interface RuncOutcome {
  /** runc's exit status, or undefined when a signal ended it. */
  code?: number | undefined;
  signal?: NodeJS.Signals | undefined;
}

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** runc with stdio passed through; resolves when it exits. */
export function runRunc(binary: string, args: readonly string[], opts: { preserveFds?: number } = {}): Promise<RuncOutcome> {
  const stdio: number[] = [0, 1, 2];
  for (let fd = 3; fd < 3 + (opts.preserveFds ?? 0); fd++) stdio.push(fd);
  return new Promise((resolve) => {
    const child = spawn(binary, [...args], { stdio });
    const forward = (sig: NodeJS.Signals) => () => void child.kill(sig);
    const handlers = FORWARDED.map((sig) => [sig, forward(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    const done = (outcome: RuncOutcome) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(outcome);
    };
    child.once('error', (err) => {
      process.stderr.write(`tsrun-runc: cannot run ${binary}: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`);
      done({ code: 127 });
    });
    child.once('exit', (code, signal) => done({ code: code ?? undefined, signal: signal ?? undefined }));
  });
}

/** runc's output for a query (state), or undefined when it fails. */
export function queryRunc(binary: string, args: readonly string[]): string | undefined {
  const r = spawnSync(binary, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return r.status === 0 ? r.stdout : undefined;
}

/** Ends tsrun-runc the way runc ended: the same status, or the same signal. */
export function exitLike(outcome: RuncOutcome): number {
  if (outcome.signal !== undefined) {
    process.removeAllListeners(outcome.signal);
    process.kill(process.pid, outcome.signal);
    return 128 + (signalNumber(outcome.signal) ?? 1);
  }
  return outcome.code ?? 1;
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return (os.constants.signals as Record<string, number>)[sig];
}
