import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { layoutOf, parseMountinfo } from '../../../runtime/cgroups/hierarchies.js';
import { descendantsOf, emptyCgroup, removeCgroup } from '../../../runtime/cgroups/cleanup.js';
import { ownCgroupProcsFile } from '../../../runtime/cgroups/migration-warmup.js';
import { humanLine } from '../../../runtime/log.js';

const HYBRID = `25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
35 25 0:30 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
40 35 0:35 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
41 35 0:36 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids`;

describe('cgroup hierarchies', () => {
  it('finds v1 and v2 mounts and tells the layout', () => {
    const h = parseMountinfo(HYBRID);
    expect(h).toEqual([
      { mountPoint: '/sys/fs/cgroup/unified', version: 2 },
      { mountPoint: '/sys/fs/cgroup/memory', version: 1 },
      { mountPoint: '/sys/fs/cgroup/with space', version: 1 },
    ]);
    expect(layoutOf(h)).toBe('hybrid');
    expect(layoutOf(h.filter((x) => x.version === 2))).toBe('v2');
    expect(layoutOf(h.filter((x) => x.version === 1))).toBe('v1');
  });

  it('reads only cgroup and cgroup2 lines, wherever they are, with or without a last newline', () => {
    const text = [
      '36 35 0:31 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw,nsdelegate',
      '50 27 0:50 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b',
      '51 27 0:51 / /srv/cgroupish rw - cgroupfs cgroupfs rw',
      '52 27 0:52 / /mnt/a\\040-\\040cgroup rw - tmpfs tmpfs rw',
      '53 35 0:53 / /sys/fs/cgroup/pids rw master:3 - cgroup cgroup rw,pids',
    ].join('\n');
    const want = [
      { mountPoint: '/sys/fs/cgroup', version: 2 },
      { mountPoint: '/sys/fs/cgroup/pids', version: 1 },
    ];
    expect(parseMountinfo(text)).toEqual(want);
    expect(parseMountinfo(`${text}\n`)).toEqual(want);
    expect(parseMountinfo('')).toEqual([]);
  });

  it('removes leftover directories leaf first and keeps a parent still in use', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cg-'));
    try {
      const a = path.join(root, 'memory');
      const b = path.join(root, 'pids');
      mkdirSync(path.join(a, 'tsrun', 'c1'), { recursive: true });
      mkdirSync(path.join(b, 'tsrun', 'c1'), { recursive: true });
      mkdirSync(path.join(b, 'tsrun', 'other'), { recursive: true });
      const removed = removeCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }, { mountPoint: b, version: 1 }]);
      expect(removed).toEqual([path.join(a, 'tsrun', 'c1'), path.join(a, 'tsrun'), path.join(b, 'tsrun', 'c1')]);
      expect(existsSync(path.join(b, 'tsrun', 'other'))).toBe(true);
      expect(removeCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }])).toEqual([]); // idempotent
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('keepParents: removes the container\'s own directory only, the empty parent stays', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cg-'));
    try {
      const a = path.join(root, 'memory');
      mkdirSync(path.join(a, 'tsrun', 'c1'), { recursive: true });
      expect(removeCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }], { keepParents: true })).toEqual([path.join(a, 'tsrun', 'c1')]);
      expect(existsSync(path.join(a, 'tsrun'))).toBe(true);
      expect(removeCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }], { keepParents: true })).toEqual([]); // idempotent
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the cgroup warm-up\'s file: the cgroup.procs of the cgroup this process is in', () => {
  const hybrid = parseMountinfo(HYBRID);
  it('prefers the unified hierarchy, at the path /proc/self/cgroup gives', () => {
    expect(ownCgroupProcsFile(hybrid, '4:memory:/user.slice\n1:name=systemd:/user.slice/s.scope\n0::/user.slice/s.scope\n')).toBe('/sys/fs/cgroup/unified/user.slice/s.scope/cgroup.procs');
  });
  it('takes a v1 hierarchy mounted under its controllers\' names when there is no v2 line', () => {
    const v1 = hybrid.filter((h) => h.version === 1);
    expect(ownCgroupProcsFile(v1, '1:name=systemd:/a\n4:memory:/m\n')).toBe('/sys/fs/cgroup/memory/m/cgroup.procs');
    expect(ownCgroupProcsFile(v1, '1:name=systemd:/a\n9:cpu,cpuacct:/c\n')).toBeUndefined();
  });
  it('never uses a mount of a subtree (its paths are not /proc/self/cgroup\'s)', () => {
    const sub = parseMountinfo('36 35 0:31 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw');
    expect(sub).toEqual([{ mountPoint: '/sys/fs/cgroup', version: 2, root: '/docker/abc' }]);
    expect(ownCgroupProcsFile(sub, '0::/docker/abc\n')).toBeUndefined();
  });
  it('nothing without cgroup file systems or a readable /proc/self/cgroup', () => {
    expect(ownCgroupProcsFile([], '0::/\n')).toBeUndefined();
    expect(ownCgroupProcsFile(hybrid, '')).toBeUndefined();
  });
});

describe('log lines for humans', () => {
  it('formats pino JSON', () => {
    const line = humanLine(JSON.stringify({ level: 20, time: Date.UTC(2026, 0, 1, 12, 0, 1, 123), pid: 1, msg: 'step done', step: 'x', ms: 1.5 }));
    expect(line).toBe('12:00:01.123 DEBUG step done step="x" ms=1.5\n');
    expect(humanLine('not json')).toBe('not json');
  });

  it("emptyCgroup kills what its cgroup.procs lists of its own (runc init after a killed runc run), and returns at once when it lists nothing", async () => {
    const a = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cg-'));
    // A parent (runc) with a child (its runc init): the child is known as the parent's before the
    // parent is killed.
    const parent = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore' });
    try {
      const dir = path.join(a, 'tsrun', 'c1');
      mkdirSync(dir, { recursive: true });
      let ours = descendantsOf(parent.pid!);
      for (let i = 0; i < 200 && ours.size === 0; i++) {
        await new Promise((r) => setTimeout(r, 5));
        ours = descendantsOf(parent.pid!);
      }
      const [childPid] = [...ours.keys()];
      expect(childPid).toBeGreaterThan(0);
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      writeFileSync(path.join(dir, 'cgroup.procs'), `${childPid}\n${parent.pid}\n`);
      // Listed but not among `ours` (another tsrun's container of the same id): waited for, never
      // signalled. A plain file does not forget the pid as the kernel's would: the wait ends at its
      // timeout.
      await emptyCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }], 50);
      expect(alive(childPid!)).toBe(true);
      // The same pid with another start time (a reused pid): not signalled either.
      await emptyCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }], 50, new Map([[childPid!, 'not its start']]));
      expect(alive(childPid!)).toBe(true);
      // Its own, by identity: killed; the parent, listed but not among them, is not.
      await emptyCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }], 50, ours);
      for (let i = 0; i < 200 && alive(childPid!); i++) await new Promise((r) => setTimeout(r, 5));
      expect(alive(childPid!)).toBe(false);
      // The parent (its shell's `wait` returns once the child is killed) ends by itself, not by a signal.
      for (let i = 0; i < 200 && parent.exitCode === null && parent.signalCode === null; i++) await new Promise((r) => setTimeout(r, 5));
      expect(parent.signalCode).toBe(null);
      writeFileSync(path.join(dir, 'cgroup.procs'), '');
      await emptyCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }, { mountPoint: path.join(a, 'none'), version: 1 }]);
    } finally {
      parent.kill('SIGKILL');
      rmSync(a, { recursive: true, force: true });
    }
  });

  it('emptyCgroup never signals pid 0 (cgroup.procs lists a process outside this pid namespace as 0; kill(0) is the whole process group)', async () => {
    const a = mkdtempSync(path.join(os.tmpdir(), 'tsrun-cg-'));
    const real = process.kill;
    const sent: number[] = [];
    // Recorded, never sent: the version before killed tsrun's own process group (its caller's shell pipeline).
    process.kill = ((pid: number) => (sent.push(pid), true)) as typeof process.kill;
    try {
      const dir = path.join(a, 'tsrun', 'c1');
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'cgroup.procs'), '0\n');
      await emptyCgroup('/tsrun/c1', [{ mountPoint: a, version: 1 }], 20);
    } finally {
      process.kill = real;
      rmSync(a, { recursive: true, force: true });
    }
    expect(sent).toEqual([]);
  });
});
