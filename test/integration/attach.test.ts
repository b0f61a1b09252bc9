// `tsrun attach` end to end: detached containers under real conmon and runc in a sandbox host,
// joined through conmon's SOCK_SEQPACKET attach socket. Output on stdout and stderr, input to a
// container created with -i, docker's detach keys (the container runs on, its stdin still open
// for the next attach), --no-stdin, the container's exit code, SIGTERM passed to it, a terminal
// container through a pty (script(1)): raw mode, its size, ctrl-p ctrl-q; and the refusals.
import { expect, it } from '@jest/globals';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { withConmonWorld } from '../harness/conmon-world.js';
import { BridgeWorld } from '../harness/bridge-world.js';
import { TSRUN_BIN, uniqueId, waitFor } from '../harness/sandbox.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

let w: BridgeWorld;

const describeIf = withConmonWorld(
  'attach',
  () => BridgeWorld.create('u9att', { outside: false }),
  (world) => (w = world),
);

function runD(flags: string[], script: string): string {
  const id = uniqueId('at');
  w.ids.push(id);
  const r = w.host.tsrun(['run', '-d', '--name', id, '--net', 'none', ...flags, w.bundle, '--', 'sh', '-c', script]);
  if (r.status !== 0) throw new Error(`run -d: ${r.stderr}`);
  return id;
}

interface Attached {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function attach(args: string[]): Attached {
  const child = w.host.spawnTsrun(['attach', ...args]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

const status = (id: string) => (JSON.parse(w.tsrunOk(['inspect', id])) as { state: { status: string } }[])[0]!.state.status;

describeIf('tsrun attach', () => {
  it('joins stdin, stdout and stderr; ctrl-p ctrl-q detaches, the container runs on with its stdin open; its end gives its code', async () => {
    const id = runD(['-i'], 'while read l; do [ "$l" = quit ] && exit 7; echo "out:$l"; echo "err:$l" >&2; done');
    const a = attach([id]);
    // Sent once connected: conmon forwards output only to clients connected when it is written.
    await waitFor('the attach to connect', () => w.host.ns.exec('ss', ['-x', '-p']).stdout.includes(`pid=${a.child.pid},`), 10_000).catch(() => undefined);
    a.child.stdin!.write('one\n');
    await waitFor('the echo of one', () => a.out().includes('out:one\n') && a.err().includes('err:one\n'));
    a.child.stdin!.write('two\n\x10\x11');
    expect(await a.exited).toBe(0);
    expect(a.out()).not.toContain('\x10');
    expect(status(id)).toBe('running');

    // Attached again: the container's stdin was left open; its end ends the attach with its code.
    const b = attach([id]);
    await waitFor('the second attach to connect', () => w.host.ns.exec('ss', ['-x', '-p']).stdout.includes(`pid=${b.child.pid},`), 10_000).catch(() => undefined);
    b.child.stdin!.write('three\n');
    await waitFor('the echo of three', () => b.out().includes('out:three\n'));
    b.child.stdin!.write('quit\n');
    expect(await b.exited).toBe(7);
    expect(b.err()).toBe('err:three\n');
    expect(w.host.tsrun(['logs', id]).stdout).toBe('out:one\nout:two\nout:three\n');
  });

  it('--no-stdin sends nothing; SIGTERM goes to the container (sig-proxy), whose code ends the attach', async () => {
    const id = runD(['-i'], 'trap "echo got-term; exit 9" TERM; echo ready; while true; do if read -t 1 l; then echo "read:$l"; fi; done');
    const a = attach(['--no-stdin', id]);
    await waitFor('the attach to connect', () => w.host.ns.exec('ss', ['-x', '-p']).stdout.includes(`pid=${a.child.pid},`), 10_000);
    a.child.stdin!.write('ignored\n');
    await new Promise((r) => setTimeout(r, 1500));
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(9);
    expect(a.out()).toContain('got-term\n');
    expect(a.out()).not.toContain('read:');
  });

  (hasScript ? it : it.skip)('a terminal container through a pty: raw input, its window size, ctrl-p ctrl-q', async () => {
    const id = runD(['-t', '-i'], 'exec sh');
    const cmd = `stty rows 33 cols 101; ${TSRUN_BIN} attach ${id}; echo attach-rc=$?`;
    const child = w.host.ns.spawn('script', ['-qec', cmd, '/dev/null'], { env: w.host.env });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor('the attach to connect', () => w.host.ns.exec('ss', ['-x', '-p']).stdout.includes('tsrun') || out.length > 0, 10_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 800));
    child.stdin!.write('echo x$((6*7)); stty size\r');
    await waitFor('the shell to answer', () => out.includes('x42') && out.includes('33 101'));
    child.stdin!.write('\x10\x11');
    await waitFor('the detach', () => out.includes('attach-rc=0'));
    child.stdin!.end();
    await exited;
    expect(status(id)).toBe('running');
  });

  it('refuses, with one line: a container that is not running, one in the foreground, a bad --detach-keys, no such container', async () => {
    const ended = runD([], 'exit 4');
    await waitFor('the container to end', () => status(ended) === 'exited');
    const r = w.host.tsrun(['attach', ended]);
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 125, stdout: '' });
    expect(r.stderr).toMatch(new RegExp(`^tsrun: container ${ended} is not running \\(exited 4\\): you cannot attach to it[^\\n]*\\n$`));
    const fg = await w.start(['--net', 'none'], 'sleep 1000', 'atf');
    const f = w.host.tsrun(['attach', fg.id]);
    expect(f.status).toBe(125);
    expect(f.stderr).toMatch(new RegExp(`^tsrun: container ${fg.id} runs in the foreground [^\\n]*nothing to attach to[^\\n]*\\n$`));
    await fg.stop();
    const running = runD([], 'sleep 1000');
    const k = w.host.tsrun(['attach', '--detach-keys', 'ctrl-1', running]);
    expect(k.status).toBe(125);
    expect(k.stderr).toMatch(/^tsrun: invalid --detach-keys "ctrl-1": [^\n]*\n$/);
    expect(w.host.tsrun(['attach', 'u9-nope'])).toMatchObject({ status: 1, stdout: '', stderr: 'tsrun: no such container: u9-nope\n' });
  });
});
