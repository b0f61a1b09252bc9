// Cgroup directories a test (or a client it ran: podman, conmon, containerd) created under a parent
// of its own. Only empty directories can be removed, and a process that has just been killed
// leaves its cgroup a moment later (EBUSY until then), so removal retries for a short while.
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';

/** `rel` (relative to each hierarchy's root) and everything under it, leaf-first. */
export function removeCgroupTree(rel: string, waitMs = 5_000): void {
  const deadline = Date.now() + waitMs;
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', h, rel);
    if (existsSync(dir)) removeLeafFirst(dir, deadline);
  }
}

function removeLeafFirst(dir: string, deadline: number): void {
  for (const sub of readdirSync(dir, { withFileTypes: true })) if (sub.isDirectory()) removeLeafFirst(path.join(dir, sub.name), deadline);
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // Still in use: its last process is exiting. Past the deadline the leak checks report it.
      if (code !== 'EBUSY' || Date.now() > deadline) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}
