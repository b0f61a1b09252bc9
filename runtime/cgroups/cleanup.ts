// runc removes a container's cgroup when it deletes the container, but not tsrun's parent
// directory, and nothing at all when runc itself was killed. This removes what is left, leaf
// first, in every hierarchy; a directory still in use (EBUSY) or shared (ENOTEMPTY) stays.
// `keepParents`: the container's own directory only. A detached container's cleanup keeps
// tsrun's parent (as docker keeps /docker and podman its cgroup parent): removing an empty cgroup
// v1 parent costs ~1 ms per hierarchy (10 here: ~10 ms of every last `rm -f`), the next
// `runc create` makes it again in each, and an rmdir of the parent between runc's mkdir of the
// parent and of the container's own directory fails that create.
import { existsSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { hostHierarchies, type Hierarchy } from './hierarchies.js';

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
