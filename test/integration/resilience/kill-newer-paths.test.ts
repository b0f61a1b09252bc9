// A kill at the steps of the paths added last: `run -p`'s gate (runc started before the attach and
// held at its first createRuntime hook, reading tsrun's pipe; shim/runc-gate.ts) and `run -d`'s
// conmon (started through posix_spawn; shim/lifecycle/create.ts). After each, the caller's own
// next move (the same `run --name`, `rm -f`) must work and leave nothing, without `tsrun gc`.
// The moments are the code's own fault points (runtime/tx.ts faultPause: TSRUN_FAULT_PAUSE_AT).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { isStopped, makeBundle, removeBundle, SandboxHost, waitFor } from '../../harness/sandbox.js';

let host: SandboxHost;
let bundle: string;

beforeAll(async () => {
  host = await SandboxHost.create('hc8kill');
  bundle = makeBundle();
  ok(['network', 'create', 'hc8net', '--subnet', '10.93.0.0/24']);
  // Without name resolution: with the run directory full the resolver cannot start, and every
  // attach on a network with DNS waits its start-up timeout (15 s) before going on without it.
  ok(['network', 'create', 'hc8nodns', '--subnet', '10.92.0.0/24', '--disable-dns']);
});

afterAll(() => {
  removeBundle(bundle);
  host.destroy();
});

function ok(args: string[]): string {
  const r = host.tsrun(args);
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Pids of processes running the program `name` (its path's last part) with the word `id`. */
function processes(name: string, id: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return (cmd[0] === name || cmd[0]!.endsWith(`/${name}`)) && cmd.some((a) => a === id || a.includes(`/${id}/`) || a.endsWith(`/${id}`));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Pids of processes whose environment names `root` as TSRUN_ROOT (resolvers spawned for it). */
function processesOfRoot(root: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`TSRUN_ROOT=${root}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function collect(child: ChildProcess): { exited: Promise<number | null>; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : null))));
  return { exited, out: () => out, err: () => err };
}

const RUN = (id: string, port: number, net = 'hc8net') => ['run', '--name', id, '--net', net, '-p', `${port}:80`, bundle, '--', 'sh', '-c', 'echo the-container-ran'];

describe('run -p: runc held at its gate while the network is attached', () => {
  it('runc SIGKILLed at the gate: tsrun fails in one line and leaves nothing; the same name runs again', async () => {
    const id = 'hc8-gate-runc';
    const child = host.spawnTsrun(RUN(id, 8931), { TSRUN_FAULT_PAUSE_AT: 'gate:stop' });
    const c = collect(child);
    await waitFor('tsrun held at the gate', () => isStopped(child.pid!));
    const runcs = processes('runc', id);
    expect(runcs.length).toBeGreaterThan(0);
    for (const p of runcs) process.kill(p, 'SIGKILL');
    await waitFor('runc gone', () => processes('runc', id).length === 0);
    process.kill(child.pid!, 'SIGCONT');
    const status = await c.exited;
    expect({ status, out: c.out(), lines: c.err().trim().split('\n').length }).toEqual({ status: expect.any(Number), out: '', lines: 1 });
    expect(status).not.toBe(0);
    expect(host.leaks([id])).toEqual([]);
    const again = host.tsrun(RUN(id, 8931));
    expect({ status: again.status, stdout: again.stdout, stderr: again.stderr }).toEqual({ status: 0, stdout: 'the-container-ran\n', stderr: '' });
    expect(host.leaks([id])).toEqual([]);
  }, 60_000);

  it('tsrun SIGKILLed at the gate: rm -f removes what it left (no gc), and the same name runs again', async () => {
    const id = 'hc8-gate-rm';
    const child = host.spawnTsrun(RUN(id, 8932), { TSRUN_FAULT_PAUSE_AT: 'gate:stop' });
    const c = collect(child);
    await waitFor('tsrun held at the gate', () => isStopped(child.pid!));
    child.kill('SIGKILL');
    await c.exited;
    await waitFor('runc to give up', () => processes('runc', id).length === 0);
    // Before: rm and rm -f both said "runs in the foreground (tsrun process N): stop it, or end
    // that process" of a process already gone; only gc removed it.
    const plain = host.tsrun(['rm', id]);
    expect({ status: plain.status, stderr: plain.stderr }).toEqual({ status: 125, stderr: `tsrun: container ${id} was left by a tsrun process that is gone (killed): tsrun rm -f ${id} removes it\n` });
    const rm = host.tsrun(['rm', '-f', id]);
    expect({ status: rm.status, stdout: rm.stdout, stderr: rm.stderr }).toEqual({ status: 0, stdout: `${id}\n`, stderr: '' });
    expect(host.leaks([id])).toEqual([]);
    const again = host.tsrun(RUN(id, 8932));
    expect({ status: again.status, stdout: again.stdout, stderr: again.stderr }).toEqual({ status: 0, stdout: 'the-container-ran\n', stderr: '' });
    expect(host.leaks([id])).toEqual([]);
  }, 60_000);

  it('tsrun SIGKILLed while its container runs: rm -f stops and removes the container and its network (no gc)', async () => {
    const id = 'hc8-fg-running';
    const child = host.spawnTsrun(['run', '--name', id, '--net', 'hc8net', '-p', '8938:80', bundle, '--', 'sleep', '1000']);
    const c = collect(child);
    await waitFor('the container running', () => / running /.test(host.tsrun(['ps']).stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? ''), 20_000);
    child.kill('SIGKILL');
    await c.exited;
    const rm = host.tsrun(['rm', '-f', id]);
    expect({ status: rm.status, stdout: rm.stdout, stderr: rm.stderr }).toEqual({ status: 0, stdout: `${id}\n`, stderr: '' });
    expect(processes('runc', id)).toEqual([]);
    expect(host.runcList()).toEqual([]);
    expect(host.leaks([id])).toEqual([]);
  }, 60_000);

  it('tsrun SIGKILLed at the gate: the same run --name again works at once and leaves nothing', async () => {
    const id = 'hc8-gate-again';
    const child = host.spawnTsrun(RUN(id, 8933), { TSRUN_FAULT_PAUSE_AT: 'gate:stop' });
    const c = collect(child);
    await waitFor('tsrun held at the gate', () => isStopped(child.pid!));
    child.kill('SIGKILL');
    await c.exited;
    const again = host.tsrun(RUN(id, 8933));
    expect({ status: again.status, stdout: again.stdout, stderr: again.stderr }).toEqual({ status: 0, stdout: 'the-container-ran\n', stderr: '' });
    await waitFor('runc to give up', () => processes('runc', id).length === 0);
    expect(host.leaks([id])).toEqual([]);
  }, 60_000);
});

describe('run -d: conmon, started through posix_spawn and held on its start pipe during the setup', () => {
  const RUND = (id: string, port: number) => ['run', '-d', '--name', id, '--net', 'hc8net', '-p', `${port}:80`, bundle, '--', 'sleep', '1000'];

  it('conmon SIGKILLed while tsrun attaches the network: one line, non-zero, nothing left; the same run -d works', async () => {
    const id = 'hc8-conmon';
    const child = host.spawnTsrun(RUND(id, 8934), { TSRUN_FAULT_STOP_AFTER: 'attach to network' });
    const c = collect(child);
    await waitFor('tsrun stopped after its attach', () => isStopped(child.pid!));
    const conmons = processes('conmon', id);
    expect(conmons.length).toBeGreaterThan(0);
    for (const p of conmons) process.kill(p, 'SIGKILL');
    await waitFor('conmon gone', () => processes('conmon', id).length === 0);
    process.kill(child.pid!, 'SIGCONT');
    const status = await c.exited;
    expect({ status: status === 0 ? 0 : 'failed', out: c.out(), lines: c.err().trim().split('\n').length, internal: /internal error/.test(c.err()) }).toEqual({ status: 'failed', out: '', lines: 1, internal: false });
    expect({ left: host.leaks([id]), monitors: host.monitors() }).toEqual({ left: [], monitors: [] });
    ok(RUND(id, 8934));
    ok(['rm', '-f', id]);
    expect({ left: host.leaks([id]), monitors: host.monitors() }).toEqual({ left: [], monitors: [] });
  }, 60_000);

  it('tsrun SIGKILLed after its attach (conmon waiting on its start pipe): rm -f removes it (no gc); the same run -d works', async () => {
    const id = 'hc8-conmon-rm';
    const child = host.spawnTsrun(RUND(id, 8935), { TSRUN_FAULT_STOP_AFTER: 'attach to network' });
    const c = collect(child);
    await waitFor('tsrun stopped after its attach', () => isStopped(child.pid!));
    child.kill('SIGKILL');
    await c.exited;
    const rm = host.tsrun(['rm', '-f', id]);
    expect({ status: rm.status, stdout: rm.stdout, stderr: rm.stderr }).toEqual({ status: 0, stdout: `${id}\n`, stderr: '' });
    await waitFor('conmon gone', () => processes('conmon', id).length === 0);
    expect({ left: host.leaks([id]), monitors: host.monitors() }).toEqual({ left: [], monitors: [] });
    ok(RUND(id, 8935));
    ok(['rm', '-f', id]);
    expect({ left: host.leaks([id]), monitors: host.monitors() }).toEqual({ left: [], monitors: [] });
  }, 60_000);
});

describe('a full run directory on the newer paths', () => {
  // The run directory on a tmpfs of its own, filled so that 0, 8, 16, … KiB are left: every write
  // of the setup fails in turn (the claim, the spec, the pin, runc's state, conmon's files).
  for (const [what, detached] of [['run -p (the gate)', false], ['run -d -p (conmon)', true]] as const) {
    it(`${what}: one line, non-zero, nothing left at every fill; it runs once there is room`, async () => {
      await host.withRunTmpfs('size=384k', async (run, leaveFree) => {
        const ran: number[] = [];
        for (let freeKiB = 0; freeKiB <= 128; freeKiB += 8) {
          const unfill = leaveFree(freeKiB);
          const id = `hc8-full-${detached ? 'd' : 'f'}-${freeKiB}`;
          const r = host.tsrun(detached ? ['run', '-d', '--name', id, '--net', 'hc8nodns', '-p', '8936:80', bundle, '--', 'sleep', '1000'] : RUN(id, 8936, 'hc8nodns'));
          unfill();
          if (r.status === 0) {
            ran.push(freeKiB);
            if (detached) ok(['rm', '-f', id]);
            else expect(r.stdout).toBe('the-container-ran\n');
          } else {
            // tsrun's own line says what it could not write; runc's own two lines when its log
            // cannot be written either (status 1: docs/resilience.md, a full run directory).
            const runcOwn = r.status === 1 && /^Failed to write to log/.test(r.stderr);
            expect({ freeKiB, stderr: r.stderr, internal: /internal error/.test(r.stderr), lines: runcOwn ? 1 : r.stderr.trim().split('\n').length }).toEqual({ freeKiB, stderr: r.stderr, internal: false, lines: 1 });
          }
          await waitFor('conmon gone', () => processes('conmon', id).length === 0).catch(() => undefined);
          expect({ freeKiB, stderr: r.stderr, left: [...host.leaks([id]).filter((l) => l !== `mount ${run}`), ...host.netnsUsersLeft()], monitors: host.monitors() }).toEqual({ freeKiB, stderr: r.stderr, left: [], monitors: [] });
        }
        expect(ran.length).toBeGreaterThan(0);
        expect(ran[0]).toBeGreaterThan(0);
      });
    }, 120_000);
  }

  it('a read-only run directory: run -p and run -d -p fail in one line, nothing left', async () => {
    await host.withRunTmpfs('size=384k,ro', (run) => {
      for (const detached of [false, true]) {
        const id = `hc8-ro-${detached ? 'd' : 'f'}`;
        const r = host.tsrun(detached ? ['run', '-d', '--name', id, '--net', 'hc8nodns', '-p', '8937:80', bundle, '--', 'sleep', '1000'] : RUN(id, 8937, 'hc8nodns'));
        expect({ detached, status: r.status === 0 ? 0 : 'failed', internal: /internal error/.test(r.stderr), lines: r.stderr.trim().split('\n').length, stderr: r.stderr }).toEqual({ detached, status: 'failed', internal: false, lines: 1, stderr: r.stderr });
        expect({ detached, left: host.leaks([id]).filter((l) => l !== `mount ${run}`), monitors: host.monitors() }).toEqual({ detached, left: [], monitors: [] });
      }
    });
  }, 60_000);

  it('the DNS resolver on a full run directory: fails at once, says why in one line, leaves no temporary pidfile or socket', async () => {
    try {
      await host.withRunTmpfs('size=384k', (run, leaveFree) => {
        // Room for the setup up to the attach, none for the resolver's pidfile. Before, the attach
        // waited 15 s for a resolver that could not start (a start tried every 3 s) and said nothing;
        // now the first start's failure comes back at once, in one line on stderr.
        const unfill = leaveFree(8);
        const r = host.tsrun(['run', '-d', '--name', 'hc8-full-dns', '--net', 'hc8net', bundle, '--', 'sleep', '1000']);
        unfill();
        if (r.status === 0) ok(['rm', '-f', 'hc8-full-dns']);
        expect(r.stderr).toMatch(/^tsrun: warning: the DNS resolver could not start: write its pidfile \S+\/dns\/resolver\.pid: ENOSPC/m);
        const dns = path.join(run, 'dns');
        // Before: one resolver.pid.<pid>.tmp per failed start, never removed (5 in this one run);
        // and the failed resolver's control socket.
        expect((existsSync(dns) ? readdirSync(dns) : []).filter((f) => f.endsWith('.tmp') || f.endsWith('.sock'))).toEqual([]);
        expect(host.leaks(['hc8-full-dns']).filter((l) => l !== `mount ${run}`)).toEqual([]);
      });
    } finally {
      // A resolver the attach spawned last may start only now (no pidfile yet for the harness to
      // find): once started it exits (no endpoint uses it); waited for, so that it cannot make the
      // sandbox's directories again after destroy().
      await waitFor('the resolvers of this root gone', () => processesOfRoot(host.root).length === 0, 20_000).catch(() => undefined);
    }
  }, 60_000);
});
