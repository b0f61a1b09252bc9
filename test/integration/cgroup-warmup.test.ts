// The cgroup migration warm-up (runtime/cgroups/migration-warmup.ts) moves tsrun into the cgroup it
// is in. Checked in a child process against the real cgroup file system: when something else
// (a cgroup rules daemon, a supervisor) moves the process after the first warm-up, the next one
// must leave it where it was put, not move it back. The test's cgroups have names of their own.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { hostHierarchies } from '../../runtime/cgroups/hierarchies.js';
import { ownCgroupProcsFile } from '../../runtime/cgroups/migration-warmup.js';
import { PROJECT_ROOT } from '../harness/sandbox.js';

const name = `tsrun-warmup-test-${process.pid}`;
let base: string | undefined;
let child: ChildProcess | undefined;

// The child warms once, then once more on each line read from stdin, answering each with a line.
const script = `
const { hostHierarchies } = await import(${JSON.stringify(path.join(PROJECT_ROOT, 'dist/runtime/cgroups/hierarchies.js'))});
const w = await import(${JSON.stringify(path.join(PROJECT_ROOT, 'dist/runtime/cgroups/migration-warmup.js'))});
const h = hostHierarchies();
process.stdin.setEncoding('utf8');
let first = true;
const step = () => { if (first) w.warmCgroupMigration(h, {}); else w.keepCgroupMigrationWarm(h, {}); first = false; setTimeout(() => process.stdout.write('ok\\n'), 300); };
process.stdin.on('data', step);
process.stdout.write('ready\\n');
`;

function line(c: ChildProcess): Promise<string> {
  return new Promise((resolve) => c.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
}

beforeAll(() => {
  const file = ownCgroupProcsFile(hostHierarchies(), readFileSync('/proc/self/cgroup', 'utf8'));
  const h = file === undefined ? undefined : hostHierarchies().find((x) => file.startsWith(`${x.mountPoint}/`));
  if (h === undefined || process.getuid?.() !== 0) return;
  base = path.join(h.mountPoint, name);
  for (const d of [base, path.join(base, 'a'), path.join(base, 'b')]) {
    mkdirSync(d);
    // a cpuset hierarchy takes no process into a cgroup without cpus and mems
    for (const f of ['cpuset.cpus', 'cpuset.mems']) if (existsSync(path.join(d, f))) writeFileSync(path.join(d, f), readFileSync(path.join(h.mountPoint, f)));
  }
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  if (base === undefined) return;
  for (const d of [path.join(base, 'a'), path.join(base, 'b'), base]) {
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(d);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20)); // its last process is still leaving
      }
    }
  }
});

it('a warm-up after something else moved tsrun leaves it where it was put', async () => {
  if (base === undefined) {
    console.warn('cgroup warm-up test skipped: needs root and a mounted cgroup hierarchy of this process');
    return;
  }
  const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  child = c;
  expect(await line(c)).toBe('ready');
  writeFileSync(path.join(base, 'a', 'cgroup.procs'), String(c.pid));
  c.stdin!.write('warm\n');
  expect(await line(c)).toBe('ok');
  expect(readFileSync(`/proc/${c.pid}/cgroup`, 'utf8')).toContain(`/${name}/a\n`);
  // moved by someone else, then warmed again (as run -d does every 4 ms until runc create answers)
  writeFileSync(path.join(base, 'b', 'cgroup.procs'), String(c.pid));
  c.stdin!.write('keep\n');
  expect(await line(c)).toBe('ok');
  c.stdin!.write('keep\n');
  expect(await line(c)).toBe('ok');
  expect(readFileSync(`/proc/${c.pid}/cgroup`, 'utf8')).toContain(`/${name}/b\n`);
  // and back: the warm-up reads /proc/self/cgroup from a descriptor it holds and parses it again
  // only when the text changed, so a second change must be seen as well as the first
  writeFileSync(path.join(base, 'a', 'cgroup.procs'), String(c.pid));
  c.stdin!.write('keep\n');
  expect(await line(c)).toBe('ok');
  expect(readFileSync(`/proc/${c.pid}/cgroup`, 'utf8')).toContain(`/${name}/a\n`);
  c.stdin!.end();
  c.kill('SIGKILL');
  await once(c, 'exit');
});
