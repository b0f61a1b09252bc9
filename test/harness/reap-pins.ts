// jest's globalTeardown: a namespace pin (`unshare --net sleep infinity`) still alive when every
// test file has finished means a test skipped its cleanup (a hook that threw before destroy()).
// Such a child keeps jest's event loop alive, so jest would never exit and CI would hang with a
// live namespace. Kill every pin this process started, and say so: it is still a test bug.
// It also removes tsrun's parent cgroup when it is empty (removeEmptyTsrunParent).
import { readFileSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), ppid, argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `unshare --net sleep infinity` before and after unshare has exec'd sleep. */
const isPin = (argv: string[]): boolean =>
  (argv[0]?.endsWith('sleep') === true && argv[1] === 'infinity' && argv.length === 2) ||
  (argv[0]?.endsWith('unshare') === true && argv.includes('--net') && argv.at(-2) === 'sleep' && argv.at(-1) === 'infinity');

/**
 * tsrun keeps its parent cgroup (`tsrun/` in each hierarchy) after a detached container, as docker
 * keeps /docker: by design, not a leak. CI's host-net-guard compares the host's cgroup directories
 * before and after the suite, so whether a clean host ended with it depended on whether a
 * foreground run (which removes an empty parent) happened to come after the last detached test.
 * The empty parent goes here; one with a container's cgroup left in it stays (rmdir fails), and the
 * guard and the leak checks report that.
 */
export function removeEmptyTsrunParent(root = '/sys/fs/cgroup'): void {
  let hierarchies: string[];
  try {
    hierarchies = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(root, e.name));
  } catch {
    return; // no cgroup file system here
  }
  // pure cgroup v2: the mount itself is the hierarchy
  for (const h of [root, ...hierarchies]) {
    try {
      rmdirSync(path.join(h, 'tsrun'));
    } catch {
      // absent, in use, or not ours to remove
    }
  }
}

export default function reapPins(): void {
  removeEmptyTsrunParent();
  const pins = processes().filter((p) => p.ppid === process.pid && isPin(p.argv));
  for (const p of pins) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (pins.length > 0) {
    process.stderr.write(`test harness: ${pins.length} sandbox namespace pin(s) outlived their tests and were killed (pids ${pins.map((p) => p.pid).join(', ')}): a test skipped its cleanup\n`);
  }
}
