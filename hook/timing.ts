// Where a hook's start-to-exit time goes. A hook is a cold process on every container start, so
// its time is split three ways and logged on every line:
//   startup  process start → tsrun's entry file running (Node's own start-up, reading the entry)
//   load     → the hook's modules evaluated, plus every module imported lazily by the stage and
//            every native library opened on first use (runtime/load-clock.ts)
//   work     everything else: stdin, validation, the engine's netlink, nft and store work
// performance.now() counts from the process's time origin, which Node sets as it starts.
import { bookImport, loadedMs } from '../runtime/load-clock.js';

export class HookTiming {
  readonly startupMs: number;
  /** 'snapshot' when the process started from the door's start-up snapshot (set by
   * scripts/snapshot-entry.cjs), 'bundle' otherwise: a stale snapshot shows up in the log. */
  readonly startedFrom: string = (globalThis as Record<symbol, unknown>)[Symbol.for('tsrun.startedFrom')] === 'snapshot' ? 'snapshot' : 'bundle';
  private readonly loadMs: number;
  /** The process's load clock when this timing began: what it books from then on is loading. */
  private readonly clockAtStart = loadedMs();

  /** `entryMs`: performance.now() when the entry file began running; `mainMs`: when the hook's
   * main function began (its modules are loaded by then). */
  constructor(entryMs: number | undefined, mainMs: number = performance.now()) {
    this.startupMs = entryMs ?? mainMs;
    this.loadMs = Math.max(0, mainMs - this.startupMs);
  }

  /** Awaits a lazy import and books its time as module loading. */
  load<T>(importer: () => Promise<T>): Promise<T> {
    return bookImport(importer);
  }

  elapsed(): number {
    return performance.now();
  }

  summary(): { startedFrom: string; startupMs: number; loadMs: number; workMs: number; totalMs: number } {
    const total = performance.now();
    const load = this.loadMs + loadedMs() - this.clockAtStart;
    return { startedFrom: this.startedFrom, startupMs: round(this.startupMs), loadMs: round(load), workMs: round(Math.max(0, total - this.startupMs - load)), totalMs: round(total) };
  }
}

function round(ms: number): number {
  return +ms.toFixed(2);
}
