// The detached lifecycle's in-process shortcuts against runc's own answers, and its races, under
// real conmon and runc in a sandbox host: run -d's start by the exec fifo and rm's delete of an
// ended container without runc (shim/runc.ts startInProcess, deleteEnded), rm's own doors, and
// the plain run door's refusal of a --name in use. What runc sees afterwards (runc state, runc
// list, its root, the cgroup directories in every hierarchy) must be what its own start and delete
// leave; a race must end in one line and a non-zero exit, or success, never a hang or a leftover.
import { expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withConmonWorld } from '../harness/conmon-world.js';
import { BridgeWorld } from '../harness/bridge-world.js';
import { cgroupDirsOf, makeBundle, removeBundle, signalWhileStopped, TSRUN_BIN, uniqueId, waitFor } from '../harness/sandbox.js';

let w: BridgeWorld;

const describeIf = withConmonWorld(
  'detached-races',
  () => BridgeWorld.create('races', { outside: false }),
  (world) => (w = world),
);

function tsrun(args: string[]) {
  return w.host.tsrun(args, { timeoutMs: 30_000 });
}

function ok(args: string[]): string {
  const r = tsrun(args);
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
  expect(r.stderr).toBe('');
  return r.stdout;
}

function name(prefix = 'r'): string {
  const id = uniqueId(prefix);
  w.ids.push(id);
  return id;
}

function runD(id: string, args: string[], cmd: string[], bundle = w.bundle): void {
  expect(ok(['run', '-d', '--name', id, ...args, bundle, '--', ...cmd]).trim()).toBe(id);
}

/** `runc state ID` in the sandbox: its status, or undefined when runc has no such container. */
function runcStatus(id: string): string | undefined {
  const r = w.host.ns.exec('runc', ['--root', w.host.runcRoot, 'state', id]);
  return r.status === 0 ? (JSON.parse(r.stdout) as { status: string }).status : undefined;
}

/** Nothing of `id` left where runc keeps it: its list, its root, the cgroups of every hierarchy. */
function runcLeftovers(id: string): string[] {
  const found: string[] = [];
  if (w.host.runcList().includes(id)) found.push('runc list');
  if (runcStatus(id) !== undefined) found.push('runc state');
  if (existsSync(path.join(w.host.runcRoot, id))) found.push('runc root');
  for (const d of cgroupDirsOf(id)) found.push(`cgroup ${d}`);
  return found;
}

/** The init pid runc recorded for a created container. */
function initPid(id: string): number {
  return (JSON.parse(readFileSync(path.join(w.host.runcRoot, id, 'state.json'), 'utf8')) as { init_process_pid: number }).init_process_pid;
}

describeIf("run -d's start and rm's delete leave what runc's own leave", () => {
  it('running: runc says running, no exec fifo; removed: nothing of it in runc or any cgroup hierarchy', () => {
    const id = name();
    runD(id, ['--net', 'none'], ['sleep', '100']);
    expect(runcStatus(id)).toBe('running');
    expect(w.host.runcList()).toContain(id);
    expect(existsSync(path.join(w.host.runcRoot, id, 'exec.fifo'))).toBe(false);
    expect(cgroupDirsOf(id).length).toBeGreaterThan(0);
    expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
    expect(runcLeftovers(id)).toEqual([]);
  });

  it('ended on its own: the exit command deletes its runc state and cgroups, the record stays', async () => {
    const id = name();
    runD(id, ['--net', 'none'], ['true']);
    expect(ok(['wait', id])).toBe('0\n');
    await waitFor('the exit command to clean up', () => runcLeftovers(id).length === 0);
    expect(ok(['rm', id])).toBe(`${id}\n`);
  });

  it('a child cgroup in the container\'s cgroup (in-process rmdir fails): runc removes the tree', () => {
    const id = name();
    runD(id, ['--net', 'none'], ['sleep', '100']);
    const dirs = cgroupDirsOf(id);
    for (const d of dirs) spawnSync('mkdir', [path.join(d, 'child')]);
    expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
    expect(runcLeftovers(id)).toEqual([]);
  });

  it('a container with hooks in its spec goes through runc: its poststart and poststop hooks run', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-races-hooks-'));
    const log = path.join(dir, 'hooks.log');
    const bundle = makeBundle((spec) => {
      spec.hooks = Object.fromEntries(['poststart', 'poststop'].map((s) => [s, [{ path: '/bin/sh', args: ['sh', '-c', `echo ${s} >> ${log}`] }]]));
    });
    try {
      const id = name();
      runD(id, ['--net', 'none'], ['sleep', '100'], bundle);
      expect(readFileSync(log, 'utf8')).toBe('poststart\n');
      expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
      expect(readFileSync(log, 'utf8')).toBe('poststart\npoststop\n');
      expect(runcLeftovers(id)).toEqual([]);
    } finally {
      removeBundle(bundle);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeIf('start races the end of the init', () => {
  it("a created container whose init was killed: start fails in one line, at once, and rm leaves nothing", () => {
    const id = name();
    expect(ok(['create', '--name', id, '--net', 'none', w.bundle, '--', 'sleep', '100']).trim()).toBe(id);
    process.kill(initPid(id), 'SIGKILL');
    const r = tsrun(['start', id]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 125, stderr: expect.stringMatching(new RegExp(`^tsrun: (container ${id} cannot be started: it is (exited|stopped).*|runc: .*)\\n$`)) });
    expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
    expect(runcLeftovers(id)).toEqual([]);
  });

  it('run -d of a program that ends at once reports the container, which ran (exit 0), every time', () => {
    for (let i = 0; i < 8; i++) {
      const id = name('q');
      runD(id, ['--net', 'none'], ['true']);
      expect(ok(['wait', id])).toBe('0\n');
      expect(ok(['rm', id])).toBe(`${id}\n`);
      expect(runcLeftovers(id)).toEqual([]);
    }
  });
});

describeIf('rm -f races', () => {
  it('rm -f while the container ends on its own (its exit command cleaning up): removed, nothing left', async () => {
    for (let i = 0; i < 6; i++) {
      const id = name('x');
      runD(id, ['--net', 'none'], ['sh', '-c', `sleep 0.0${i * 2}`]);
      expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
      expect(runcLeftovers(id)).toEqual([]);
    }
  });

  it('rm -f while a bridged container ends on its own: its endpoint, lease and veth released once, nothing left', async () => {
    // The exit command and rm's wired door may both release the network: the leak check (afterEach)
    // looks at the store's records, leases and the veths.
    for (let i = 0; i < 4; i++) {
      const id = name('xb');
      runD(id, [], ['sh', '-c', `sleep 0.0${i * 3}`]);
      expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
      expect(runcLeftovers(id)).toEqual([]);
    }
  });

  it('two rm -f of one id at once: each removes it or says it is gone, in one line; nothing left', async () => {
    for (let i = 0; i < 3; i++) {
      const id = name('two');
      runD(id, ['--net', 'none'], ['sleep', '100']);
      const both = await Promise.all([0, 1].map(() => new Promise<{ status: number | null; out: string; err: string }>((resolve) => {
        const c = w.host.spawnTsrun(['rm', '-f', id]);
        let out = '';
        let err = '';
        c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        c.once('close', (status) => resolve({ status, out, err }));
      })));
      for (const r of both) {
        expect([{ status: 0, out: `${id}\n`, err: '' }, { status: 1, out: '', err: `tsrun: no such container: ${id}\n` }]).toContainEqual(r);
      }
      expect(both.some((r) => r.status === 0)).toBe(true);
      expect(runcLeftovers(id)).toEqual([]);
    }
  });

  it("missing and malformed ids alone: one line, exit 1 (docker's), nothing changed", () => {
    const id = name();
    runD(id, ['--net', 'none'], ['sleep', '100']);
    const long = 'a'.repeat(300);
    const cases: [string[], string][] = [
      [['rm', '-f', 'nosuch'], 'tsrun: no such container: nosuch\n'],
      [['rm', '-f', '../x'], 'tsrun: no such container: ../x\n'],
      [['rm', '-f', `../containers/${id}`], `tsrun: no such container: ../containers/${id}\n`],
      [['rm', '-f', '/'], 'tsrun: no such container: /\n'],
      [['rm', '-f', long], `tsrun: no such container: ${long}\n`],
      [['rm', '-f', ''], 'tsrun: no such container:\n'],
      [['rm', '-f', 'nosuch', '../x'], 'tsrun: no such container: nosuch; no such container: ../x\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = tsrun(args);
      expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status: 1, stdout: '', stderr });
      expect(runcStatus(id)).toBe('running');
    }
    // The same id twice is removed once.
    expect(ok(['rm', '-f', id, id])).toBe(`${id}\n`);
    expect(runcLeftovers(id)).toEqual([]);
  });

  it('rm -f of existing and missing ids, as docker rm -f: the others removed, each missing one named in one line, exit 1', () => {
    // Found in review: one missing name (a container another rm -f removed meanwhile) kept every
    // other container in place. Without -f the same since session 8 (detached.test.ts).
    const a = name();
    const b = name();
    runD(a, ['--net', 'none'], ['sleep', '100']);
    runD(b, ['--net', 'none'], ['true']);
    expect(ok(['wait', b])).toBe('0\n');
    const r = tsrun(['rm', '-f', a, 'nosuch', b, '../x']);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: `${a}\n${b}\n`, stderr: 'tsrun: no such container: nosuch; no such container: ../x\n' });
    expect(runcLeftovers(a)).toEqual([]);
    expect(w.host.containerIds()).toEqual([]);
    // The same through the CLI (a global option sends rm there) and through rm's wired door (a bridged one).
    const c = name();
    runD(c, ['--net', 'none'], ['sleep', '100']);
    const viaCli = tsrun(['--log-level', 'error', 'rm', '-f', 'nosuch', c]);
    expect({ status: viaCli.status, stdout: viaCli.stdout, stderr: viaCli.stderr }).toEqual({ status: 1, stdout: `${c}\n`, stderr: 'tsrun: no such container: nosuch\n' });
    const d = name();
    runD(d, [], ['sleep', '100']);
    const wired = tsrun(['rm', '-f', d, 'nosuch']);
    expect({ status: wired.status, stdout: wired.stdout, stderr: wired.stderr }).toEqual({ status: 1, stdout: `${d}\n`, stderr: 'tsrun: no such container: nosuch\n' });
    expect(w.host.containerIds()).toEqual([]);
  });
});

describeIf('wait against the removal of what it waits for', () => {
  /** `tsrun wait ID` in the background, once it watches the container's exit directory (an inotify
   * descriptor open: it has named the instance it waits for), SIGSTOPped there. */
  async function stoppedWait(id: string): Promise<{ out: Promise<string>; cont: () => void }> {
    const child = w.host.spawnTsrun(['wait', id]);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => void (out += d.toString()));
    const ended = new Promise<string>((r) => child.once('exit', () => r(out)));
    const watching = (): boolean => {
      try {
        return readdirSync(`/proc/${child.pid}/fd`).some((fd) => readlinkSafe(`/proc/${child.pid}/fd/${fd}`).includes('inotify'));
      } catch {
        return false;
      }
    };
    await waitFor('the wait watching the exit directory', watching);
    process.kill(child.pid!, 'SIGSTOP');
    return { out: ended, cont: () => process.kill(child.pid!, 'SIGCONT') };
  }
  const stateDir = (id: string) => path.join(w.host.root, 'run', 'containers', id);

  it("a --rm container removed before the wait read its exit file: the wait prints its code (was -1)", async () => {
    const id = name('wr');
    runD(id, ['--rm', '--net', 'none'], ['sleep', '600']);
    const wait = await stoppedWait(id);
    ok(['kill', id]);
    await waitFor('the --rm container removed', () => !existsSync(stateDir(id)), 15_000);
    wait.cont();
    expect(await wait.out).toBe('137\n');
  });

  it('a name removed and created again meanwhile: the wait reports the one it waited for, not the new one', async () => {
    const id = name('wn');
    runD(id, ['--rm', '--net', 'none'], ['sleep', '600']);
    const wait = await stoppedWait(id);
    ok(['kill', id]);
    await waitFor('the --rm container removed', () => !existsSync(stateDir(id)), 15_000);
    runD(id, ['--net', 'none'], ['sh', '-c', 'exit 7']); // the same name, another container
    wait.cont();
    // Before: it waited for the new one and printed its 7 (or -1).
    expect(await wait.out).toBe('137\n');
    expect(ok(['wait', id])).toBe('7\n');
  });
});

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

describeIf('run --name of a container in use (the plain door hands it to run.cjs)', () => {
  it('running or exited detached: refused in one line, the detached container untouched', () => {
    const running = name();
    const exited = name();
    runD(running, ['--net', 'none'], ['sleep', '100']);
    runD(exited, ['--net', 'none'], ['true']);
    expect(ok(['wait', exited])).toBe('0\n');
    for (const net of ['none', 'host']) {
      for (const [id, suffix] of [[running, ''], [exited, ` (remove it first: tsrun rm ${exited})`]] as const) {
        const r = tsrun(['run', '--net', net, '--name', id, w.bundle, '--', 'echo', 'hi']);
        expect({ net, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ net, status: 125, stdout: '', stderr: `tsrun: container id ${id} is already in use${suffix}\n` });
      }
    }
    expect(runcStatus(running)).toBe('running');
    expect(ok(['ps', '-a', '-q']).split('\n').filter(Boolean).sort()).toEqual([exited, running].sort());
    ok(['rm', '-f', running, exited]);
  });

  it('two plain runs of one new name at once: one runs, the other is refused in one line; nothing left', async () => {
    for (let i = 0; i < 3; i++) {
      const id = name('dup');
      const both = await Promise.all([0, 1].map(() => new Promise<{ status: number | null; out: string; err: string }>((resolve) => {
        const c = w.host.spawnTsrun(['run', '--net', 'none', '--name', id, w.bundle, '--', 'sh', '-c', 'sleep 0.3; echo ran']);
        let out = '';
        let err = '';
        c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        c.once('close', (status) => resolve({ status, out, err }));
      })));
      const ran = both.filter((r) => r.status === 0);
      expect(ran).toEqual([{ status: 0, out: 'ran\n', err: '' }]);
      expect(both.filter((r) => r.status !== 0)).toEqual([{ status: 125, out: '', err: `tsrun: container id ${id} is already in use\n` }]);
      expect(runcLeftovers(id)).toEqual([]);
    }
  });
});

describeIf('conmon started as soon as the id is claimed, held on its start pipe until the bundle is written', () => {
  it('a setup that fails after conmon started (--net container: of no container, of itself): one line, 125, no conmon, nothing left', async () => {
    for (const target of ['nosuch', 'self']) {
      const id = name('held');
      const r = tsrun(['run', '-d', '--name', id, '--net', `container:${target === 'self' ? id : target}`, w.bundle, '--', 'sleep', '100']);
      expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 125, stdout: '' });
      expect(r.stderr).toMatch(/^tsrun: [^\n]*container[^\n]*\n$/);
      await waitFor('its conmon to end', () => w.host.monitors().every((l) => !l.includes(` -c ${id} `)));
      expect(ok(['ps', '-a', '-q']).split('\n')).not.toContain(id);
      expect(runcLeftovers(id)).toEqual([]);
    }
  });

  it('create leaves the container created under its conmon; start runs it; its log is the one conmon opened early', async () => {
    const id = name('held');
    expect(ok(['create', '--name', id, '--net', 'none', w.bundle, '--', 'sh', '-c', 'echo early; sleep 100']).trim()).toBe(id);
    expect(runcStatus(id)).toBe('created');
    expect(w.host.monitors().filter((l) => l.includes(` -c ${id} `))).toHaveLength(1);
    ok(['start', id]);
    await waitFor('the output', () => tsrun(['logs', id]).stdout === 'early\n');
    ok(['rm', '-f', id]);
    expect(runcLeftovers(id)).toEqual([]);
  });
});

describeIf('a name reclaimed from a run -d that died while runc create ran', () => {
  /** A run -d of `id`, left as one killed during runc create leaves it; its conmon stopped (a loaded
   * host: it sees its container end only later). Returns conmon's pid. */
  function killedDuringCreate(id: string): number {
    runD(id, ['--net', 'none'], ['sleep', '1000']);
    const dir = path.join(w.host.root, 'run', 'containers', id);
    const old = Number(readFileSync(path.join(dir, 'conmon.pid'), 'utf8'));
    const rec = JSON.parse(readFileSync(path.join(dir, 'container.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(dir, 'container.json'), JSON.stringify({ ...rec, detached: 'setup', ownerPid: spawnSync('true').pid!, ownerStart: '1' }));
    process.kill(old, 'SIGSTOP');
    return old;
  }

  function ended(pid: number): boolean {
    try {
      return /^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return true;
    }
  }

  it('gc kills its conmon before it deletes the container: nothing written into the next container of that name', async () => {
    const id = name('stalegc');
    const old = killedDuringCreate(id);
    try {
      const gc = tsrun(['gc']);
      expect(gc.status).toBe(0);
      runD(id, ['--net', 'none'], ['sleep', '1000']);
    } finally {
      try {
        process.kill(old, 'SIGCONT');
      } catch {
        // killed
      }
    }
    await waitFor('the old conmon to end', () => ended(old));
    await new Promise((r) => setTimeout(r, 100)); // its exit command, had it run
    expect(existsSync(path.join(w.host.root, 'run', 'containers', id, 'exits', id))).toBe(false);
    expect(runcStatus(id)).toBe('running');
  });

  it('its conmon, still monitoring the created container, is killed first: it writes no exit file into the new container', async () => {
    const id = name('stale');
    runD(id, ['--net', 'none'], ['sleep', '1000']);
    const dir = path.join(w.host.root, 'run', 'containers', id);
    const old = Number(readFileSync(path.join(dir, 'conmon.pid'), 'utf8'));
    // What a run -d killed during runc create leaves: the record its setup wrote, owned by a tsrun
    // that is gone, and conmon monitoring the created container.
    const rec = JSON.parse(readFileSync(path.join(dir, 'container.json'), 'utf8')) as Record<string, unknown>;
    const gone = spawnSync('true').pid!;
    writeFileSync(path.join(dir, 'container.json'), JSON.stringify({ ...rec, detached: 'setup', ownerPid: gone, ownerStart: '1' }));
    // Stopped, the old conmon sees its container end only after the new one is made (a loaded host).
    process.kill(old, 'SIGSTOP');
    try {
      runD(id, ['--net', 'none'], ['sleep', '1000']);
    } finally {
      try {
        process.kill(old, 'SIGCONT');
      } catch {
        // killed
      }
    }
    const ended = () => {
      try {
        return /^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${old}/stat`, 'utf8'));
      } catch {
        return true;
      }
    };
    await waitFor('the old conmon to end', ended);
    await new Promise((r) => setTimeout(r, 100)); // its exit command, had it run
    expect(existsSync(path.join(dir, 'exits', id))).toBe(false);
    expect(runcStatus(id)).toBe('running');
    expect(tsrun(['ps', '-a']).stdout).not.toMatch(new RegExp(`${id}\\s+exited`));
  });
});

describeIf('run -d interrupted while runc create runs', () => {
  it('SIGINT after the start byte: one line, non-zero, the created container, its conmon and its port removed', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-races-int-'));
    const marker = path.join(dir, 'hook-ran');
    // runc create waits for this hook (a second), so the signal lands while it runs
    const bundle = makeBundle((spec) => {
      spec.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${marker}; sleep 1`] }] };
    });
    try {
      const id = name('int');
      const child = w.host.spawnTsrun(['run', '-d', '--name', id, '-p', '18481:80', bundle, '--', 'sleep', '1000']);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await waitFor('runc create to run the hook', () => existsSync(marker));
      const conmon = Number(readFileSync(path.join(w.host.root, 'run', 'containers', id, 'conmon.pid'), 'utf8'));
      child.kill('SIGINT');
      const code = await exited;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      expect(stderr.trim().split('\n')).toEqual(['tsrun: interrupted by SIGINT during setup']);
      expect(existsSync(`/proc/${conmon}/cmdline`) && readFileSync(`/proc/${conmon}/cmdline`, 'utf8').includes(id)).toBe(false);
      expect(runcLeftovers(id)).toEqual([]);
      expect(existsSync(path.join(w.host.root, 'run', 'containers', id))).toBe(false);
      // the port is free again: a new container may publish it
      const again = name('int');
      runD(again, ['-p', '18481:80'], ['sleep', '1000']);
    } finally {
      removeBundle(bundle);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeIf('run -d --net none and host through their own door (run-detached.cjs, no engine)', () => {
  /** `tsrun ARGS` with a preload that writes the bundles the process loaded into a file. */
  function loading(args: string[]): { status: number | null; stdout: string; stderr: string; loaded: string[] } {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-races-door-'));
    try {
      const preload = path.join(dir, 'loaded.cjs');
      const out = path.join(dir, 'loaded.json');
      writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache).map((f) => require('node:path').basename(f)))));`);
      const r = w.host.tsrun(args, { timeoutMs: 30_000, env: { NODE_OPTIONS: `-r ${preload}` } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded: existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as string[]) : [] };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('runs the container without loading run.cjs; a name in use goes to run.cjs, which refuses it; the exit command still cleans up', async () => {
    for (const net of ['none', 'host']) {
      const id = name('door');
      const r = loading(['run', '-d', '--name', id, '--net', net, w.bundle, '--', 'sleep', '100']);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: `${id}\n`, stderr: '' });
      expect(r.loaded).toContain('run-detached.cjs');
      expect(r.loaded).not.toContain('run.cjs');
      expect(runcStatus(id)).toBe('running');
      const again = loading(['run', '-d', '--name', id, '--net', net, w.bundle, '--', 'true']);
      expect({ status: again.status, stdout: again.stdout, stderr: again.stderr }).toEqual({ status: 125, stdout: '', stderr: `tsrun: container id ${id} is already in use\n` });
      expect(again.loaded).toEqual(expect.arrayContaining(['run-detached.cjs', 'run.cjs']));
      expect(runcStatus(id)).toBe('running');
      ok(['rm', '-f', id]);
      expect(runcLeftovers(id)).toEqual([]);
    }
    // A container that ends on its own: conmon's exit command (tsrun cleanup) records its code.
    const id = name('door');
    runD(id, ['--net', 'none'], ['sh', '-c', 'exit 3']);
    expect(ok(['wait', id])).toBe('3\n');
    await waitFor('the exit command to clean up', () => JSON.parse(ok(['inspect', id]))[0].state.status === 'exited');
    expect(runcLeftovers(id)).toEqual([]);
    ok(['rm', id]);
  });

  it('a stale --name (its run -d killed before conmon took over) is reclaimed through run.cjs', () => {
    const id = name('door');
    const state = path.join(w.host.root, 'run', 'containers', id);
    // What a run -d SIGKILLed right after its claim leaves: the claim of a process that is gone.
    spawnSync('mkdir', ['-p', '-m', '0700', state]);
    writeFileSync(path.join(state, 'container.json'), JSON.stringify({ id, ownerPid: 999_999, ownerStart: '1', created: new Date(Date.now() - 60_000).toISOString(), bundle: w.bundle, detached: 'setup' }));
    const r = loading(['run', '-d', '--name', id, '--net', 'none', w.bundle, '--', 'sleep', '100']);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: `${id}\n`, stderr: '' });
    // (run.cjs's reclaim loads the engine, and a run -d that loaded koffi leaves through _exit: no
    // 'exit' event for the preload to list the bundles in.)
    expect(runcStatus(id)).toBe('running');
    expect(ok(['ps', '-q'])).toContain(`${id}\n`);
    ok(['rm', '-f', id]);
  });

  it('SIGINT while runc create runs: one line, non-zero, nothing left (as through run.cjs)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-races-int-'));
    const marker = path.join(dir, 'hook-ran');
    const bundle = makeBundle((spec) => {
      spec.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${marker}; sleep 1`] }] };
    });
    try {
      const id = name('int');
      const child = w.host.spawnTsrun(['run', '-d', '--name', id, '--net', 'none', bundle, '--', 'sleep', '1000']);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await waitFor('runc create to run the hook', () => existsSync(marker));
      child.kill('SIGINT');
      expect(await exited).toBe(125);
      expect(stderr).toBe('tsrun: interrupted by SIGINT during setup\n');
      expect(runcLeftovers(id)).toEqual([]);
      expect(existsSync(path.join(w.host.root, 'run', 'containers', id))).toBe(false);
      expect(existsSync(path.join(w.host.root, 'run', 'netns-users', id))).toBe(false);
    } finally {
      removeBundle(bundle);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeIf('run -d interrupted between the records and the start', () => {
  it('a terminal resize (SIGWINCH) there is no interruption: the container starts and its id is printed', async () => {
    const id = name('winch');
    const child = w.host.spawnTsrun(['run', '-d', '--name', id, '--net', 'none', w.bundle, '--', 'sleep', '1000'], { TSRUN_FAULT_PAUSE_AT: 'container recorded:1500' });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const record = path.join(w.host.root, 'run', 'containers', id, 'container.json');
    await waitFor('the container to be recorded', () => existsSync(record) && readFileSync(record, 'utf8').includes('"monitored"'));
    process.kill(child.pid!, 'SIGWINCH');
    expect({ code: await exited, stdout, stderr }).toEqual({ code: 0, stdout: `${id}\n`, stderr: '' });
    expect(runcStatus(id)).toBe('running');
    ok(['rm', '-f', id]);
    expect(runcLeftovers(id)).toEqual([]);
  });

  it('SIGINT once the container is recorded, before its start is done: one line, 125, the container, its conmon and its network removed', async () => {
    // --net none through the plain detached door, the default bridge through run.cjs's
    for (const net of [['--net', 'none'], []]) {
      const id = name('int');
      // TSRUN_FAULT_PAUSE_AT holds tsrun right there for 1.5 s (runtime/tx.ts faultPause).
      const child = w.host.spawnTsrun(['run', '-d', '--name', id, ...net, w.bundle, '--', 'sleep', '1000'], { TSRUN_FAULT_PAUSE_AT: 'container recorded:1500' });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      let stdout = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const record = path.join(w.host.root, 'run', 'containers', id, 'container.json');
      const recorded = () => {
        try {
          return (JSON.parse(readFileSync(record, 'utf8')) as { detached?: string }).detached === 'monitored';
        } catch {
          return false;
        }
      };
      await waitFor('the container to be recorded', recorded);
      // Not started yet: runc still has its exec fifo (the init may have gone on meanwhile: run -d
      // opens the fifo before its records).
      expect(runcStatus(id)).toBe('created');
      process.kill(child.pid!, 'SIGINT');
      expect({ net, code: await exited, stdout, stderr }).toEqual({ net, code: 125, stdout: '', stderr: 'tsrun: interrupted by SIGINT during setup\n' });
      expect(runcLeftovers(id)).toEqual([]);
      expect(existsSync(path.join(w.host.root, 'run', 'containers', id))).toBe(false);
      await waitFor('its conmon to end', () => w.host.monitors().every((l) => !l.includes(` -c ${id} `)));
      expect(w.leaks()).toEqual([]);
    }
  });

  it('a SIGINT that comes while tsrun runs on without polling its event loop (stopped there, signalled, continued) is seen too', async () => {
    // The signal reaches libuv at once but its JS handler only at the loop's next poll: the last
    // look for a signal must let the loop poll first (shim/supervise.ts pollSignals). One
    // setImmediate did not: resumed from a poll-phase callback, tsrun printed the id and exited 0.
    const id = name('intsync');
    // TSRUN_FAULT_PAUSE_AT=<point>:stop SIGSTOPs tsrun right there (runtime/tx.ts faultPause).
    const child = w.host.spawnTsrun(['run', '-d', '--name', id, '--net', 'none', w.bundle, '--', 'sleep', '1000'], { TSRUN_FAULT_PAUSE_AT: 'container recorded:stop' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await signalWhileStopped(child.pid!, 'SIGINT', 'tsrun to stop once the container is recorded');
    expect({ code: await exited, stdout, stderr }).toEqual({ code: 125, stdout: '', stderr: 'tsrun: interrupted by SIGINT during setup\n' });
    expect(runcLeftovers(id)).toEqual([]);
    expect(existsSync(path.join(w.host.root, 'run', 'containers', id))).toBe(false);
    await waitFor('its conmon to end', () => w.host.monitors().every((l) => !l.includes(` -c ${id} `)));
    expect(w.leaks()).toEqual([]);
  });
});

/** Processes (pid and command) that hold `file` open. */
function holdersOf(file: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) out.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`);
      } catch {
        // closed meanwhile
      }
    }
  }
  return out;
}

describeIf('run -d started from a process with a descriptor open above a gap', () => {
  it("conmon and the DNS resolver keep none of the caller's descriptors (a lock taken with exec 200>file; flock 200 is released when the caller exits)", () => {
    // (bash: dash redirects only 0-9.) Node marks inherited descriptors close-on-exec only up to the
    // first gap above 15: fd 200
    // (3-15 closed) stayed inheritable, and conmon, which outlives run -d, kept it.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-fds-'));
    const lock = path.join(dir, 'lock');
    try {
      // --net none through the plain detached door, the default bridge through run.cjs's, and a
      // network of its own, whose DNS resolver this run -d starts.
      const network = 'fdnet';
      ok(['network', 'create', network]);
      // A foreground run on it first: it starts the network's DNS resolver (nothing else of this
      // run outlives it).
      const fg = w.host.ns.exec('bash', ['-c', 'exec 200>"$1"; shift; exec "$@"', 'bash', lock, TSRUN_BIN, 'run', '--net', network, w.bundle, '--', 'true'], { env: w.host.env });
      expect({ status: fg.status, stderr: fg.stderr }).toEqual({ status: 0, stderr: '' });
      expect({ net: 'foreground', holders: holdersOf(lock) }).toEqual({ net: 'foreground', holders: [] });
      for (const net of [['--net', 'none'], [], ['--net', network]]) {
        const id = name('fds');
        const r = w.host.ns.exec('bash', ['-c', 'exec 200>"$1"; shift; exec "$@"', 'bash', lock, TSRUN_BIN, 'run', '-d', '--name', id, ...net, w.bundle, '--', 'sleep', '1000'], { env: w.host.env });
        expect({ net, status: r.status, stderr: r.stderr }).toEqual({ net, status: 0, stderr: '' });
        expect(w.host.monitors().filter((l) => l.includes(` -c ${id} `))).toHaveLength(1);
        expect({ net, holders: holdersOf(lock) }).toEqual({ net, holders: [] });
        ok(['rm', '-f', id]);
      }
      ok(['network', 'rm', network]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
