// What every CLI command does first: settings from the flags and the environment, and the logger
// (the look at the DNS resolver that follows is setup(), shim/setup-supervised.ts). Shared by the
// whole CLI (shim/cli.ts) and `run`'s and `rm`'s doors, which must not load the CLI.
import { isLogLevel, resolveSettings, type Settings } from '../config/settings.js';
import { UserError, isTsrunError, userFacingMessage } from '../config/errors.js';
import { createLogger, type Logger } from '../runtime/log.js';
import { writeStderr } from '../runtime/stdout.js';

/** tsrun itself failed (as docker and podman say it): the container never ran or its status is unknown. */
export const EXIT_TSRUN_FAILED = 125;

export interface GlobalFlags {
  root?: string;
  store?: string;
  log?: string;
  logLevel?: string;
  debug?: boolean;
}

/** The settings and the logger. setup() (shim/setup-supervised.ts) adds the resolver's supervision;
 * the plain run doors do it themselves, loading the resolver's client only when the resolver died
 * (shim/run-door-plain.ts). */
export function settingsAndLog(g: GlobalFlags): { settings: Settings; log: Logger } {
  if (g.logLevel !== undefined && !isLogLevel(g.logLevel)) throw new UserError(`invalid --log-level ${g.logLevel}`);
  const settings = resolveSettings(process.env, { root: g.root, store: g.store, log: g.log, logLevel: g.logLevel, debug: g.debug });
  const log = createLogger({ file: settings.logFile, level: settings.logLevel, debug: settings.debug });
  return { settings, log };
}

/** A command failed: its one line on stderr (unless already printed), and the exit code. */
export function reportFailure(err: unknown): number {
  if ((err as { alreadyReported?: boolean }).alreadyReported !== true) sayOnStderr(`tsrun: ${userFacingMessage(err)}\n`);
  if (!isTsrunError(err) && process.env.TSRUN_DEBUG === '1') sayOnStderr(`${(err as Error).stack}\n`);
  const code = (err as { exitCode?: unknown }).exitCode;
  return typeof code === 'number' ? code : EXIT_TSRUN_FAILED;
}

/**
 * A failure line on fd 2, written whole before the exit that follows (runtime/stdout.ts): through
 * process.stderr it was queued when stderr is a full non-blocking pipe (a pager, a log collector
 * behind), and process.exit or _exit right after dropped it, so the command failed without saying
 * why. A reader that is gone (EPIPE) loses the line; the exit status still tells.
 */
export function sayOnStderr(text: string): void {
  try {
    writeStderr(text);
  } catch {
    // nobody reads stderr any more
  }
}

/** `text` on stdout, without building process.stdout (runtime/stdout.ts). */
export { writeStdout } from '../runtime/stdout.js';
