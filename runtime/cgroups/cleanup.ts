// runc removes a container's cgroup when it deletes the container, but not tsrun's parent
// directory, and nothing at all when runc itself was killed. This removes what is left, leaf
// first, in every hierarchy; a directory still in use (EBUSY) or shared (ENOTEMPTY) stays.
// `keepParents`: the container's own directory only. A detached container's cleanup keeps
// tsrun's parent (as docker keeps /docker and podman its cgroup parent): removing an empty cgroup
// v1 parent costs ~1 ms per hierarchy (10 here: ~10 ms of every last `rm -f`), the next
// `runc create` makes it again in each, and an rmdir of the parent between runc's mkdir of the
// parent and of the container's own directory fails that create.
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { hostHierarchies, type Hierarchy } from './hierarchies.js';
import { processStartTime } from '../containers.js';

export function removeCgroup(cgroupsPath: string, hierarchies: Hierarchy[] = hostHierarchies(), o: { keepParents?: boolean } = {}): string[] {
  const removed: string[] = [];
  const parts = cgroupsPath.split('/').filter(Boolean);
  const last = o.keepParents ? parts.length : 1;
  for (const h of hierarchies) {
    for (let depth = parts.length; depth >= last && depth > 0; depth--) {
      const dir = path.join(h.mountPoint, ...parts.slice(0, depth));
      // Usually gone already (runc removes the container's own): looked for first, as a failed
      // rmdir builds an Error with a stack (~50-100 µs, in every hierarchy).
      if (!existsSync(dir)) continue;
      try {
        rmdirSync(dir);
        removed.push(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue; // gone already, or never created in this hierarchy
        break; // EBUSY/ENOTEMPTY: in use; its parents are too
      }
    }
  }
  return removed;
}

/**
 * Ends what is left in a container's cgroup after its `runc run` was killed mid-create (the
 * foreground run's setup aborted while runc waited at its gate, shim/runc-gate.ts): runc's child,
 * `runc init`, then sits in the container's cgroup, blocked on its parent's pipe; it ends by itself
 * once it reads that pipe's end, but not before tsrun's rollback would try the cgroup's rmdir
 * (EBUSY: the directories stayed behind). Each pid listed is sent SIGKILL (nothing else can be in
 * the cgroup of an id this process claimed: the container's program never started) and the listing
 * read again until it is empty, for at most `timeoutMs`. Resolves whether or not it emptied.
 */
/**
 * A process's descendants, as pid -> start time (/proc/PID/stat), through /proc/PID/task/TID/children:
 * what a SIGKILL of it leaves running (runc's `runc init`), taken before that kill, so that what
 * is signalled afterwards is known by identity (pid and start time), never by a cgroup's listing.
 */
export function descendantsOf(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  const visit = (p: number) => {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return; // gone
    }
    for (const t of tasks) {
      let text = '';
      try {
        text = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of text.split(' ').filter((x) => /^[0-9]+$/.test(x)).map(Number)) {
        if (out.has(c)) continue;
        const start = processStartTime(c);
        if (start === undefined) continue;
        out.set(c, start);
        visit(c);
      }
    }
  };
  visit(pid);
  return out;
}

/**
 * Waits (at most `timeoutMs`) for the cgroup to have no process left, SIGKILLing those of `ours`
 * (descendantsOf, taken before their parent was killed) that are still the same processes. Any
 * other process listed is never signalled: a cgroup path is per container id, and another tsrun
 * (another TSRUN_ROOT, another host namespace on this machine) may run a container of that id in
 * it. Killing by the listing alone killed that container (overlay-holders.test: host B's refused
 * `run --name fixed` ended host A's running `fixed`).
 */
export async function emptyCgroup(cgroupsPath: string, hierarchies: Hierarchy[] = hostHierarchies(), timeoutMs = 2000, ours: ReadonlyMap<number, string> = new Map()): Promise<void> {
  const files = hierarchies.map((h) => path.join(h.mountPoint, ...cgroupsPath.split('/').filter(Boolean), 'cgroup.procs'));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = new Set<number>();
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch {
        continue; // no such cgroup in this hierarchy (never made, or removed)
      }
      // 0 names a process outside this process's pid namespace, and kill(0) would signal this
      // process's own process group (the caller's shell pipeline): never sent.
      for (const line of text.split('\n')) if (/^[0-9]+$/.test(line) && Number(line) > 0) pids.add(Number(line));
    }
    if (pids.size === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      const start = ours.get(pid);
      if (start === undefined || processStartTime(pid) !== start) continue; // not ours: waited for only
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}
