// Starts, ahead of runc, the kernel's wait that runc's first cgroup migration would otherwise sit
// through: `tsrun run` calls it as it starts, and runc's move of its init into the container's
// cgroups then finds the wait already over.
//
// Why: moving a process between cgroups (a write to cgroup.procs) takes the kernel's global
// cgroup_threadgroup_rwsem for writing, and a writer first waits for an RCU grace period
// (rcu_sync_enter) unless another writer left less than about a grace period ago. Measured on the
// 2-core bench VM: a process's first cgroup.procs write after ≥ 20 ms without one blocks 5–20 ms
// (no CPU), the same write 0–15 ms after another one 0.01 ms; runc's first write of its init's
// pid (strace -T) 13.8 ms, the next ones 0.03 ms. tsrun always starts runc after its own Node
// work, so runc sat through the whole grace period; started here, it passes while tsrun loads
// its door and writes the spec.
//
// The write moves tsrun into the cgroup it is already in (pid 0: the writer's own process,
// `/proc/self/cgroup`'s path, read again before each write from a descriptor held open), so
// nothing changes but the kernel's state. It runs on libuv's thread pool, so nothing waits for it; any failure (no cgroup file
// system, read-only, a subtree bind-mounted, not allowed) only means no head start.
import { closeSync, openSync, readFileSync, readSync, write } from 'node:fs';
import path from 'node:path';
import type { Hierarchy } from './hierarchies.js';

/** The cgroup.procs file of the cgroup this process is in, in one hierarchy whose root is mounted
 * (the lock is global: any hierarchy will do; the unified one first). `procSelfCgroup` is the text
 * of /proc/self/cgroup ("0::/path" for v2, "N:controllers:/path" for v1). */
export function ownCgroupProcsFile(hierarchies: readonly Hierarchy[], procSelfCgroup: string): string | undefined {
  const lines = procSelfCgroup.split('\n').map((l) => /^(\d+):([^:]*):(\/.*)$/.exec(l)).filter((m) => m !== null);
  const mounted = hierarchies.filter((h) => h.root === undefined);
  const v2 = lines.find((m) => m[1] === '0' && m[2] === '');
  const unified = mounted.find((h) => h.version === 2);
  if (v2 !== undefined && unified !== undefined) return path.join(unified.mountPoint, v2[3]!, 'cgroup.procs');
  for (const m of lines) {
    // A v1 hierarchy mounted under its controllers' names, as systemd and the distributions do.
    const h = m[2] !== '' && !m[2]!.startsWith('name=') ? mounted.find((x) => x.version === 1 && path.basename(x.mountPoint) === m[2]) : undefined;
    if (h !== undefined) return path.join(h.mountPoint, m[3]!, 'cgroup.procs');
  }
  return undefined;
}

/** The hierarchies of the first warm-up, while its writes succeed (keepCgroupMigrationWarm moves again). */
let warmed: readonly Hierarchy[] | undefined;

/** Fire and forget; `TSRUN_NO_CGROUP_WARMUP=1` turns it off (the bench measures both). */
export function warmCgroupMigration(hierarchies: readonly Hierarchy[], env: NodeJS.ProcessEnv = process.env): void {
  if (env.TSRUN_NO_CGROUP_WARMUP === '1') return;
  warmed = hierarchies;
  moveIntoOwnCgroup();
}

/**
 * Right before runc starts. After the plain door's warm-up: a move within about a grace period of
 * the last one does not wait and keeps the lock's fast path open another grace period, so runc's
 * move still finds it when tsrun's own work took longer than the grace period (a loaded machine);
 * after a longer gap it starts a new grace period, of which runc then waits only the rest. Without
 * one (run.cjs's doors: wiring a network takes longer than the fast path stays open), the first
 * warm-up, of whose grace period runc waits only what is left when it moves.
 */
export function keepCgroupMigrationWarm(hierarchies: readonly Hierarchy[], env: NodeJS.ProcessEnv = process.env): void {
  if (warmed !== undefined) moveIntoOwnCgroup();
  else warmCgroupMigration(hierarchies, env);
}

/**
 * `move` now and every `everyMs` until the returned stop() or until `forMs` have passed: run -d
 * keeps the fast path open this way from conmon's start byte until runc create has answered. runc's
 * own move comes 10-30 ms after the byte, before any createRuntime/prestart hook of the bundle runs;
 * without the bound a slow hook (seconds) had tsrun move itself ~250 times a second meanwhile, each
 * a write-lock of the kernel's global cgroup_threadgroup_rwsem (every fork, exec and exit on the
 * host waits on it) for no gain.
 */
export function keepWarmFor(move: () => void, everyMs = 4, forMs = 250): () => void {
  move();
  const until = performance.now() + forMs;
  const timer = setInterval(() => {
    if (performance.now() > until) clearInterval(timer);
    else move();
  }, everyMs);
  return () => clearInterval(timer);
}

/**
 * keepWarmFor until the move it keeps the fast path open for has happened: `done()`, asked before
 * each move after the first, stops it (a foreground run asks whether runc's pid file exists, which
 * runc writes once the container's init is in its cgroups and running). Still at most `forMs`.
 */
export function keepWarmUntil(done: () => boolean, move: () => void, everyMs = 4, forMs = 250): () => void {
  let stop: (() => void) | undefined;
  stop = keepWarmFor(
    () => {
      if (stop !== undefined && done()) stop();
      else move();
    },
    everyMs,
    forMs,
  );
  return stop;
}

/** /proc/self/cgroup, held open (O_CLOEXEC, as Node opens every file) from the first move on and
 * read again from offset 0 at each move: the kernel generates the text anew on every read from the
 * start, so a move after something else moved this process still sees where it was put. */
let selfCgroupFd: number | undefined;
const selfCgroupBuf = Buffer.allocUnsafe(4096);
/** The text of the last read and the cgroup.procs file it named. */
let lastText: string | undefined;
let lastFile: string | undefined;

/**
 * The cgroup.procs file of the cgroup this process is in now. A foreground run moves every 4 ms
 * until runc's pid file exists (5-15 moves), and each `readFileSync` of the file (open, fstat, two
 * reads, close) and parse cost the main thread ~0.1 ms more than floor C's move (which remembers
 * its path): one pread of the held descriptor, and the parse only when the text changed.
 */
function ownProcsFileNow(): string | undefined {
  if (selfCgroupFd === undefined) selfCgroupFd = openSync('/proc/self/cgroup', 'r');
  const n = readSync(selfCgroupFd, selfCgroupBuf, 0, selfCgroupBuf.length, 0);
  // A text the buffer cannot hold (hundreds of hierarchies or very long paths): read it whole.
  if (n === selfCgroupBuf.length) return ownCgroupProcsFile(warmed!, readFileSync('/proc/self/cgroup', 'utf8'));
  // Kept and compared as a string: Buffer#toString is compiled already in every tsrun process (the
  // entry's header check), where a copy (Buffer.from) and Buffer#compare were each a first call in
  // the process, compiled before runc's spawn (~20-40 us each on a quiet machine).
  const text = selfCgroupBuf.toString('utf8', 0, n);
  if (text === lastText) return lastFile;
  lastText = text;
  lastFile = ownCgroupProcsFile(warmed!, text);
  return lastFile;
}

function moveIntoOwnCgroup(): void {
  let fd: number;
  try {
    // Read again at each move, never remembered: something else (a cgroup rules daemon, a
    // supervisor) may have moved this process since the last one, and a remembered path would
    // move it back out of where it was put.
    const file = ownProcsFileNow();
    if (file === undefined) throw new Error('no mounted hierarchy of this process');
    fd = openSync(file, 'w');
  } catch {
    warmed = undefined;
    // A later warm-up (run -d's create warms again) opens /proc/self/cgroup afresh rather than
    // trusting a descriptor whose read failed.
    if (selfCgroupFd !== undefined) {
      try {
        closeSync(selfCgroupFd);
      } catch {
        // already gone
      }
      selfCgroupFd = undefined;
      lastText = undefined;
    }
    return;
  }
  // Only the write waits, on a pool thread.
  write(fd, '0', () => closeSync(fd));
}

/**
 * The container's cgroup directories, which runc makes as it moves the container's init into its
 * cgroups: in every hierarchy mounted at its root (a bind-mounted subtree, tsrun in a container,
 * has paths runc's would not match), the last mounted first: runc makes them in about that order
 * here (v1 controllers, systemd's, the unified one), so a check before runc's last one usually
 * stops at the first look.
 */
export function cgroupProbes(hierarchies: readonly Hierarchy[], cgroupsPath: string): string[] {
  return hierarchies
    .filter((h) => h.root === undefined)
    .map((h) => path.join(h.mountPoint, cgroupsPath))
    .reverse();
}
