// Where the cgroup hierarchies are mounted (v1 controllers, the v2 unified tree, or both on a
// hybrid host like Debian's with systemd's legacy layout), read from /proc/self/mountinfo.
import { readFileSync } from 'node:fs';

export type CgroupLayout = 'v1' | 'hybrid' | 'v2';

export interface Hierarchy {
  mountPoint: string;
  version: 1 | 2;
  /** The cgroup mounted there when it is not the hierarchy's root (a bind-mounted subtree). */
  root?: string;
}

export function parseMountinfo(text: string): Hierarchy[] {
  const out: Hierarchy[] = [];
  for (const line of text.split('\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory"
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const fields = line.slice(0, sep).split(' ');
    const mountPoint = unescapeMount(fields[4] ?? '');
    const root = unescapeMount(fields[3] ?? '/');
    if (mountPoint) out.push({ mountPoint, version: fstype === 'cgroup2' ? 2 : 1, ...(root !== '/' ? { root } : {}) });
  }
  return out;
}

export function layoutOf(hierarchies: Hierarchy[]): CgroupLayout {
  const v1 = hierarchies.some((h) => h.version === 1);
  const v2 = hierarchies.some((h) => h.version === 2);
  return v1 && v2 ? 'hybrid' : v2 ? 'v2' : 'v1';
}

let cached: Hierarchy[] | undefined;

/** Read once per process: `tsrun run` needs them when it writes the spec and again at teardown,
 * and cgroup hierarchies are not mounted or moved under a running tsrun. */
export function hostHierarchies(): Hierarchy[] {
  return (cached ??= parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')));
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
