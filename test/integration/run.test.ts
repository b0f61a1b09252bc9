// `tsrun run` end to end: real busybox containers through real runc, inside a sandbox host.
import { afterAll, describe, expect, it } from '@jest/globals';
import { sandboxPerFile } from '../harness/per-file.js';
import { createHash } from 'node:crypto';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { SandboxHost, uniqueId, cgroupDirsOf, hasTerminal, isStopped, signalWhileStopped, waitFor, BUSYBOX_ROOTFS, TSRUN_BIN, makeBundle, removeBundle } from '../harness/sandbox.js';
import { hostHierarchies } from '../../runtime/cgroups/hierarchies.js';
import { ownCgroupProcsFile } from '../../runtime/cgroups/migration-warmup.js';

let host: SandboxHost;
let bundle: string;
const ids: string[] = [];
sandboxPerFile('run', ids, (h, b) => {
  host = h;
  bundle = b;
  // Something only this sandbox host has, so --net host can be told from --net none.
  h.ns.sh('ip link add tsrunhostA type veth peer name tsrunhostB && ip link set tsrunhostA up');
});

function spawnSyncOk(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function run(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const id = uniqueId('run');
  ids.push(id);
  return { id, ...host.tsrun(['run', '--name', id, ...args], opts) };
}

describe('tsrun run: networking namespaces', () => {
  it('--net none gives the container only lo, up', () => {
    const r = run(['--net', 'none', bundle, '--', 'ip', '-o', 'link']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const links = r.stdout.trim().split('\n');
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  });

  it('--net host shows the host interfaces', () => {
    const r = run(['--net', 'host', bundle, '--', 'ip', '-o', 'link']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('tsrunhostA');
    expect(r.stdout).toContain('tsrunhostB');
  });
});

describe('tsrun run: process', () => {
  it('passes the exit status through', () => {
    expect(run(['--net', 'none', bundle, '--', 'sh', '-c', 'exit 7']).status).toBe(7);
    expect(run(['--net', 'none', bundle, '--', 'true']).status).toBe(0);
  });

  it('passes stdin, stdout and stderr through', () => {
    const r = run(['--net', 'none', bundle, '--', 'sh', '-c', 'read line; echo "out:$line"; echo "err:$line" >&2'], { input: 'hello\n' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('out:hello\n');
    expect(r.stderr).toBe('err:hello\n');
  });

  it('overrides args, env, hostname and cwd', () => {
    const r = run(['--net', 'none', '--env', 'GREETING=hi', '-e', 'PATH=/bin', '--hostname', 'box1', '--cwd', '/tmp', bundle, '--', 'sh', '-c', 'echo "$GREETING $PATH $(hostname) $(pwd)"']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hi /bin box1 /tmp\n');
  });

  it("-e KEY without a value takes the caller's value, and leaves KEY out when the caller has none (docker's -e)", () => {
    const r = run(['--net', 'none', '-e', 'TSRUN_TEST_FROM_CALLER', '-e', 'TSRUN_TEST_UNSET', bundle, '--', 'sh', '-c', 'echo "$TSRUN_TEST_FROM_CALLER ${TSRUN_TEST_UNSET-unset}"'], { env: { TSRUN_TEST_FROM_CALLER: 'passed on' } });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: 'passed on unset\n', stderr: '' });
  });

  it("--env-file: docker's format (no quotes processing, # comments, a bare KEY takes the caller's value); -e after it wins", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-envfile-'));
    try {
      writeFileSync(path.join(dir, 'a.env'), '# settings\nA="quoted"\n  B=two words  \nTSRUN_TEST_FROM_CALLER\nTSRUN_TEST_UNSET\nC=from-file\n');
      const r = run(['--net', 'none', '--env-file', path.join(dir, 'a.env'), '-e', 'C=from-e', bundle, '--', 'sh', '-c', 'printf "%s|%s|%s|%s|%s\\n" "$A" "$B" "$TSRUN_TEST_FROM_CALLER" "${TSRUN_TEST_UNSET-unset}" "$C"'], { env: { TSRUN_TEST_FROM_CALLER: 'passed on' } });
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 0, stdout: '"quoted"|two words  |passed on|unset|from-e\n', stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('-u/--user: a uid, a name from the rootfs, USER:GROUP; HOME from the entry', () => {
    const cases: [string, string][] = [
      ['1234', 'uid=1234 gid=0(root) groups=0(root) /'],
      ['0', 'uid=0(root) gid=0(root) groups=0(root) /root'],
      ['nobody', 'uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup) /nonexistent'],
      ['nobody:root', 'uid=65534(nobody) gid=0(root) groups=0(root) /nonexistent'],
      ['1234:nogroup', 'uid=1234 gid=65534(nogroup) groups=65534(nogroup) /'],
    ];
    for (const [user, want] of cases) {
      const r = run(['--net', 'none', '-u', user, bundle, '--', 'sh', '-c', 'echo "$(id) $HOME"']);
      expect({ user, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ user, status: 0, stdout: `${want}\n`, stderr: '' });
    }
  });

  it("-w and --workdir set the working directory as --cwd does (docker's and exec's name)", () => {
    for (const flag of [['-w', '/tmp'], ['--workdir=/etc']]) {
      const r = run(['--net', 'none', ...flag, bundle, '--', 'pwd']);
      expect({ flag, status: r.status, stdout: r.stdout }).toEqual({ flag, status: 0, stdout: `${flag.join(' ').replace(/^.*[ =]/, '')}\n` });
    }
    const r = run(['--net', 'none', '-w', '/tmp', '--cwd', '/etc', bundle, '--', 'pwd']);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 125, stdout: '', stderr: 'tsrun: --cwd "/etc" and --workdir "/tmp" disagree: give one of them\n' });
  });

  it("--rm is accepted, as in docker's scripts: a foreground container is removed when it ends anyway", () => {
    for (const net of ['none', 'bridge']) {
      const r = run(['--rm', '--net', net, bundle, '--', 'echo', 'hi']);
      expect({ net, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ net, status: 0, stdout: 'hi\n', stderr: '' });
      expect(host.tsrun(['inspect', r.id]).status).toBe(1); // no such container: docker's 1
    }
  });

  it('a container killed by signal N exits 128+N', async () => {
    const id = uniqueId('kill');
    ids.push(id);
    const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'sleep', '1000']);
    const pidFile = path.join(host.root, 'run', 'containers', id, 'pid');
    await waitFor('the container to start', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0);
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(137);
  });

  it('SIGTERM and SIGINT sent to tsrun reach the container', async () => {
    for (const [sig, expected] of [['SIGTERM', 43], ['SIGINT', 42]] as const) {
      const id = uniqueId('sig');
      ids.push(id);
      const script = 'trap "echo got-INT; exit 42" INT; trap "echo got-TERM; exit 43" TERM; echo ready; while true; do sleep 0.05; done';
      const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'sh', '-c', script]);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('the container to trap signals', () => out.includes('ready'));
      child.kill(sig);
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      expect(out).toContain(`got-${sig.slice(3)}`);
      expect(code).toBe(expected);
    }
  });

  it('a terminal resize (SIGWINCH) during setup does not abort it; SIGINT does, with one line and nothing left', async () => {
    for (const [sig, expected] of [
      ['SIGWINCH', { code: 0, out: 'ran\n', err: '' }],
      ['SIGINT', { code: 125, out: '', err: 'tsrun: interrupted by SIGINT during setup\n' }],
    ] as const) {
      const id = uniqueId('setup-sig');
      ids.push(id);
      // TSRUN_FAULT_PAUSE_AT holds tsrun at the end of its setup for 1.5 s (runtime/tx.ts faultPause).
      const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'echo', 'ran'], { TSRUN_FAULT_PAUSE_AT: 'set up:1500' });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      await waitFor('the setup to reach its end', () => existsSync(path.join(host.root, 'run', 'containers', id, 'bundle', 'config.json')));
      child.kill(sig);
      expect({ sig, code: await exited, out, err }).toEqual({ sig, ...expected });
      expect(existsSync(path.join(host.root, 'run', 'containers', id))).toBe(false);
    }
  });

  it('SIGINT to a tsrun stopped at the end of its setup, then SIGCONT: first seen after runc\'s spawn, it is the container\'s (130, nothing left)', async () => {
    const id = uniqueId('setup-stop');
    ids.push(id);
    // TSRUN_FAULT_PAUSE_AT=<point>:stop SIGSTOPs tsrun there without a turn of its event loop
    // (runtime/tx.ts faultPause): the signal reaches its handler only at the loop's next poll,
    // which comes after runc's spawn (the setup's last look before it is at a flag, shim/run.ts).
    // From the spawn on a signal is the container's: held until runc can take it, then passed on.
    // The container shares the host's pid namespace, so that its program is no namespace's PID 1
    // (which the kernel shields from a signal it has no handler for, and a program installs its
    // handlers only some time after its exec): SIGINT ends it whenever it comes.
    const shared = makeBundle((spec) => {
      spec.linux.namespaces = spec.linux.namespaces.filter((n: { type: string }) => n.type !== 'pid');
    });
    try {
      const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', '--stop-timeout', '600', shared, '--', 'sleep', '600'], { TSRUN_FAULT_PAUSE_AT: 'set up:stop' });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      await signalWhileStopped(child.pid!, 'SIGINT', 'tsrun to stop at the end of its setup');
      expect({ code: await exited, out, err }).toEqual({ code: 128 + 2, out: '', err: '' });
      expect(existsSync(path.join(host.root, 'run', 'containers', id))).toBe(false);
      expect(cgroupDirsOf(id)).toEqual([]);
    } finally {
      removeBundle(shared);
    }
  });

  it('SIGTERM right after runc was spawned reaches the container, not the setup (its trap: 7), nothing left', async () => {
    // Since session 9 a signal after runc's spawn is the container's, not the setup's (shim/run.ts):
    // held until runc can take it (its pid file), then passed on by runc. TSRUN_FAULT_PAUSE_AT=
    // spawned:stop stops tsrun right after the spawn; runc goes on and the container says "up" (its
    // stdout is tsrun's) once its trap is set; the signal sent to tsrun then reaches tsrun's
    // handler only when it goes on, at its first poll after the spawn.
    const id = uniqueId('spawn-sig');
    ids.push(id);
    const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', '--stop-timeout', '600', bundle, '--', 'sh', '-c', 'trap "echo got-term; exit 7" TERM; echo up; while :; do sleep 0.1; done'], { TSRUN_FAULT_PAUSE_AT: 'spawned:stop' });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      await waitFor('the container to run while tsrun is stopped right after the spawn', () => isStopped(child.pid!) && out === 'up\n', 30_000);
      process.kill(child.pid!, 'SIGTERM');
    } finally {
      process.kill(child.pid!, 'SIGCONT');
    }
    expect({ code: await exited, out, err }).toEqual({ code: 7, out: 'up\ngot-term\n', err: '' });
    expect(existsSync(path.join(host.root, 'run', 'containers', id))).toBe(false);
    expect(existsSync(path.join(host.root, 'run', 'runc', id))).toBe(false);
    expect(existsSync(path.join(host.root, 'run', 'netns-users', id))).toBe(false);
    expect(cgroupDirsOf(id)).toEqual([]);
  });

  it('SIGTERM right after the spawn to a runc that never starts the container: held, and at the stop timeout runc is killed (137, nothing left)', async () => {
    // A runc that waits on a fifo nobody writes stands in for one early in its start-up, before it
    // installed its own signal handlers: passed on then, a SIGTERM would end runc itself. Held
    // instead until runc can take it; the stop timeout (1 s) kills runc and what it started.
    const id = uniqueId('spawn-held');
    ids.push(id);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-slow-runc-'));
    try {
      const fifo = path.join(dir, 'never-written');
      const marker = path.join(dir, 'went-on');
      spawnSyncOk('mkfifo', [fifo]);
      const wrapper = path.join(dir, 'runc');
      writeFileSync(wrapper, `#!/bin/sh\nread -r _ < ${fifo}\ntouch ${marker}\nexec runc "$@"\n`, { mode: 0o755 });
      const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', '--stop-timeout', '1', bundle, '--', 'echo', 'ran'], { TSRUN_FAULT_PAUSE_AT: 'spawned:stop', TSRUN_RUNC: wrapper });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      await signalWhileStopped(child.pid!, 'SIGTERM', 'tsrun to stop right after the spawn');
      expect({ code: await exited, out, err }).toEqual({ code: 128 + 9, out: '', err: '' });
      expect(existsSync(path.join(host.root, 'run', 'containers', id))).toBe(false);
      expect(existsSync(path.join(host.root, 'run', 'runc', id))).toBe(false);
      expect(existsSync(path.join(host.root, 'run', 'netns-users', id))).toBe(false);
      expect(cgroupDirsOf(id)).toEqual([]);
      // The "runc" got no SIGTERM (its sh would have died of it at once, long before the timeout)
      // and was killed, not let go on: nobody opened the fifo for writing, so had it lived it
      // would still wait; opening it now (non-blocking, for writing) finds no reader.
      expect(() => closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK))).toThrow(/ENXIO/);
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never modifies the user bundle', () => {
    const before = createHash('sha256').update(readFileSync(path.join(bundle, 'config.json'))).digest('hex');
    expect(run(['--net', 'none', '--memory', '64m', '--hostname', 'x', bundle, '--', 'true']).status).toBe(0);
    const after = createHash('sha256').update(readFileSync(path.join(bundle, 'config.json'))).digest('hex');
    expect(after).toBe(before);
  });

  it('a relative root.path is resolved against the bundle', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-relbundle-'));
    try {
      const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
      spec.root.path = 'rootfs';
      writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
      symlinkSync(BUSYBOX_ROOTFS, path.join(dir, 'rootfs'));
      const r = run(['--net', 'none', dir, '--', 'true']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tsrun run: resources', () => {
  it('memory, swap, cpus, cpu-shares and pids limits reach the container cgroup', () => {
    const v1 = existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');
    const script = v1
      ? 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max'
      : 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/pids.max';
    const r = run(['--net', 'none', '--memory', '64m', '--memory-swap', '96m', '--cpus', '0.5', '--cpu-shares', '512', '--pids-limit', '20', bundle, '--', 'sh', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const values = r.stdout.trim().split('\n');
    if (v1) {
      expect(values).toEqual(['67108864', '100663296', '50000', '100000', '512', '20']);
    } else {
      // v2: swap.max is swap alone; runc converts shares to weight.
      expect(values).toEqual(['67108864', '33554432', '50000 100000', expect.any(String), '20']);
    }
  });

  it('the pids limit is enforced', () => {
    const script = 'i=0; while [ $i -lt 8 ]; do sleep 1 & i=$((i+1)); done; wait; echo done';
    const limited = run(['--net', 'none', '--pids-limit', '5', bundle, '--', 'sh', '-c', script]);
    expect(limited.stderr).toContain("can't fork");
    expect(limited.status).not.toBe(0);
    const roomy = run(['--net', 'none', '--pids-limit', '20', bundle, '--', 'sh', '-c', script]);
    expect(roomy.stdout).toBe('done\n');
    expect(roomy.status).toBe(0);
  });

  it('the container cgroup sits under tsrun/<id> while it runs and is gone after, tsrun\'s parent stays', async () => {
    const id = uniqueId('cg');
    ids.push(id);
    const child = host.spawnTsrun(['run', '--name', id, '--net', 'none', '--memory', '32m', bundle, '--', 'sleep', '1000']);
    const pidFile = path.join(host.root, 'run', 'containers', id, 'pid');
    await waitFor('the container to start', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`/tsrun/${id}`);
    const dirs = cgroupDirsOf(id);
    expect(dirs.length).toBeGreaterThan(0);
    child.kill('SIGTERM'); // sleep as pid 1 ignores TERM: kill it directly
    process.kill(pid, 'SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(cgroupDirsOf(id)).toEqual([]);
    // tsrun's parent stays (as after a detached container): the next runc need not make it again
    // (jest's global teardown removes it when empty, test/harness/reap-pins.ts)
    for (const dir of dirs) expect(existsSync(path.dirname(dir))).toBe(true);
  });
});

describe('tsrun run: the cgroup warm-up', () => {
  it('moves tsrun nowhere: started in a cgroup of its own, it is still there while its container runs', async () => {
    // The warm-up (runtime/cgroups/migration-warmup.ts) writes tsrun into the cgroup.procs of the
    // cgroup it is in; written anywhere else, it would move tsrun.
    const own = ownCgroupProcsFile(hostHierarchies(), readFileSync('/proc/self/cgroup', 'utf8'));
    expect(own).toBeDefined();
    const id = uniqueId('warm');
    ids.push(id);
    const cg = path.join(path.dirname(own!), `tsrun-test-${id}`);
    mkdirSync(cg);
    try {
      const child = host.ns.spawn('sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec ${TSRUN_BIN} "$@"`, 'sh', 'run', '--name', id, '--net', 'none', bundle, '--', 'sh', '-c', 'echo up; read x'], { env: { ...host.env } });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('the container', () => out.includes('up'));
      await new Promise((resolve) => setTimeout(resolve, 200)); // the warm-up's write is long done
      const line = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8').split('\n').find((l) => l.endsWith(`/tsrun-test-${id}`));
      expect(line).toBeDefined();
      child.stdin!.end('\n');
      expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
    } finally {
      rmdirSync(cg);
    }
  });
});

describe('tsrun run: user errors give one line, exit 125 and leave nothing', () => {
  const cases: [string, () => string[], RegExp, NodeJS.ProcessEnv][] = [
    ['no bundle directory', () => ['/nonexistent/bundle'], /bundle \/nonexistent\/bundle: no such directory/, {}],
    ['no config.json', () => [emptyBundle()], /config\.json not found/, {}],
    ['malformed config.json', () => [bundleWith('{ "ociVersion": ')], /config\.json is not valid JSON/, {}],
    ['a field of the wrong type', () => [bundleWith(JSON.stringify({ ...baseSpec(), process: { ...baseSpec().process, args: 'sh' } }))], /config\.json: process\.args: must be Array/, {}],
    ['a missing field', () => [bundleWith(JSON.stringify({ ...baseSpec(), ociVersion: undefined }))], /config\.json: ociVersion: is required/, {}],
    ['a bad namespace type', () => [bundleWith(JSON.stringify({ ...baseSpec(), linux: { namespaces: [{ type: 'pid' }, { type: 'bogus' }] } }))], /linux\.namespaces\[1\]\.type: must be one of/, {}],
    ['a missing rootfs', () => [bundleWith(JSON.stringify({ ...baseSpec(), root: { path: '/nonexistent/rootfs' } }))], /root\.path "\/nonexistent\/rootfs": no such directory/, {}],
    ['an unknown --net value', () => ['--net', 'bad/name', bundle], /invalid --net "bad\/name"/, {}],
    ['a bad size', () => ['--memory', '12q', bundle], /invalid --memory "12q"/, {}],
    ['a bad number', () => ['--pids-limit', 'many', bundle], /invalid --pids-limit "many"/, {}],
    ['too many cpus', () => ['--cpus', '1000', bundle], /invalid --cpus "1000": this host has only/, {}],
    ['swap below memory', () => ['--memory', '64m', '--memory-swap', '32m', bundle], /--memory-swap must be at least --memory/, {}],
    ['an unknown option', () => ['--bogus', bundle], /unknown option '--bogus'/, {}],
    ['an invalid container id', () => ['--name', '../../etc', bundle], /invalid container id/, {}],
    ['a relative --cwd', () => ['--cwd', 'tmp', bundle], /invalid --cwd "tmp": must be an absolute path/, {}],
    ['a missing --env-file', () => ['--env-file', '/nonexistent/x.env', bundle], /^tsrun: invalid --env-file "\/nonexistent\/x\.env": no such file$/, {}],
    ['a malformed --user', () => ['-u', 'a:b:c', bundle], /^tsrun: invalid --user "a:b:c": expected USER or USER:GROUP, each a number or a name$/, {}],
    ['a user the root filesystem does not have', () => ['--user', 'mallory', bundle], /^tsrun: unable to find user mallory: no matching entries in the root filesystem's \/etc\/passwd$/, {}],
    ['a group it does not have, on a network', () => ['-u', 'nobody:staff', '--net', 'bridge', bundle], /^tsrun: unable to find group staff/, {}],
    ['runc not installed', () => [bundle], /runc-not-here is not installed/, { TSRUN_RUNC: 'runc-not-here' }],
    // runc's console is tsrun's controlling terminal; run from a terminal, -t works (the CI has none).
    ...(hasTerminal() ? [] : ([
      ['-t without a terminal', () => ['-t', '--net', 'none', bundle], /^tsrun: the input device is not a TTY: drop -t \(and keep -i to pass stdin\), or run from a terminal$/, {}],
      ['-it without a terminal, on a network', () => ['-it', '--net', 'bridge', bundle], /^tsrun: the input device is not a TTY/, {}],
    ] as [string, () => string[], RegExp, NodeJS.ProcessEnv][])),
  ];
  const made: string[] = [];
  afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

  function baseSpec() {
    return JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8'));
  }
  function emptyBundle(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-empty-'));
    made.push(dir);
    return dir;
  }
  function bundleWith(text: string): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-badbundle-'));
    made.push(dir);
    writeFileSync(path.join(dir, 'config.json'), text);
    return dir;
  }

  it.each(cases)('%s', (_what, args, message, env) => {
    const id = uniqueId('err');
    ids.push(id);
    const caseArgs = args();
    const net = caseArgs.includes('--net') ? [] : ['--net', 'none'];
    const r = host.tsrun(['run', '--name', id, ...net, ...caseArgs, '--', 'true'], { env });
    expect(r.status).toBe(125);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tsrun: /);
    expect(lines[0]).toMatch(message);
  });

  it('a second live container with the same id is refused', async () => {
    const id = uniqueId('dup');
    ids.push(id);
    const first = host.spawnTsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'sh', '-c', 'echo up; read x']);
    let out = '';
    first.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the first container', () => out.includes('up'));
    const second = host.tsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'true']);
    expect(second.status).toBe(125);
    expect(second.stderr).toBe(`tsrun: container id ${id} is already in use\n`);
    expect(host.runcList()).toEqual([id]); // the first one is untouched
    first.stdin!.end('\n');
    expect(await new Promise((resolve) => first.once('exit', resolve))).toBe(0);
  });

  it('the id of a --net none container whose tsrun was SIGKILLed is reclaimed by the next run of that name', async () => {
    // The plain door (run-plain.cjs) hands a --name whose state exists to run.cjs's door, which
    // reclaims it: runc's container deleted, the namespace registration gone, the id reused.
    const id = uniqueId('stale');
    ids.push(id);
    const first = host.spawnTsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'sh', '-c', 'echo up; sleep 600']);
    let out = '';
    first.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the first container', () => out.includes('up'));
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    expect(host.runcList()).toEqual([id]); // left running by its dead tsrun
    const second = host.tsrun(['run', '--name', id, '--net', 'none', bundle, '--', 'echo', 'again']);
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe('again\n');
    expect(second.status).toBe(0);
    expect(host.runcList()).toEqual([]);
    expect(existsSync(path.join(host.root, 'run', 'netns-users', id))).toBe(false);
  });

  it('a program that does not exist exits 127 with runc\'s one line', () => {
    const r = run(['--net', 'none', bundle, '--', 'no-such-program']);
    expect(r.status).toBe(127);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('no-such-program');
  });

  it('a bind-mount source that does not exist exits 125 (docker\'s status: the container never started), not 127', () => {
    const b = makeBundle((spec) => {
      spec.mounts.push({ destination: '/data', type: 'bind', source: '/tmp/tsrun-no-such-mount-source', options: ['rbind'] });
    });
    try {
      const r = run(['--net', 'none', b, '--', 'true']);
      expect(r.status).toBe(125);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('/tmp/tsrun-no-such-mount-source');
      expect(host.runcList()).toEqual([]);
    } finally {
      removeBundle(b);
    }
  });
});

describe('tsrun run: logging', () => {
  it('writes JSON lines to the log file, and readable lines to stderr with --debug', () => {
    const id = uniqueId('log');
    ids.push(id);
    const logFile = path.join(host.root, `custom-${id}.log`);
    const r = host.tsrun(['--debug', '--log', logFile, 'run', '--name', id, '--net', 'none', bundle, '--', 'true']);
    expect(r.status).toBe(0);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.containerId === id && l.msg === 'container exited')).toBe(true);
    expect(r.stderr).toMatch(/DEBUG|INFO/);
    expect(r.stderr).toContain('container exited');
  });

  it('logs to TSRUN_ROOT/log/tsrun.log by default, honouring --log-level', () => {
    const id = uniqueId('lvl');
    ids.push(id);
    expect(host.tsrun(['--log-level', 'debug', 'run', '--name', id, '--net', 'none', bundle, '--', 'true']).status).toBe(0);
    const lines = readFileSync(host.logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.containerId === id && l.level === 20)).toBe(true);
  });
});
