// The options of `run` that only a detached container has (its monitor keeps the log, its record
// says how `stop` ends it): added to `run` here, so `create` (which copies run's options) gets
// them too and shim/cli.ts stays as it is. A foreground `run` refuses them in one line.
import type { Command } from 'commander';
import { UserError } from '../../config/errors.js';
import { parseSizeOrUnlimited } from '../../config/units.js';
import { DEFAULT_STOP_TIMEOUT_S } from '../supervise.js';
import { parseSignal } from './signal-names.js';

/** conmon starts the log afresh when it would grow past this (state lives in /run: RAM). */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_STOP_SIGNAL = 'SIGTERM';
export { DEFAULT_STOP_TIMEOUT_S };

export interface DetachOptions {
  tty: boolean;
  stdin: boolean;
  /** conmon's --log-size-max; -1: no limit. */
  logMaxBytes: number;
  /** What `stop` sends first (SIGKILL follows after the stop timeout). */
  stopSignal: string;
  /** `--rm`: the container is removed once it has ended (its exit command, stop, gc). */
  autoRemove?: boolean | undefined;
}

export function addDetachOnlyOptions(run: Command): void {
  run
    .option('--log-max-size <size>', 'detached: start the log afresh when it reaches SIZE (default 10m; -1: no limit)')
    .option('--stop-signal <signal>', 'detached: the signal tsrun stop sends first (default SIGTERM)');
  // Checked before run's action: a foreground container has no monitor log and no record for stop.
  run.hook('preAction', (cmd) => {
    const f = cmd.opts() as Record<string, unknown>;
    if (f.detach === true) return;
    const given = [f.logMaxSize !== undefined && '--log-max-size', f.stopSignal !== undefined && '--stop-signal'].filter(Boolean);
    if (given.length > 0) throw new UserError(`${given.join(' and ')} apply to detached containers only: add -d, or use tsrun create`);
  });
}

export function detachOptionsOf(f: Record<string, unknown>): DetachOptions {
  const size = f.logMaxSize === undefined ? undefined : String(f.logMaxSize);
  return {
    tty: f.tty === true,
    stdin: f.interactive === true,
    logMaxBytes: size === undefined ? DEFAULT_LOG_MAX_BYTES : parseSizeOrUnlimited('--log-max-size', size),
    stopSignal: f.stopSignal === undefined ? DEFAULT_STOP_SIGNAL : parseSignal(String(f.stopSignal)),
    ...(f.rm === true ? { autoRemove: true } : {}),
  };
}
