// Where a benchmark run is: which suite of how many, which step, time spent, and an estimate of
// what is left, from how long each suite took the last time it ran with the same BENCH_RUNS
// (kept in rootfs-fixtures/.cache/bench-durations.json). Written to stderr, so stdout keeps
// nothing but the results.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from './lib.js';

const HISTORY = path.join(PROJECT_ROOT, 'rootfs-fixtures/.cache/bench-durations.json');

export class Progress {
  private readonly started = performance.now();
  private current: { name: string; index: number; started: number; steps: number } | undefined;
  private readonly history: Record<string, number>;
  private readonly took: Record<string, number> = {};

  constructor(
    private readonly suites: string[],
    private readonly runs: number,
    private readonly write: (line: string) => void = (l) => void process.stderr.write(`${l}\n`),
  ) {
    this.history = readHistory();
  }

  startSuite(name: string): void {
    this.current = { name, index: this.suites.indexOf(name) + 1, started: performance.now(), steps: 0 };
    this.write(`bench: [${this.current.index}/${this.suites.length}] suite ${name}  ${this.timing()}`);
  }

  /** A step (a report section) of the current suite begins. */
  step(title: string): void {
    if (!this.current) return;
    this.current.steps++;
    const short = title.length > 70 ? `${title.slice(0, 67)}...` : title;
    this.write(`bench: [${this.current.index}/${this.suites.length}] ${this.current.name}, step ${this.current.steps}: ${short}  ${this.timing()}`);
  }

  endSuite(): void {
    if (!this.current) return;
    this.took[this.key(this.current.name)] = (performance.now() - this.current.started) / 1000;
    this.current = undefined;
    saveHistory({ ...this.history, ...this.took });
  }

  done(): void {
    this.write(`bench: done in ${duration((performance.now() - this.started) / 1000)}`);
  }

  /** "elapsed 1 min 12 s, about 3 min left" (or "time left unknown" without history). */
  private timing(): string {
    const elapsed = (performance.now() - this.started) / 1000;
    const left = this.estimateLeft();
    return `(elapsed ${duration(elapsed)}, ${left === undefined ? 'time left unknown: first run with these settings' : `about ${duration(left)} left`})`;
  }

  private estimateLeft(): number | undefined {
    let left = 0;
    const from = this.current ? this.suites.indexOf(this.current.name) : 0;
    for (const name of this.suites.slice(from)) {
      const known = this.history[this.key(name)];
      if (known === undefined) return undefined;
      left += name === this.current?.name ? Math.max(0, known - (performance.now() - this.current.started) / 1000) : known;
    }
    return left;
  }

  private key(suite: string): string {
    return `${suite}@${this.runs}`;
  }
}

function duration(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function readHistory(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(HISTORY, 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

function saveHistory(h: Record<string, number>): void {
  try {
    mkdirSync(path.dirname(HISTORY), { recursive: true });
    writeFileSync(`${HISTORY}.tmp`, JSON.stringify(h, null, 1));
    renameSync(`${HISTORY}.tmp`, HISTORY);
  } catch {
    // the estimate is a convenience: a read-only checkout just goes without it
  }
}
