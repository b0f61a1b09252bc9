// Where a hook's start-to-exit time goes. A hook is a cold process on every container start, so
// its time is split three ways and logged on every line:
//   startup  process start → tsrun's entry file running (Node's own start-up, reading the entry)
//   load     → the hook's modules evaluated, plus every module imported lazily by the stage
//   work     everything else: stdin, validation, the engine's netlink, nft and store work
// performance.now() counts from the process's time origin, which Node sets as it starts.
export class HookTiming {
  readonly startupMs: number;
  /** 'snapshot' when the process started from the door's start-up snapshot (set by
   * scripts/snapshot-entry.cjs), 'bundle' otherwise: a stale snapshot shows up in the log. */
  readonly startedFrom: string = (globalThis as Record<symbol, unknown>)[Symbol.for('tsrun.startedFrom')] === 'snapshot' ? 'snapshot' : 'bundle';
  private loadMs: number;

  /** `entryMs`: performance.now() when the entry file began running; `mainMs`: when the hook's
   * main function began (its modules are loaded by then). */
  constructor(entryMs: number | undefined, mainMs: number = performance.now()) {
    this.startupMs = entryMs ?? mainMs;
    this.loadMs = Math.max(0, mainMs - this.startupMs);
  }

  /** Awaits a lazy import and books its time as module loading. */
  async load<T>(importer: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await importer();
    } finally {
      this.loadMs += performance.now() - t;
    }
  }

  elapsed(): number {
    return performance.now();
  }

  summary(): { startedFrom: string; startupMs: number; loadMs: number; workMs: number; totalMs: number } {
    const total = performance.now();
    return { startedFrom: this.startedFrom, startupMs: round(this.startupMs), loadMs: round(this.loadMs), workMs: round(Math.max(0, total - this.startupMs - this.loadMs)), totalMs: round(total) };
  }
}

function round(ms: number): number {
  return +ms.toFixed(2);
}
