// Benchmark helpers: wall-clock timing of whole commands, medians, and a report that prints each
// result as a ratio against its reference measured in the same run.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** tsrun as installed: the entry, a node script (the plain bundle; the start-up snapshot with TSRUN_SNAPSHOT=1). */
export const TSRUN = path.join(PROJECT_ROOT, 'dist/bundle/tsrun');
export const BUSYBOX_BUNDLE = path.join(PROJECT_ROOT, 'rootfs-fixtures/.cache/busybox');

/** The environment benchmarks run commands with: NODE_EXTRA_CA_CERTS doubles Node's start-up
 * and no user of tsrun has it, so it goes. */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.NODE_OPTIONS;
  return env;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Milliseconds one run of `cmd` takes, failing loudly if it fails. */
export function timeCommand(cmd: string, args: string[], opts: SpawnSyncOptions = {}): number {
  const started = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.toString().trim()}`);
  return ms;
}

/** Runs each variant `runs` times, interleaved so that drift on the machine hits all alike. */
export function interleave(runs: number, variants: Record<string, () => number>): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const [k, f] of Object.entries(variants)) out[k]!.push(f());
  return out;
}

/** A copy of the busybox bundle running `args`, with its root made absolute. */
export function benchBundle(args: string[]): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-bench-bundle-'));
  const spec = JSON.parse(readFileSync(path.join(BUSYBOX_BUNDLE, 'config.json'), 'utf8'));
  spec.root.path = path.join(BUSYBOX_BUNDLE, 'rootfs');
  spec.process.args = args;
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Row {
  name: string;
  value: number;
  unit: string;
  /** "≤ 1.6" or "≥ 0.9": the target for a ratio row */
  target?: string;
  note?: string;
  /** the section (a step of a suite) the row was measured in; set by Report */
  section?: string;
}

export class Report {
  readonly rows: Row[] = [];
  private currentSection = '';

  /** `onSection`: told when a section (a step of a suite) begins, for the progress lines. */
  constructor(private readonly onSection: (title: string) => void = () => {}) {}

  add(row: Row): void {
    this.rows.push({ ...row, section: this.currentSection });
    const verdict = row.target ? (meets(row.value, row.target) ? '  ok' : '  MISSED') : '';
    const value = row.unit === '×' ? row.value.toFixed(2) : row.value.toFixed(row.value < 10 ? 2 : 1);
    console.log(`${row.name.padEnd(64)} ${value.padStart(9)} ${row.unit.padEnd(3)}${row.target ? ` target ${row.target}` : ''}${verdict}${row.note ? `  (${row.note})` : ''}`);
  }

  section(title: string): void {
    this.currentSection = title;
    this.onSection(title);
    console.log(`\n== ${title}`);
  }
}

export function meets(value: number, target: string): boolean {
  const m = /^([≤≥])\s*([\d.]+)/.exec(target);
  if (!m) return true;
  return m[1] === '≤' ? value <= Number(m[2]) : value >= Number(m[2]);
}

/** The front doors' bundles, for the floors below. */
export const BUNDLE_DIR = path.join(PROJECT_ROOT, 'dist/bundle');
const CODE_CACHE_LOADER = path.join(PROJECT_ROOT, 'scripts/code-cache.cjs');

/**
 * A floor for a Node front door: a cold `node` that loads the door's bundle exactly as tsrun's
 * entry does (through its V8 code cache, evaluating its top level) and then does nothing else but
 * what `then` says (JavaScript run in that process: e.g. spawn runc and wait). tsrun cannot go below
 * this without making its bundle smaller; the rows that use it say how far above it tsrun is.
 */
export function nodeLoadingBundle(door: 'cli' | 'run' | 'run-plain' | 'hook' | 'cni' | 'cni-version', then = ''): [string, string[]] {
  // `then` may use `door`, the bundle's exports.
  const code = `const door = require(${JSON.stringify(CODE_CACHE_LOADER)}).load(${JSON.stringify(path.join(BUNDLE_DIR, `${door}.cjs`))});${then}`;
  return [process.execPath, ['-e', code]];
}

/**
 * The cgroup warm-up as tsrun's door starts it, as JavaScript for a floor's `node -e`
 * (runtime/cgroups/migration-warmup.ts): `once`, one move into the process's own cgroup (its
 * cgroup.procs file, `procs`) on libuv's pool; `kept`, a move now and one every 4 ms until runc's
 * pid file exists (at most 250 ms), as tsrun keeps it since session 6 (shim/run.ts keepWarmUntil).
 * Empty without a cgroup.procs file to write.
 */
export function warmupCode(procs: string | undefined, warm: 'kept' | 'once' | 'none', pidFile?: string): string {
  if (procs === undefined || warm === 'none') return '';
  if (warm === 'once') return `{const fs=require('fs'),fd=fs.openSync(${JSON.stringify(procs)},'w');fs.write(fd,'0',()=>fs.closeSync(fd));}`;
  return (
    `{const fs=require('fs'),p=${JSON.stringify(procs)},f=${JSON.stringify(pidFile)},t0=Date.now(),mv=()=>{const fd=fs.openSync(p,'w');fs.write(fd,'0',()=>fs.closeSync(fd));};` +
    "mv();const t=setInterval(()=>{if(fs.existsSync(f)||Date.now()-t0>250)clearInterval(t);else mv();},4);t.unref();}"
  );
}

/**
 * Floor C's process (bench/suites/startup.ts): one cold Node process that does nothing but start
 * `runc <runcArgs>` the way tsrun starts it (Node's process handle, as shim/spawn-inherit.ts, no
 * module loaded), with the container's stdio, and exit with its status; `warm`: the cgroup warm-up
 * first (warmupCode; `kept` needs runcArgs to carry --pid-file pidFile).
 */
export function floorCCommand(runcArgs: string[], procs: string | undefined, warm: 'kept' | 'once' | 'none', pidFile?: string): [string, string[]] {
  const code =
    warmupCode(procs, warm, pidFile) +
    "const P=process.binding('process_wrap').Process,h=new P();h.onexit=(c)=>process.exit(c);" +
    `const a=${JSON.stringify(runcArgs)};` +
    "if(h.spawn({file:'runc',args:['runc',...a],envPairs:Object.entries(process.env).map(([k,v])=>k+'='+v),stdio:[0,1,2].map((fd)=>({type:'fd',fd})),detached:false,windowsHide:false}))process.exit(125)";
  return [process.execPath, ['-e', code]];
}
