// Detached containers end to end: `tsrun run -d` under real conmon and runc in a sandbox host,
// then ps, logs, exec, stop, kill, wait, inspect, restart and rm, and the exit command cleaning up
// a container that ended on its own. The "outside" namespace reaches published ports.
import { expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withConmonWorld } from '../harness/conmon-world.js';
import { BridgeWorld, HOST_UPLINK_IP } from '../harness/bridge-world.js';
import { BUSYBOX_ROOTFS, hasTerminal, makeBundle, removeBundle, uniqueId, waitFor } from '../harness/sandbox.js';

let w: BridgeWorld;

const describeIf = withConmonWorld(
  'detached',
  () => BridgeWorld.create('detach'),
  (world) => (w = world),
);

function tsrun(args: string[]) {
  return w.host.tsrun(args);
}

function ok(args: string[]): string {
  const r = tsrun(args);
  if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} → ${r.status}: ${r.stderr.trim()}`);
  expect(r.stderr).toBe('');
  return r.stdout;
}

function runD(args: string[], cmd: string[]): string {
  const id = uniqueId('d');
  w.ids.push(id);
  expect(ok(['run', '-d', '--name', id, ...args, w.bundle, '--', ...cmd]).trim()).toBe(id);
  return id;
}

interface PsEntry {
  id: string;
  status: string;
  exitCode?: number;
  pid?: number;
  detached: boolean;
  networks: { network: string; ipv4?: string }[];
  ports: string[];
}

function psJson(all = true): PsEntry[] {
  return JSON.parse(ok(['ps', ...(all ? ['-a'] : []), '--format', 'json'])) as PsEntry[];
}

function inspect(id: string): Record<string, any> {
  return (JSON.parse(ok(['inspect', id])) as Record<string, any>[])[0]!;
}

/** The leftovers of one container that has ended but is kept: everything but its state directory. */
function leaksBesides(id: string): string[] {
  return w.leaks().filter((l) => l !== `tsrun state ${id}`);
}

describeIf('tsrun run -d: a web server in the background', () => {
  it('runs, is listed, serves, logs, execs, stops with SIGKILL after the timeout, and is removed', async () => {
    const id = runD(['-p', '8080:80'], ['httpd', '-f', '-v', '-p', '80', '-h', '/var/www']);
    const entry = psJson(false).find((e) => e.id === id)!;
    expect(entry.status).toBe('running');
    expect(entry.detached).toBe(true);
    expect(entry.pid).toBeGreaterThan(1);
    const ip = w.ip(id);
    expect(entry.networks).toEqual([expect.objectContaining({ network: 'tsrun', ipv4: ip })]);
    expect(entry.ports).toEqual(['0.0.0.0:8080->80/tcp']);
    const table = ok(['ps']);
    expect(table).toMatch(new RegExp(`^${id}\\s+running\\s+\\d+\\s+tsrun:${ip.replace(/\./g, '\\.')}\\s+0\\.0\\.0\\.0:8080->80/tcp`, 'm'));

    // From outside, through the published port.
    await waitFor('httpd to answer', () => w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/`, 1000) !== undefined, 15_000);
    // httpd -v logs each request on stderr: logs shows it, on stderr.
    await waitFor('the request in the log', () => tsrun(['logs', id]).stderr.includes('response:200'));
    const logs = tsrun(['logs', '--timestamps', id]);
    expect(logs.status).toBe(0);
    expect(logs.stderr).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d \S+ response:200$/m);

    // logs -f prints what is there, follows new lines while it runs, and ends when the container does.
    const follow = w.host.spawnTsrun(['logs', '-f', id]);
    let followed = '';
    follow.stderr!.on('data', (d: Buffer) => (followed += d.toString()));
    const followEnd = new Promise<number | null>((r) => follow.once('exit', (c) => r(c)));
    const responses = () => followed.match(/response:\d+/g)?.length ?? 0;
    await waitFor('logs -f to print the log so far', () => responses() >= 1);
    const seen = responses();
    expect(w.outside.httpGet(`http://${HOST_UPLINK_IP}:8080/again`)).toBeDefined();
    await waitFor('logs -f to show the new request', () => responses() > seen);
    // --tail: only the last lines
    expect(tsrun(['logs', '--tail', '1', id]).stderr.match(/response:/g)?.length).toBe(1);

    // exec: inside the container's namespace, with its status passed through.
    const addr = tsrun(['exec', id, 'ip', '-o', 'addr', 'show', 'eth0']);
    expect(addr.status).toBe(0);
    expect(addr.stdout).toContain(`inet ${ip}/`);
    const st = tsrun(['exec', '-e', 'A=b', '-w', '/tmp', id, 'sh', '-c', 'echo "$A $(pwd)"; exit 7']);
    expect(st.stdout).toBe('b /tmp\n');
    expect(st.status).toBe(7);

    // httpd is PID 1 and has no SIGTERM handler, so SIGTERM does nothing: SIGKILL after 1 s.
    expect(ok(['stop', '-t', '1', id])).toBe(`${id}\n`);
    expect(await followEnd).toBe(0);
    expect(ok(['wait', id])).toBe('137\n');
    const ins = inspect(id);
    expect(ins.state).toEqual(expect.objectContaining({ status: 'exited', running: false, exitCode: 137, cleanedUp: true }));
    expect(ins.state.finishedAt).toEqual(expect.any(String));
    // stopped and cleaned up: only its state directory is left (ps -a, logs, inspect read it)
    expect(leaksBesides(id)).toEqual([]);
    expect(psJson(false).some((e) => e.id === id)).toBe(false);
    expect(psJson().find((e) => e.id === id)).toEqual(expect.objectContaining({ status: 'exited', exitCode: 137 }));
    expect(tsrun(['logs', id]).stderr.match(/response:/g)?.length).toBeGreaterThanOrEqual(2);

    expect(ok(['rm', id])).toBe(`${id}\n`);
    expect(w.host.containerIds()).not.toContain(id);
  });

  it('a container that exits on its own is cleaned up by conmon\'s exit command, and ps -a keeps its code', async () => {
    const id = runD(['-p', '8081:80'], ['sh', '-c', 'echo bye; printf "no newline"; exit 3']);
    expect(ok(['wait', id])).toBe('3\n');
    // The exit command (tsrun cleanup) runs after conmon has written the exit file.
    await waitFor('the exit command to clean up', () => leaksBesides(id).length === 0 && inspect(id).state.cleanedUp === true, 15_000);
    expect(psJson().find((e) => e.id === id)).toEqual(expect.objectContaining({ status: 'exited', exitCode: 3, networks: [], ports: [] }));
    expect(tsrun(['logs', id]).stdout).toBe('bye\nno newline');
    expect(w.host.monitors()).toEqual([]);
    ok(['rm', id]);
  });

  it('stop -t lets a container that handles SIGTERM exit by itself', () => {
    const id = runD(['--net', 'none'], ['sh', '-c', 'trap "echo term; exit 42" TERM; while true; do sleep 0.1; done']);
    ok(['stop', '-t', '20', id]);
    expect(ok(['wait', id])).toBe('42\n');
    expect(ok(['logs', id])).toBe('term\n');
    ok(['rm', id]);
  });

  it('kill -s sends the signal; rm refuses a running container and rm -f removes it', () => {
    const id = runD([], ['sh', '-c', 'trap "echo usr1" USR1; while true; do sleep 0.1; done']);
    ok(['kill', '-s', 'USR1', id]);
    return waitFor('the trap to run', () => tsrun(['logs', id]).stdout.includes('usr1')).then(() => {
      const refused = tsrun(['rm', id]);
      expect(refused.status).toBe(125);
      expect(refused.stderr).toBe(`tsrun: container ${id} is running: stop it first, or use tsrun rm -f\n`);
      expect(psJson(false).find((e) => e.id === id)?.status).toBe('running');
      expect(ok(['rm', '-f', id])).toBe(`${id}\n`);
      expect(w.host.containerIds()).not.toContain(id);
    });
  });

  it("rm -f removes --net none containers through rm's own door, and hands a bridge one in the same command to its wired door; an exited one too", async () => {
    const running = runD(['--net', 'none'], ['sleep', '1000']);
    const exited = runD(['--net', 'none'], ['true']);
    const bridged = runD([], ['sleep', '1000']);
    await waitFor('the short one to end', () => psJson().find((e) => e.id === exited)?.status === 'exited');
    expect(ok(['rm', '-f', running])).toBe(`${running}\n`);
    expect(ok(['rm', '-f', exited, bridged])).toBe(`${exited}\n${bridged}\n`);
    expect(w.host.containerIds()).toEqual([]);
    // the afterEach: no conmon, runc state, cgroup, veth, lease or firewall element left
  });

  it('pause freezes every process and unpause thaws them; stop, kill and rm -f work on a paused container', async () => {
    const ticks = (id: string) => tsrun(['logs', id]).stdout.split('\n').filter((l) => l === 'tick').length;
    const loop = 'trap "echo term; exit 42" TERM; while true; do echo tick; sleep 0.05; done';
    const id = runD(['--net', 'none'], ['sh', '-c', loop]);
    await waitFor('the first ticks', () => ticks(id) > 0);
    expect(ok(['pause', id])).toBe(`${id}\n`);
    expect(psJson(false).find((e) => e.id === id)?.status).toBe('paused');
    expect(inspect(id).state).toEqual(expect.objectContaining({ status: 'paused', paused: true, running: false }));
    // Frozen: the loop prints nothing more while paused.
    const frozenAt = ticks(id);
    await new Promise((r) => setTimeout(r, 300));
    expect(ticks(id)).toBe(frozenAt);
    const refused = (args: string[]) => {
      const r = tsrun(args);
      return [r.status, r.stderr];
    };
    expect(refused(['pause', id])).toEqual([125, `tsrun: container ${id} is already paused\n`]);
    expect(refused(['exec', id, 'true'])).toEqual([125, `tsrun: container ${id} is not running (paused)\n`]);
    expect(ok(['unpause', id])).toBe(`${id}\n`);
    await waitFor('ticks again after unpause', () => ticks(id) > frozenAt);
    expect(refused(['unpause', id])).toEqual([125, `tsrun: container ${id} cannot be unpaused: it is not paused (running)\n`]);
    // stop on a paused container: SIGTERM, then thawed so that the trap runs (docker's order).
    ok(['pause', id]);
    expect(ok(['stop', '-t', '20', id])).toBe(`${id}\n`);
    expect(ok(['wait', id])).toBe('42\n');
    expect(tsrun(['logs', id]).stdout).toMatch(/term\n$/);
    expect(refused(['pause', id])).toEqual([125, `tsrun: container ${id} cannot be paused: it is not running (exited with 42)\n`]);
    expect(refused(['unpause', id])).toEqual([125, `tsrun: container ${id} cannot be unpaused: it is not paused (exited with 42)\n`]);
    ok(['rm', id]);

    // kill -s KILL and rm -f end a paused container at once.
    const a = runD(['--net', 'none'], ['sleep', '1000']);
    const b = runD([], ['sleep', '1000']);
    ok(['pause', a, b]);
    expect(psJson(false).filter((e) => e.id === a || e.id === b).map((e) => e.status)).toEqual(['paused', 'paused']);
    ok(['kill', a]);
    expect(ok(['wait', a])).toBe('137\n');
    expect(ok(['rm', '-f', a, b])).toBe(`${a}\n${b}\n`);
    expect(w.host.containerIds()).toEqual([]);
  });

  it('--log-max-size has conmon start the log afresh; logs and logs -f read what is there', async () => {
    // 300 numbered lines of ~60 bytes (~100 with the k8s-file prefix) into a 4 KiB log.
    const script = 'go=; trap "go=1" USR1; until [ -n "$go" ]; do sleep 0.05; done; i=0; while [ $i -lt 300 ]; do echo "line $i ................................................"; i=$((i+1)); done; echo done; sleep 1000';
    const id = runD(['--net', 'none', '--log-max-size', '4k'], ['sh', '-c', script]);
    const mine = w.host.monitors().filter((m) => m.includes(`-c ${id} `));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toContain('--log-size-max 4096');
    expect(inspect(id).config.logMaxBytes).toBe(4096);
    const follow = w.host.spawnTsrun(['logs', '-f', id]);
    let followed = '';
    follow.stdout!.on('data', (d: Buffer) => (followed += d.toString()));
    const followEnd = new Promise<number | null>((r) => follow.once('exit', (c) => r(c)));
    await waitFor('logs -f to run', () => follow.pid !== undefined);
    ok(['kill', '-s', 'USR1', id]);
    await waitFor('the last line in the log', () => tsrun(['logs', id]).stdout.endsWith('done\n'));
    const logFile = inspect(id).logPath as string;
    expect(readFileSync(logFile).length).toBeLessThanOrEqual(4096);
    // What is there: the newest lines, in order, without the oldest ones.
    const numbers = (text: string) => [...text.matchAll(/^line (\d+) /gm)].map((m) => Number(m[1]));
    const kept = numbers(tsrun(['logs', id]).stdout);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept[0]).toBeGreaterThan(0);
    expect(kept).toEqual(kept.map((_, i) => kept[0]! + i));
    expect(kept[kept.length - 1]).toBe(299);
    // logs -f goes on across the new files: it reaches the end, in order, no line twice.
    await waitFor('logs -f to reach the end', () => followed.endsWith('done\n'));
    const seen = numbers(followed);
    expect(seen.slice(-kept.length)).toEqual(kept);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
    ok(['rm', '-f', id]);
    await followEnd;

    // The default (10m) is given to conmon; -1 means no limit.
    const dflt = runD(['--net', 'none'], ['sleep', '1000']);
    const unlimited = runD(['--net', 'none', '--log-max-size', '-1'], ['sleep', '1000']);
    expect(w.host.monitors().find((m) => m.includes(`-c ${dflt} `))).toContain(`--log-size-max ${10 * 1024 * 1024}`);
    expect(w.host.monitors().find((m) => m.includes(`-c ${unlimited} `))).not.toContain('--log-size-max');
    expect(inspect(unlimited).config.logMaxBytes).toBe(-1);
    ok(['rm', '-f', dflt, unlimited]);
  });

  it('--stop-signal and --stop-timeout are kept in the record: stop sends that signal, and waits that long by default', async () => {
    const usr1 = runD(['--net', 'none', '--stop-signal', 'USR1', '--stop-timeout', '30'], ['sh', '-c', 'trap "" TERM; trap "echo usr1; exit 5" USR1; while true; do sleep 0.1; done']);
    expect(inspect(usr1).config).toEqual(expect.objectContaining({ stopSignal: 'SIGUSR1', stopTimeoutS: 30 }));
    ok(['stop', usr1]);
    expect(ok(['wait', usr1])).toBe('5\n');
    expect(ok(['logs', usr1])).toBe('usr1\n');
    // restart keeps them
    ok(['restart', usr1]);
    expect(inspect(usr1).config).toEqual(expect.objectContaining({ stopSignal: 'SIGUSR1', stopTimeoutS: 30 }));
    ok(['rm', '-f', usr1]);

    // SIGTERM ignored: SIGKILL after the record's 1 s (stop has no -t), as tsrun's log says.
    const deaf = runD(['--net', 'none', '--stop-timeout', '1'], ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
    expect(inspect(deaf).config.stopSignal).toBe('SIGTERM');
    ok(['stop', deaf]);
    expect(ok(['wait', deaf])).toBe('137\n');
    const killed = readFileSync(w.host.logFile, 'utf8').split('\n').filter((l) => l.includes(deaf) && l.includes('did not stop within the timeout'));
    expect(killed).toHaveLength(1);
    expect(JSON.parse(killed[0]!)).toEqual(expect.objectContaining({ timeoutS: 1, signal: 'SIGTERM' }));
    ok(['rm', deaf]);
  });

  it('-i only keeps stdin open (there is no attach to feed it): a reader waits instead of reading its end', () => {
    const closed = runD(['--net', 'none'], ['sh', '-c', 'read line; echo "read $?"']);
    expect(ok(['wait', closed])).toBe('0\n');
    expect(ok(['logs', closed])).toBe('read 1\n');
    const open = runD(['--net', 'none', '-i'], ['sh', '-c', 'read line; echo "read $?"']);
    expect(inspect(open).state.status).toBe('running');
    // sh is PID 1 without a TERM handler: SIGKILL after 1 s; read never returned.
    ok(['stop', '-t', '1', open]);
    expect(ok(['wait', open])).toBe('137\n');
    expect(ok(['logs', open])).toBe('');
    ok(['rm', closed, open]);
  });

  it('create + start split the two steps; restart runs it again with the same options', async () => {
    const id = uniqueId('cs');
    w.ids.push(id);
    expect(ok(['create', '--name', id, '-e', 'WHO=created', w.bundle, '--', 'sh', '-c', 'echo "hello $WHO"; sleep 100']).trim()).toBe(id);
    expect(psJson().find((e) => e.id === id)?.status).toBe('created');
    expect(psJson(false).some((e) => e.id === id)).toBe(false);
    expect(ok(['start', id])).toBe(`${id}\n`);
    await waitFor('the output', () => tsrun(['logs', id]).stdout === 'hello created\n');
    const pid1 = psJson().find((e) => e.id === id)!.pid;
    ok(['restart', '-t', '0', id]);
    const after = psJson().find((e) => e.id === id)!;
    expect(after.status).toBe('running');
    expect(after.pid).not.toBe(pid1);
    expect(inspect(id).state.restartCount).toBe(1);
    await waitFor('the second output', () => tsrun(['logs', id]).stdout === 'hello created\nhello created\n');
    ok(['rm', '-f', id]);
  });

  it('run -d --rm: removed whole once it exits by itself, or once stop (or kill) ends it; create --rm too', async () => {
    // Nothing of it left: no state directory, monitor, runc state, cgroup, veth, lease, port or
    // firewall element (w.leaks() lists every kind).
    const gone = (id: string) => !w.host.containerIds().includes(id) && w.leaks().length === 0 && w.host.monitors().length === 0;

    // Ends by itself: conmon's exit command cleans up and removes it.
    const byItself = runD(['--rm', '-p', '8082:80'], ['sh', '-c', 'echo bye; exit 3']);
    await waitFor('the exit command to remove it', () => gone(byItself), 15_000);
    const logged = readFileSync(w.host.logFile, 'utf8').split('\n').filter((l) => l.includes(byItself) && l.includes('removed (--rm)'));
    expect(logged).toHaveLength(1);

    // stop: gone when stop returns (the output is still its id, as docker's).
    const stopped = runD(['--rm', '-p', '8083:80'], ['sleep', '1000']);
    expect(inspect(stopped).config.autoRemove).toBe(true);
    expect(ok(['stop', '-t', '0', stopped])).toBe(`${stopped}\n`);
    expect(gone(stopped)).toBe(true);
    expect(tsrun(['rm', stopped]).stderr).toBe(`tsrun: no such container: ${stopped}\n`);

    // kill: the exit command removes it; --net none goes through run -d's own door.
    const killed = runD(['--rm', '--net', 'none'], ['sleep', '1000']);
    ok(['kill', killed]);
    await waitFor('the exit command to remove the killed one', () => gone(killed), 15_000);

    // create --rm, then start: the same once it ends.
    const id = uniqueId('cr');
    w.ids.push(id);
    expect(ok(['create', '--rm', '--name', id, '--net', 'none', w.bundle, '--', 'sh', '-c', 'sleep 0.2']).trim()).toBe(id);
    expect(psJson().find((e) => e.id === id)?.status).toBe('created');
    ok(['start', id]);
    await waitFor('create --rm to be removed once it ended', () => gone(id), 15_000);
  });

  it('restart of a --rm container keeps it (as docker): the new one is --rm again; without --rm an ended one stays', async () => {
    const id = runD(['--rm', '--net', 'none'], ['sleep', '1000']);
    ok(['restart', '-t', '0', id]);
    expect(psJson().find((e) => e.id === id)?.status).toBe('running');
    expect(inspect(id).config.autoRemove).toBe(true);
    expect(inspect(id).state.restartCount).toBe(1);
    ok(['stop', '-t', '0', id]);
    expect(w.host.containerIds()).not.toContain(id);
    const kept = runD(['--net', 'none'], ['true']);
    expect(ok(['wait', kept])).toBe('0\n');
    await waitFor('the exit command', () => inspect(kept).state.cleanedUp === true, 15_000);
    expect(inspect(kept).config.autoRemove).toBe(false);
    expect(w.host.containerIds()).toContain(kept);
    ok(['rm', kept]);
  });

  it("-u: run -d as a user of the rootfs; exec runs as the container's user, or as exec -u's", () => {
    const id = runD(['--net', 'none', '-u', 'nobody'], ['sleep', '100']);
    const nobody = 'uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n';
    expect(ok(['exec', id, 'id'])).toBe(nobody);
    expect(ok(['exec', '-u', '0', id, 'id'])).toBe('uid=0(root) gid=0(root) groups=0(root)\n');
    expect(ok(['exec', '--user', '1234:nogroup', id, 'id'])).toBe('uid=1234 gid=65534(nogroup) groups=65534(nogroup)\n');
    // the container's environment with -e over it, -w, and the status passed through, as without -u
    const st = tsrun(['exec', '-u', '0', '-e', 'A=b', '-w', '/tmp', id, 'sh', '-c', 'echo "$A $(pwd) $PATH"; exit 7']);
    expect({ status: st.status, stdout: st.stdout }).toEqual({ status: 7, stdout: `b /tmp ${JSON.parse(readFileSync(path.join(w.bundle, 'config.json'), 'utf8')).process.env.find((e: string) => e.startsWith('PATH=')).slice(5)}\n` });
    expect(readdirSync(path.join(w.host.root, 'run', 'containers', id)).filter((f) => f.startsWith('exec-'))).toEqual([]);
    // exec --env-file, as run's: the file, then -e over it
    const envFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'tsrun-execenv-')), 'e.env');
    writeFileSync(envFile, '# x\nA=from-file\nB="q"\n');
    expect(ok(['exec', '--env-file', envFile, '-e', 'A=from-e', id, 'sh', '-c', 'echo "$A $B"'])).toBe('from-e "q"\n');
    rmSync(path.dirname(envFile), { recursive: true, force: true });
    const bad = tsrun(['exec', '-u', 'mallory', id, 'id']);
    expect({ status: bad.status, stdout: bad.stdout, stderr: bad.stderr }).toEqual({ status: 125, stdout: '', stderr: "tsrun: unable to find user mallory: no matching entries in the root filesystem's /etc/passwd\n" });
    // the record keeps -u as given: restart looks it up again
    expect(inspect(id).config.user).toBe('nobody');
    ok(['restart', '-t', '0', id]);
    expect(ok(['exec', id, 'id'])).toBe(nobody);
    ok(['rm', '-f', id]);
  });

  it('--net container: joins a detached container; its endpoint stays until the last user is removed', () => {
    const owner = runD([], ['sleep', '1000']);
    const joiner = runD(['--net', `container:${owner}`], ['sleep', '1000']);
    const ip = w.ip(owner);
    expect(ok(['exec', joiner, 'ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${ip}/`);
    ok(['rm', '-f', owner]);
    expect(ok(['exec', joiner, 'ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`inet ${ip}/`);
    expect(w.endpoint(owner).ipv4?.address).toBe(ip);
    ok(['rm', '-f', joiner]);
    // afterEach: no endpoint, lease, veth or pin left
  });

  it('a foreground tsrun run is listed by ps while it runs', async () => {
    const c = await w.start([], 'sleep 100');
    try {
      const e = psJson(false).find((x) => x.id === c.id);
      expect(e).toEqual(expect.objectContaining({ status: 'running', detached: false }));
      expect(e!.networks[0]!.ipv4).toBe(w.ip(c.id));
      // lifecycle verbs that need a monitor say so in one line
      const r = tsrun(['logs', c.id]);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/^tsrun: container \S+ runs in the foreground \(tsrun process \d+\): its output goes to that process's stdout and stderr, and no log is kept \(tsrun logs reads those of run -d and create\)\n$/);
      expect(tsrun(['rm', c.id]).stderr).toMatch(/^tsrun: container \S+ runs in the foreground \(tsrun process \d+\): stop it, or end that process\n$/);
      expect(tsrun(['wait', c.id]).stderr).toMatch(/^tsrun: container \S+ runs in the foreground \(tsrun process \d+\): tsrun wait works on detached containers \(run -d, create\)\n$/);
      expect(tsrun(['exec', c.id, 'true']).status).toBe(0);
    } finally {
      await c.stop();
    }
    expect(psJson().some((e) => e.id === c.id)).toBe(false);
  });
});

describeIf('detached containers: bad input is one line, a non-zero exit, and changes nothing', () => {
  it('unknown ids, ambiguous prefixes, stopped containers, running ones', () => {
    const a = runD(['--net', 'none'], ['sleep', '100']);
    const b = runD(['--net', 'none'], ['sleep', '100']);
    const done = runD(['--net', 'none'], ['true']);
    expect(ok(['wait', done])).toBe('0\n');
    const prefix = a.slice(0, a.lastIndexOf('-'));
    expect(b.startsWith(prefix)).toBe(true);
    const snapshot = () => JSON.stringify(psJson().map((e) => [e.id, e.status, e.pid]));
    const before = snapshot();
    const cases: [string[], RegExp][] = [
      [['stop', prefix], new RegExp(`^tsrun: container id prefix ${prefix} matches \\d+ containers \\(.*\\): give more of the id\\n$`)],
      [['kill', done], new RegExp(`^tsrun: container ${done} cannot be killed: it is not running \\(exited with 0\\)\\n$`)],
      [['exec', done, 'true'], new RegExp(`^tsrun: container ${done} is not running \\(exited with 0\\)\\n$`)],
      [['rm', a], new RegExp(`^tsrun: container ${a} is running: stop it first, or use tsrun rm -f\\n$`)],
      [['start', a], new RegExp(`^tsrun: container ${a} cannot be started: it is running\\n$`)],
      [['kill', '-s', 'NOPE', a], /^tsrun: invalid signal "NOPE": use a name \(TERM, SIGKILL\) or a number\n$/],
      [['stop', '-t', 'soon', a], /^tsrun: invalid --time "soon": use a whole number of seconds\n$/],
      [['logs', '--tail', 'x', a], /^tsrun: invalid --tail "x": use a number of lines\n$/],
      [['run', '-d', '--net', 'none', '--log-max-size', '10x', w.bundle], /^tsrun: invalid --log-max-size "10x": expected a size such as 512m, 1g or 1048576\n$/],
      [['create', '--net', 'none', '--stop-signal', 'NOPE', w.bundle], /^tsrun: invalid signal "NOPE": use a name \(TERM, SIGKILL\) or a number\n$/],
      [['run', '-d', '--net', 'none', '-u', 'mallory', w.bundle], /^tsrun: unable to find user mallory: no matching entries in the root filesystem's \/etc\/passwd\n$/],
      [['run', '-d', '-u', 'nobody:staff', w.bundle], /^tsrun: unable to find group staff: no matching entries in the root filesystem's \/etc\/group\n$/],
      [['create', '--env-file', '/nonexistent/x.env', w.bundle], /^tsrun: invalid --env-file "\/nonexistent\/x\.env": no such file\n$/],
      [['run', '-d', '--rm', '--net', 'none', '--user', '1:2:3', w.bundle], /^tsrun: invalid --user "1:2:3": expected USER or USER:GROUP, each a number or a name\n$/],
      [['run', '--net', 'none', '--log-max-size', '1m', '--stop-signal', 'INT', w.bundle], /^tsrun: --log-max-size and --stop-signal apply to detached containers only: add -d, or use tsrun create\n$/],
      [['pause', done], new RegExp(`^tsrun: container ${done} cannot be paused: it is not running \\(exited with 0\\)\\n$`)],
      [['unpause', a], new RegExp(`^tsrun: container ${a} cannot be unpaused: it is not paused \\(running\\)\\n$`)],
      [['run', '-d', '--name', a, '--net', 'none', w.bundle], new RegExp(`^tsrun: container id ${a} is already in use\\n$`)],
      [['run', '-d', '--name', done, '--net', 'none', w.bundle], new RegExp(`^tsrun: container id ${done} is already in use \\(remove it first: tsrun rm ${done}\\)\\n$`)],
    ];
    for (const [args, message] of cases) {
      const r = tsrun(args);
      expect({ args, status: r.status, stderr: r.stderr }).toEqual({ args, status: 125, stderr: expect.stringMatching(message) });
      expect(snapshot()).toBe(before);
    }
    // An ended container is already stopped: its id and 0, as docker and podman answer.
    expect(ok(['stop', done])).toBe(`${done}\n`);
    expect(snapshot()).toBe(before);
    ok(['rm', '-f', a, b, done]);
  });
});

describeIf("a name that matches no container: docker's exit 1, and the others are still done", () => {
  it('rm, stop and kill of found and missing names: the found ones done and printed, the missing named in one line, exit 1', async () => {
    const a = runD(['--net', 'none'], ['sleep', '100']);
    const b = runD(['--net', 'none'], ['sh', '-c', 'trap "exit 0" USR1; while true; do sleep 0.1; done']);
    const done = runD(['--net', 'none'], ['true']);
    expect(ok(['wait', done])).toBe('0\n');
    const status = (id: string) => psJson().find((e) => e.id === id)?.status;

    const kill = tsrun(['kill', '-s', 'USR1', 'nosuch', b]);
    expect({ status: kill.status, stdout: kill.stdout, stderr: kill.stderr }).toEqual({ status: 1, stdout: `${b}\n`, stderr: 'tsrun: no such container: nosuch\n' });
    await waitFor('the trap to end b', () => status(b) === 'exited');

    const stop = tsrun(['stop', '-t', '0', a, 'nosuch', 'gone-too']);
    expect({ status: stop.status, stdout: stop.stdout, stderr: stop.stderr }).toEqual({ status: 1, stdout: `${a}\n`, stderr: 'tsrun: no such container: nosuch; no such container: gone-too\n' });
    expect(status(a)).toBe('exited');

    // rm without -f too (it was all or nothing): the ended ones removed, the missing one named.
    const rm = tsrun(['rm', a, 'nosuch', b, done]);
    expect({ status: rm.status, stdout: rm.stdout, stderr: rm.stderr }).toEqual({ status: 1, stdout: `${a}\n${b}\n${done}\n`, stderr: 'tsrun: no such container: nosuch\n' });
    expect(w.host.containerIds()).toEqual([]);

    // A single missing name: exit 1 for every verb that names containers; 125 stays tsrun's own failure.
    for (const args of [['rm', 'nosuch'], ['stop', 'nosuch'], ['kill', 'nosuch'], ['logs', 'nosuch'], ['start', 'nosuch'], ['wait', 'nosuch'], ['inspect', 'nosuch'], ['exec', 'nosuch', 'true'], ['restart', 'nosuch'], ['pause', 'nosuch'], ['unpause', 'nosuch']]) {
      const r = tsrun(args);
      // inspect prints the (empty) list of what it found, as docker's
      expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status: 1, stdout: args[0] === 'inspect' ? '[]\n' : '', stderr: 'tsrun: no such container: nosuch\n' });
    }
    // Every verb of several names does the ones it finds (docker's): wait, inspect, start, pause.
    const w1 = runD(['--net', 'none'], ['sh', '-c', 'exit 5']);
    const waited = tsrun(['wait', 'nosuch', w1]);
    expect({ status: waited.status, stdout: waited.stdout, stderr: waited.stderr }).toEqual({ status: 1, stdout: '5\n', stderr: 'tsrun: no such container: nosuch\n' });
    const inspected = tsrun(['inspect', w1, 'nosuch']);
    expect({ status: inspected.status, ids: (JSON.parse(inspected.stdout) as { id: string }[]).map((e) => e.id), stderr: inspected.stderr }).toEqual({ status: 1, ids: [w1], stderr: 'tsrun: no such container: nosuch\n' });
    ok(['rm', w1]);
    // Any other refusal still changes nothing and is 125 (a running container without -f).
    const c = runD(['--net', 'none'], ['sleep', '100']);
    const refused = tsrun(['rm', c, 'nosuch']);
    expect({ status: refused.status, stdout: refused.stdout }).toEqual({ status: 125, stdout: '' });
    expect(status(c)).toBe('running');
    ok(['rm', '-f', c]);
  });
});

describeIf('a program that cannot run: docker\'s statuses, one line, nothing left', () => {
  it('run -d and create: 127 for a program not found, 126 for one that exists but cannot run', () => {
    const snapshot = () => JSON.stringify(psJson().map((e) => [e.id, e.status, e.pid]));
    const before = snapshot();
    const cases: [string[], number, RegExp][] = [
      [['run', '-d', '--net', 'none', w.bundle, '--', '/nonexistent'], 127, /^tsrun: runc: .*"\/nonexistent".*no such file or directory\n$/],
      [['run', '-d', w.bundle, '--', 'no-such-program'], 127, /^tsrun: runc: .*no-such-program.*not found.*\n$/],
      [['run', '-d', '--net', 'none', w.bundle, '--', '/etc/passwd'], 126, /^tsrun: runc: .*"\/etc\/passwd": permission denied\n$/],
      [['run', '-d', w.bundle, '--', '/etc'], 126, /^tsrun: runc: .*"\/etc": permission denied\n$/],
      [['create', '--net', 'none', w.bundle, '--', '/nonexistent'], 127, /^tsrun: runc: .*no such file or directory\n$/],
      [['create', w.bundle, '--', '/etc/passwd'], 126, /^tsrun: runc: .*permission denied\n$/],
    ];
    for (const [args, status, message] of cases) {
      const r = tsrun(args);
      expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status, stdout: '', stderr: expect.stringMatching(message) });
      expect(snapshot()).toBe(before);
      expect(w.leaks()).toEqual([]);
      expect(w.host.monitors()).toEqual([]);
    }
  });
});

describeIf('exec: a program that cannot run gets docker\'s 127/126, not runc\'s 255', () => {
  it('127 not found, 126 not executable, 255 when the program itself exits 255; -t without a terminal is one line and 125', () => {
    const id = runD(['--net', 'none'], ['sleep', '100']);
    const cases: [string[], number, RegExp][] = [
      [['exec', id, 'no-such-program'], 127, /"no-such-program": executable file not found/],
      [['exec', id, '/etc'], 126, /"\/etc": permission denied/],
      [['exec', id, 'sh', '-c', 'exit 255'], 255, /^$/],
    ];
    // Run from a terminal, tsrun inherits it and -t works; the CI runs without one.
    if (!hasTerminal()) cases.push([['exec', '-it', id, 'true'], 125, /^tsrun: the input device is not a TTY: drop -t \(and keep -i to pass stdin\), or run from a terminal\n$/]);
    for (const [args, status, message] of cases) {
      const r = tsrun(args);
      expect({ args, status: r.status, stderr: r.stderr }).toEqual({ args, status, stderr: expect.stringMatching(message) });
    }
    // runc's log of each exec goes with it.
    expect(readdirSync(path.join(w.host.root, 'run', 'containers', id)).filter((f) => f.startsWith('exec-'))).toEqual([]);
    ok(['rm', '-f', id]);
  });
});

describeIf('a bind-mount source that does not exist: 125, not 127 (docker: the container never started)', () => {
  it('run -d and create', () => {
    const b = makeBundle((spec) => {
      spec.mounts.push({ destination: '/data', type: 'bind', source: '/tmp/tsrun-no-such-mount-source', options: ['rbind'] });
    });
    try {
      for (const args of [['run', '-d', '--net', 'none', b, '--', 'true'], ['create', b, '--', 'true']]) {
        const r = tsrun(args);
        expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status: 125, stdout: '', stderr: expect.stringMatching(/^tsrun: runc: .*"\/tmp\/tsrun-no-such-mount-source".*no such file or directory\n$/) });
        expect(w.leaks()).toEqual([]);
        expect(w.host.monitors()).toEqual([]);
      }
    } finally {
      removeBundle(b);
    }
  });
});

describeIf('a restart that fails keeps the container, as docker does', () => {
  /** The state directories tsrun keeps, dot names (a restart's old one, set aside) included. */
  const stateDirs = () => readdirSync(path.join(w.host.root, 'run', 'containers'));

  it('a published port taken meanwhile: exited, listed, its log kept; restart works once the port is free; nothing leaks', async () => {
    const a = runD(['-p', '8095:80'], ['sh', '-c', 'echo one; sleep 100']);
    await waitFor('the output', () => tsrun(['logs', a]).stdout === 'one\n');
    ok(['stop', '-t', '0', a]);
    const b = runD(['-p', '8095:80'], ['sleep', '100']);
    const r = tsrun(['restart', a]);
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 125, stdout: '' });
    expect(r.stderr).toMatch(/^tsrun: [^\n]*8095[^\n]*\n$/);
    const entry = psJson().find((e) => e.id === a);
    expect(entry).toEqual(expect.objectContaining({ status: 'exited', exitCode: 137 }));
    expect(ok(['logs', a])).toBe('one\n');
    expect(inspect(a).state.restartCount ?? 0).toBe(0);
    expect(stateDirs().filter((n) => n.startsWith('.'))).toEqual([]);
    ok(['rm', '-f', b]);
    expect(leaksBesides(a)).toEqual([]); // the failed attempt left no conmon, runc state, cgroup, address, port
    expect(w.host.monitors()).toEqual([]);
    w.ids.push(a);
    // Nothing of the failed attempt is in the way of the next one.
    ok(['restart', a]);
    expect(psJson().find((e) => e.id === a)?.status).toBe('running');
    await waitFor('the second output', () => tsrun(['logs', a]).stdout === 'one\none\n');
    expect(inspect(a).state.restartCount).toBe(1);
    ok(['rm', '-f', a]);
  });

  it('its bundle removed: exited, listed, its log kept, rm removes it and nothing is left', async () => {
    const bundle = makeBundle();
    const id = uniqueId('rb');
    w.ids.push(id);
    try {
      expect(ok(['run', '-d', '--name', id, bundle, '--', 'sh', '-c', 'echo kept; exit 3']).trim()).toBe(id);
      expect(ok(['wait', id])).toBe('3\n');
      removeBundle(bundle);
      const r = tsrun(['restart', id]);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 125, stdout: '', stderr: `tsrun: bundle ${bundle}: no such directory\n` });
      expect(psJson().find((e) => e.id === id)).toEqual(expect.objectContaining({ status: 'exited', exitCode: 3 }));
      expect(ok(['logs', id])).toBe('kept\n');
      expect(stateDirs().filter((n) => n.startsWith('.'))).toEqual([]);
      expect(leaksBesides(id)).toEqual([]);
      ok(['rm', id]);
      expect(stateDirs()).not.toContain(id);
    } finally {
      removeBundle(bundle);
    }
  });
});

describeIf('a restart that fails records the attempt\'s status, as docker does', () => {
  it('0 then a failure to set up: 128; the program gone: 127; not executable: 126; nothing leaks', async () => {
    // A rootfs of its own, so the program can be taken away between runs.
    const rootfs = mkdtempSync(path.join(os.tmpdir(), 'tsrun-fixer6-rootfs-'));
    execFileSync('cp', ['-a', `${BUSYBOX_ROOTFS}/.`, rootfs]);
    const bundle = makeBundle((spec) => {
      spec.root.path = rootfs;
    });
    const moved = `${bundle}.away`;
    const id = uniqueId('rs');
    w.ids.push(id);
    try {
      expect(ok(['run', '-d', '--net', 'none', '--name', id, bundle, '--', '/bin/sh', '-c', 'exit 0']).trim()).toBe(id);
      expect(ok(['wait', id])).toBe('0\n');
      const code = () => psJson().find((e) => e.id === id)?.exitCode;

      // Not the program's fault (docker: the code it had, 128 instead of 0).
      renameSync(bundle, moved);
      expect(tsrun(['restart', id]).status).toBe(125);
      renameSync(moved, bundle);
      expect(code()).toBe(128);

      rmSync(path.join(rootfs, 'bin', 'sh'));
      const notFound = tsrun(['restart', id]);
      expect({ status: notFound.status, stdout: notFound.stdout }).toEqual({ status: 127, stdout: '' });
      expect(code()).toBe(127);
      expect(ok(['wait', id])).toBe('127\n');

      writeFileSync(path.join(rootfs, 'bin', 'sh'), 'not a program\n', { mode: 0o644 });
      expect(tsrun(['restart', id]).status).toBe(126);
      expect(psJson().find((e) => e.id === id)).toEqual(expect.objectContaining({ status: 'exited', exitCode: 126 }));
      expect(readdirSync(path.join(w.host.root, 'run', 'containers')).filter((n) => n.startsWith('.'))).toEqual([]);
      expect(leaksBesides(id)).toEqual([]);
      expect(w.host.monitors()).toEqual([]);
      ok(['rm', id]);
    } finally {
      if (existsSync(moved)) renameSync(moved, bundle);
      removeBundle(bundle);
      rmSync(rootfs, { recursive: true, force: true });
    }
  });

  it('a restart killed half-way: gc leaves its set-aside directory while it runs, then puts the container back', async () => {
    const bundle = makeBundle();
    const id = uniqueId('rk');
    w.ids.push(id);
    try {
      expect(ok(['run', '-d', '--net', 'none', '--name', id, bundle, '--', 'sh', '-c', 'echo before; exit 3']).trim()).toBe(id);
      expect(ok(['wait', id])).toBe('3\n');
      // The next creation waits in a hook: the restart is then between its set-aside and its end.
      const spec = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as Record<string, any>;
      spec.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '3'] }] };
      writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      const containers = path.join(w.host.root, 'run', 'containers');
      const restart = w.host.spawnTsrun(['restart', id]);
      const gone = new Promise((r) => restart.once('exit', r));
      await waitFor('the restart to set the old directory aside', () => existsSync(path.join(containers, `.${id}.restart`)) && existsSync(path.join(containers, id)));
      // Its holder runs: gc leaves it alone.
      const during = JSON.parse(ok(['gc'])) as { restarts?: string[] };
      expect(during.restarts).toBeUndefined();
      expect(existsSync(path.join(containers, `.${id}.restart`))).toBe(true);

      process.kill(restart.pid!, 'SIGKILL');
      await gone;
      await new Promise((r) => setTimeout(r, 3500)); // the hook ends; runc create finishes
      const after = JSON.parse(ok(['gc'])) as { restarts?: string[]; containers: string[] };
      expect(after.restarts).toEqual([`restored ${id}`]);
      expect(readdirSync(containers).filter((n) => n.startsWith('.'))).toEqual([]);
      expect(psJson().find((e) => e.id === id)).toEqual(expect.objectContaining({ status: 'exited', exitCode: 3 }));
      expect(ok(['logs', id])).toBe('before\n');
      expect(leaksBesides(id)).toEqual([]);
      expect(w.host.monitors()).toEqual([]);
      ok(['rm', id]);
    } finally {
      removeBundle(bundle);
    }
  });
});

describeIf('gc and detached containers', () => {
  it('gc leaves a live detached container alone, and cleans one whose monitor died', () => {
    const id = runD(['-p', '8090:80'], ['sleep', '100']);
    const gc1 = JSON.parse(ok(['gc'])) as { containers: string[]; endpoints: string[] };
    expect(gc1.containers).toEqual([]);
    expect(gc1.endpoints).toEqual([]);
    expect(psJson(false).find((e) => e.id === id)?.status).toBe('running');
    expect(w.endpoint(id).ipv4).toBeDefined();

    // The monitor and the container die without the exit command: gc does its work.
    const rec = JSON.parse(readFileSync(path.join(w.host.root, 'run', 'containers', id, 'lifecycle.json'), 'utf8')) as { conmonPid: number; pid: number };
    process.kill(rec.conmonPid, 'SIGKILL');
    process.kill(rec.pid, 'SIGKILL');
    return waitFor('both to end', () => !existsSync(`/proc/${rec.pid}/stat`) || readFileSync(`/proc/${rec.pid}/stat`, 'utf8').includes(') Z')).then(() => {
      ok(['gc']);
      expect(leaksBesides(id)).toEqual([]);
      expect(psJson().find((e) => e.id === id)?.status).toBe('exited');
      ok(['rm', id]);
    });
  });

  it('gc removes a --rm container whose monitor died, as its exit command would have', async () => {
    const id = runD(['--rm', '-p', '8091:80'], ['sleep', '100']);
    const rec = JSON.parse(readFileSync(path.join(w.host.root, 'run', 'containers', id, 'lifecycle.json'), 'utf8')) as { conmonPid: number; pid: number };
    process.kill(rec.conmonPid, 'SIGKILL');
    process.kill(rec.pid, 'SIGKILL');
    await waitFor('both to end', () => !existsSync(`/proc/${rec.pid}/stat`) || readFileSync(`/proc/${rec.pid}/stat`, 'utf8').includes(') Z'));
    ok(['gc']);
    expect(w.host.containerIds()).not.toContain(id);
    expect(w.leaks()).toEqual([]);
  });
});
