// Where a foreground run looks for runc's move of its init into the container's cgroups, to stop
// keeping the kernel's cgroup lock warm (shim/run.ts, shim/lifecycle/create.ts): every hierarchy mounted at its root, the last
// mounted first (runc joins them in about mountinfo order, systemd's and the unified one last).
import { expect, it } from '@jest/globals';
import { cgroupProbes } from '../../../runtime/cgroups/migration-warmup.js';
import { parseMountinfo } from '../../../runtime/cgroups/hierarchies.js';

const line = (id: number, root: string, at: string, fs: string, opts: string) => `${id} 25 0:${id} ${root} ${at} rw,relatime shared:${id} - ${fs} cgroup ${opts}`;

it('names the container directory in each hierarchy mounted at its root, last mounted first', () => {
  const hybrid = parseMountinfo(
    [
      line(30, '/', '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'),
      line(31, '/', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
      line(32, '/', '/sys/fs/cgroup/systemd', 'cgroup', 'rw,name=systemd'),
      line(33, '/', '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
    ].join('\n'),
  );
  expect(cgroupProbes(hybrid, '/tsrun/abc')).toEqual([
    '/sys/fs/cgroup/unified/tsrun/abc',
    '/sys/fs/cgroup/systemd/tsrun/abc',
    '/sys/fs/cgroup/memory/tsrun/abc',
    '/sys/fs/cgroup/cpu/tsrun/abc',
  ]);
  expect(cgroupProbes(parseMountinfo(line(40, '/', '/sys/fs/cgroup', 'cgroup2', 'rw')), '/tsrun/abc')).toEqual(['/sys/fs/cgroup/tsrun/abc']);
});

it('leaves out a bind-mounted subtree (tsrun in a container), and has nothing to look for without hierarchies', () => {
  const inContainer = parseMountinfo([line(50, '/docker/x', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'), line(51, '/', '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids')].join('\n'));
  expect(cgroupProbes(inContainer, '/tsrun/abc')).toEqual(['/sys/fs/cgroup/pids/tsrun/abc']);
  expect(cgroupProbes([], '/tsrun/abc')).toEqual([]);
});
