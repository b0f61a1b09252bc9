// A benchmark run's rows, kept as JSON after every run (rootfs-fixtures/.cache/bench-latest.json),
// so that the README's table of headline figures is made from one run's numbers by a program
// (bench/readme-table.ts) and never typed by hand.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, type Row } from './lib.js';

export const SAVED_RUN = path.join(PROJECT_ROOT, 'rootfs-fixtures/.cache/bench-latest.json');

export interface SavedRun {
  date: string;
  node: string;
  runs: number;
  suites: string[];
  rows: Row[];
}

export function saveRun(run: SavedRun, file = SAVED_RUN): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(run, null, 1)}\n`);
  renameSync(tmp, file);
}

export function loadRun(file = SAVED_RUN): SavedRun {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`no saved benchmark run at ${file}: run \`npm run bench\` first`);
  }
  const run = JSON.parse(text) as SavedRun;
  if (!Array.isArray(run.rows)) throw new Error(`${file} is not a saved benchmark run`);
  return run;
}
