// The OCI hook front door: `tsrun hook <stage>` with the container's state JSON on stdin.
//
// stdout and stderr belong to the runtime, which shows a failing hook's stderr to the user: so
// success prints nothing, and a failure prints exactly one line and exits 1 (after the engine's
// transaction has unwound, so nothing stays wired and the runtime refuses to start the
// container). Everything else goes to the log file, every line carrying the container id, the
// stage and the time since the process started.
import { blameOf, userFacingMessage } from '../config/errors.js';
import type { State } from '../config/oci.js';
import { resolveSettings, type Settings, type SettingsOverrides } from '../config/settings.js';
import { createLogger, type Logger } from '../runtime/log.js';
import { writeStderr } from '../runtime/stdout.js';
import { checkStage, parseState, type Stage } from './state.js';
import { runStage, type StageOutcome } from './stages.js';
import { readAllSync } from './stdin.js';
import { HookTiming } from './timing.js';

export const HOOK_FAILED = 1;

export interface HookOptions {
  /** performance.now() when the entry file started running (for the start-up split). */
  entryMs?: number;
  /** Where the state is read from (default 0, stdin). */
  stdinFd?: number;
  env?: NodeJS.ProcessEnv;
  overrides?: SettingsOverrides;
  /** Where the one failure line goes (default: stderr). */
  writeErr?: (line: string) => void;
  /** Turn stray exceptions into one line and exit 1 (the real hook process only). */
  processHandlers?: boolean;
  /** Annotations of a bundle's config.json (tests). */
  readBundleAnnotations?: (bundle: string) => Record<string, string>;
  /** A process that runs this stage and exits (the hook's, and the build's code-cache warm-up of
   * a stage, which must run what the hook runs): the resolver is asked without loading node:net. */
  shortProcess?: boolean;
}

/**
 * The front door as the entry (shim/main.ts) and the start-up snapshot (scripts/snapshot-entry.cjs)
 * call it: `args` as typed after `tsrun`, i.e. ["hook", stage].
 */
export async function door(args: string[], entryMs?: number): Promise<number> {
  const code = await hookMain(args[1] ?? '', { entryMs, processHandlers: true, shortProcess: true });
  // Exit now rather than when the event loop runs dry: everything is done, the log is written
  // synchronously, and stdio to pipes and files is synchronous on Linux, so nothing is lost. A
  // natural exit first tears V8's heap down and runs the native addons' exit handlers: ~4 ms of
  // a cold process (measured), paid on every container start and stop. A stage that wired or tore
  // down has koffi loaded, and leaves through libc's _exit, which also skips Node's exit (its
  // threads stopped and joined, destructors: ~1.1 ms more).
  (await import('../runtime/koffi.js')).exitFast(code);
  process.exit(code);
}

/** Runs one hook invocation and returns the exit code; never throws. */
export async function hookMain(stageArg: string, opts: HookOptions = {}): Promise<number> {
  // A short process with nothing else to do: the resolver is asked without loading node:net.
  if (opts.shortProcess) (await import('../runtime/dns/client.js')).askResolverBlocking();
  const timing = new HookTiming(opts.entryMs);
  const writeErr = opts.writeErr ?? writeStderr;
  const fail = (err: unknown) => writeErr(`tsrun: hook ${printable(stageArg)}: ${userFacingMessage(err)}\n`);
  if (opts.processHandlers) installLastResort(fail);

  let settings: Settings | undefined;
  let log: Logger | undefined;
  let stage: Stage | undefined;
  let state: State | undefined;
  try {
    settings = resolveSettings(opts.env ?? process.env, opts.overrides);
    // Read and check the input before opening the log, so that every line names the container.
    let inputError: unknown;
    try {
      stage = checkStage(stageArg);
      state = parseState(readAllSync(opts.stdinFd ?? 0));
    } catch (err) {
      inputError = err;
    }
    log = hookLogger(settings, state?.id ?? null, stage ?? null, timing);
    if (inputError !== undefined) throw inputError;
    log.debug({ state, ...timing.summary() }, 'hook started');
    const outcome: StageOutcome = await runStage({ stage: stage!, state: state!, settings, log, timing, readBundleAnnotations: opts.readBundleAnnotations });
    log.info({ ...outcome, exitCode: 0, ...timing.summary() }, 'hook done');
    return 0;
  } catch (err) {
    fail(err);
    try {
      log ??= settings ? hookLogger(settings, state?.id ?? null, stage ?? null, timing) : undefined;
      log?.error({ err, exitCode: HOOK_FAILED, blame: blameOf(err), ...timing.summary() }, 'hook failed');
    } catch {
      // the log is best effort; the runtime has the line on stderr
    }
    return HOOK_FAILED;
  }
}

/** The hook's logger: createLogger bound to {containerId, stage}, plus `elapsedMs` on every line
 * (a child's log formatter also applies to the engine's own child loggers). */
function hookLogger(settings: Settings, containerId: string | null, stage: string | null, timing: HookTiming): Logger {
  const base = createLogger({ file: settings.logFile, level: settings.logLevel, debug: settings.debug, bindings: { containerId, stage } });
  return base.child({}, { formatters: { log: (obj: object) => ({ ...obj, elapsedMs: +timing.elapsed().toFixed(2) }) } });
}

/** A throw outside the awaited chain (a socket's error event, a stray rejection) still ends as
 * one line and exit 1: never a stack trace on the runtime's stderr. */
function installLastResort(fail: (err: unknown) => void): void {
  const handler = (err: unknown) => {
    fail(err);
    process.exit(HOOK_FAILED);
  };
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
}

function printable(stage: string): string {
  return /^[A-Za-z]{1,32}$/.test(stage) ? stage : JSON.stringify(stage.length > 32 ? `${stage.slice(0, 29)}...` : stage);
}
