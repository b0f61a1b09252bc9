// A Transaction makes multi-step setup all-or-nothing: each step registers its undo as soon as
// it has succeeded, and a failure anywhere undoes the completed steps in reverse order.
// Undo functions never throw past the transaction: their failures are logged and collected.
import { SystemError, isTsrunError } from '../config/errors.js';
import { silentLogger, type StepLogger } from './step-log.js';

export type Undo = () => Promise<void> | void;

// ---- fault injection (tests only) ----
// TSRUN_FAULT_KILL_AFTER=<phase>:<k> SIGKILLs this process right after the k-th step of that
// phase completes: `setup` counts Transaction steps (attach, network create, the shim's and the
// hook's setup), `teardown` counts undos run by a rollback and runAll steps (detach, network rm,
// the shim's teardown, the hook's poststop). It sits in the real code path so that a test can
// stop tsrun after every step in turn and prove that gc and a re-run recover from each. Read
// here, not at the front door, because it must work in every process, the hook included.
export type FaultPhase = 'setup' | 'teardown';

export function parseFault(text: string | undefined): { phase: FaultPhase; k: number } | undefined {
  const m = /^(setup|teardown):([1-9]\d*)$/.exec(text ?? '');
  return m ? { phase: m[1] as FaultPhase, k: Number(m[2]) } : undefined;
}

const stepsDone: Record<FaultPhase, number> = { setup: 0, teardown: 0 };
let stopped = false;
// Read at the first step, not when the module loads: the entry may start tsrun from a snapshot
// whose modules were evaluated when it was built, long before this process's environment existed.
let faults: { fault: ReturnType<typeof parseFault>; stopAfter: string | undefined } | undefined;

function faultPoint(phase: FaultPhase, description?: string): void {
  // TSRUN_FAULT_STOP_AFTER=<step description prefix> SIGSTOPs this process once, right after that
  // setup step: a test can then race another command (gc) against a half-done attach, and SIGCONT.
  // A signal sent meanwhile reaches its JS handler only at the event loop's next poll, after the
  // continued process has run on synchronously from here (see faultPause).
  faults ??= { fault: parseFault(process.env.TSRUN_FAULT_KILL_AFTER), stopAfter: process.env.TSRUN_FAULT_STOP_AFTER || undefined };
  const { fault, stopAfter } = faults;
  if (stopAfter !== undefined && !stopped && description?.startsWith(stopAfter)) {
    stopped = true;
    process.kill(process.pid, 'SIGSTOP');
  }
  if (fault === undefined || fault.phase !== phase) return;
  if (++stepsDone[phase] === fault.k) process.kill(process.pid, 'SIGKILL');
}

/**
 * TSRUN_FAULT_PAUSE_AT=<point>:<ms> has this process wait that long, with its event loop running
 * (signals reach their handlers), at a named point outside any Transaction step: a test can then
 * send a signal into that moment (run -d's "container recorded", shim/lifecycle/create.ts).
 * TSRUN_FAULT_PAUSE_AT=<point>:stop SIGSTOPs it there instead, without a turn of its event loop: a
 * signal sent then and followed by SIGCONT reaches libuv at once but its JS handler only at the
 * next poll of the event loop, as one that comes while tsrun runs synchronously does; a test of
 * that (the code's own look for a signal must let the loop poll, shim/supervise.ts pollSignals)
 * uses `stop`, and a test of the handler's effect alone the timed pause.
 */
export async function faultPause(point: string): Promise<void> {
  const m = /^(.+):(\d+|stop)$/.exec(process.env.TSRUN_FAULT_PAUSE_AT ?? '');
  if (m === null || m[1] !== point) return;
  if (m[2] === 'stop') process.kill(process.pid, 'SIGSTOP');
  else await new Promise((r) => setTimeout(r, Number(m[2])));
}

export class Transaction {
  private readonly undos: { description: string; undo: Undo }[] = [];
  private finished = false;

  constructor(private readonly log: StepLogger = silentLogger) {}

  /**
   * Runs `doFn`; once it succeeds, `undoFn` (given doFn's result) is registered. A thrown error
   * that is not already a TsrunError is wrapped in a SystemError naming the step.
   */
  async step<T>(description: string, doFn: () => Promise<T> | T, undoFn?: (result: T) => Promise<void> | void): Promise<T> {
    if (this.finished) throw new Error(`transaction already finished (step "${description}")`);
    const started = performance.now();
    let result: T;
    try {
      result = await doFn();
    } catch (err) {
      throw isTsrunError(err) ? err : new SystemError(description, err);
    }
    if (undoFn) this.undos.push({ description, undo: () => undoFn(result) });
    this.log.debug({ step: description, ms: +(performance.now() - started).toFixed(2) }, 'step done');
    faultPoint('setup', description);
    return result;
  }

  /** Register an undo for work done outside step(). */
  onRollback(description: string, undo: Undo): void {
    this.undos.push({ description, undo });
  }

  /** Keep everything: the transaction succeeded. */
  commit(): void {
    this.finished = true;
    this.undos.length = 0;
  }

  /** Undo completed steps in reverse order; returns the undo failures (never throws). */
  async rollback(): Promise<Error[]> {
    this.finished = true;
    const failures: Error[] = [];
    while (this.undos.length > 0) {
      const { description, undo } = this.undos.pop()!;
      try {
        await undo();
      } catch (err) {
        const wrapped = new SystemError(`undo ${description}`, err);
        failures.push(wrapped);
        this.log.warn({ step: description, err }, 'undo failed');
      }
      faultPoint('teardown');
    }
    return failures;
  }

  /** Run `body`; commit on success, roll back and rethrow the original error on failure. */
  static async run<T>(log: StepLogger | undefined, body: (tx: Transaction) => Promise<T>): Promise<T> {
    const tx = new Transaction(log);
    try {
      const result = await body(tx);
      tx.commit();
      return result;
    } catch (err) {
      await tx.rollback();
      throw err;
    }
  }
}

/**
 * Teardown runs every step even when some fail (a half-removed container must still lose its
 * lease), then reports all failures at once.
 */
export async function runAll(steps: { description: string; run: () => Promise<void> | void }[], log: StepLogger = silentLogger): Promise<void> {
  const failures: Error[] = [];
  for (const s of steps) {
    const started = performance.now();
    try {
      await s.run();
      log.debug({ step: s.description, ms: +(performance.now() - started).toFixed(2) }, 'teardown step done');
    } catch (err) {
      log.warn({ step: s.description, err }, 'teardown step failed');
      failures.push(isTsrunError(err) ? err : new SystemError(s.description, err));
    }
    faultPoint('teardown');
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    throw new SystemError('teardown', new AggregateError(failures), failures.map((f) => f.message).join('; '));
  }
}
