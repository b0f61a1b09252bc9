// Cgroup directories a test (or a client it ran: podman, conmon, containerd) created under a parent
// of its own. Only empty directories can be removed, and a monitor that has just been killed
// leaves its cgroup a moment later, so removal tries again for a few seconds. Works on the hybrid
// layout (one directory per v1 hierarchy, plus unified/) and on a pure v2 mount (the VM lane).
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';

/** `rel` (relative to each hierarchy's root) and everything under it, leaf-first. */
export function removeCgroupTree(rel: string, waitMs = 5_000): void {
  const deadline = Date.now() + waitMs;
  while (removeOnce(rel) > 0 && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
}

/** One pass; returns how many directories are still there (in use: the leak checks report them). */
function removeOnce(rel: string): number {
  let left = 0;
  const rm = (dir: string) => {
    for (const sub of readdirSync(dir, { withFileTypes: true })) if (sub.isDirectory()) rm(path.join(dir, sub.name));
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left++;
    }
  };
  const roots = readdirSync('/sys/fs/cgroup', { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join('/sys/fs/cgroup', e.name, rel));
  // pure cgroup v2: the mount itself is the hierarchy
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) roots.push(path.join('/sys/fs/cgroup', rel));
  for (const dir of roots) if (existsSync(dir)) rm(dir);
  return left;
}
