// Detached containers under stress and failure: 20 started and removed in parallel, tsrun killed
// in the middle of `run -d` (gc then removes everything), and -t through real pseudo-terminals
// (`script` from util-linux gives tsrun a terminal, as a user's shell would).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BridgeWorld } from '../harness/bridge-world.js';
import { TSRUN_BIN, uniqueId, waitFor } from '../harness/sandbox.js';

const hasConmon = spawnSync('conmon', ['--version']).status === 0;
const hasScript = spawnSync('script', ['--version']).status === 0;
const describeIf = hasConmon ? describe : describe.skip;
if (!hasConmon) console.warn('detached tests skipped: conmon is not installed (scripts/setup-host.sh installs it)');

let w: BridgeWorld;

beforeAll(async () => {
  if (hasConmon) w = await BridgeWorld.create('dscale');
});

afterAll(async () => {
  if (!hasConmon) return;
  w.host.removeAllContainers();
  await w.destroy();
});

afterEach(async () => {
  if (!hasConmon) return;
  w.host.removeAllContainers();
  // A monitor whose container was killed ends once its exit command has run.
  await waitFor('monitors to end', () => w.host.monitors().length === 0, 15_000).catch(() => undefined);
  expect(w.host.monitors()).toEqual([]);
  expect(w.leaks()).toEqual([]);
});

/** `tsrun ARGS` in the sandbox without blocking the test's event loop. */
function tsrunAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = w.host.spawnTsrun(args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describeIf('detached containers at scale and after failures', () => {
  it('20 containers started in parallel get 20 addresses, and 20 parallel rm -f leave nothing', async () => {
    const ids = Array.from({ length: 20 }, () => uniqueId('p'));
    w.ids.push(...ids);
    const started = await Promise.all(ids.map((id, i) => tsrunAsync(['run', '-d', '--name', id, '-p', `${9100 + i}:80`, w.bundle, '--', 'sleep', '1000'])));
    for (const [i, r] of started.entries()) expect({ id: ids[i], status: r.status, stderr: r.stderr }).toEqual({ id: ids[i], status: 0, stderr: '' });
    const ps = JSON.parse(w.host.tsrun(['ps', '--format', 'json']).stdout) as { id: string; status: string; networks: { ipv4?: string }[] }[];
    const mine = ps.filter((e) => ids.includes(e.id));
    expect(mine).toHaveLength(20);
    expect(mine.every((e) => e.status === 'running')).toBe(true);
    expect(new Set(mine.map((e) => e.networks[0]?.ipv4)).size).toBe(20);
    expect(w.host.monitors()).toHaveLength(20);

    const removed = await Promise.all(ids.map((id) => tsrunAsync(['rm', '-f', id])));
    for (const [i, r] of removed.entries()) expect({ id: ids[i], status: r.status, stderr: r.stderr }).toEqual({ id: ids[i], status: 0, stderr: '' });
    expect(w.host.containerIds()).toEqual([]);
  });

  it.each([
    ['its state directory is claimed', 'container.json'],
    ['conmon has started', 'conmon.pid'],
  ])('tsrun SIGKILLed during run -d once %s: gc removes everything', async (_what, marker) => {
    const id = uniqueId('k');
    w.ids.push(id);
    const child = w.host.spawnTsrun(['run', '-d', '--name', id, '-p', '9200:80', w.bundle, '--', 'sleep', '1000']);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const file = path.join(w.host.root, 'run', 'containers', id, marker);
    await waitFor(`${marker} to appear`, () => existsSync(file), 20_000);
    child.kill('SIGKILL');
    await exited;
    const gc = w.host.tsrun(['gc']);
    expect(gc.status).toBe(0);
    expect(w.host.containerIds()).toEqual([]);
    // the id can be used again
    expect(w.host.tsrun(['run', '-d', '--name', id, '--net', 'none', w.bundle, '--', 'true']).status).toBe(0);
    expect(w.host.tsrun(['wait', id]).stdout).toBe('0\n');
    expect(w.host.tsrun(['rm', id]).status).toBe(0);
  });
});

const describePty = hasConmon && hasScript ? describe : describe.skip;
describePty('-t: a real terminal', () => {
  /** `tsrun ARGS` under `script`, which runs it on a new pseudo-terminal. */
  function underPty(args: string[]): { status: number | null; out: string } {
    const quoted = [TSRUN_BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const r = w.host.ns.exec('script', ['-qec', quoted, '/dev/null'], { env: w.host.env });
    return { status: r.status, out: r.stdout.replace(/\r/g, '').replace(/\0/g, '') };
  }

  it('run -d -t gives the container a terminal conmon holds; exec -t and run -t get one too', async () => {
    const id = uniqueId('tty');
    w.ids.push(id);
    const r = w.host.tsrun(['run', '-d', '-t', '--name', id, '--net', 'none', w.bundle, '--', 'sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo "tty:$(tty)"; sleep 1000']);
    expect(r.status).toBe(0);
    await waitFor('the output', () => w.host.tsrun(['logs', id]).stdout.includes('tty:'));
    expect(w.host.tsrun(['logs', id]).stdout.replace(/\r/g, '')).toMatch(/^tty:\/dev\/pts\/\d+\n$/);

    const e = underPty(['exec', '-t', id, 'sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo "exec-tty:$(tty)"; exit 3']);
    expect(e.out).toMatch(/exec-tty:\/dev\/pts\/\d+/);
    expect(e.status).toBe(3);
    // without -t the same command has no terminal
    expect(w.host.tsrun(['exec', id, 'sh', '-c', 'tty || true']).stdout).toBe('not a tty\n');

    const run = underPty(['run', '-t', '--net', 'none', w.bundle, '--', 'sh', '-c', '[ -t 0 ] && echo "run-tty:$(tty)"; exit 4']);
    expect(run.out).toMatch(/run-tty:\/dev\/pts\/\d+/);
    expect(run.status).toBe(4);
    expect(w.host.tsrun(['rm', '-f', id]).status).toBe(0);
  });

  it('exec -i passes stdin; without -i the process reads nothing', () => {
    const id = uniqueId('in');
    w.ids.push(id);
    expect(w.host.tsrun(['run', '-d', '--name', id, '--net', 'none', w.bundle, '--', 'sleep', '1000']).status).toBe(0);
    expect(w.host.tsrun(['exec', '-i', id, 'sh', '-c', 'read l; echo "got:$l"'], { input: 'hello\n' }).stdout).toBe('got:hello\n');
    expect(w.host.tsrun(['exec', id, 'sh', '-c', 'read l; echo "got:$l"'], { input: 'hello\n' }).stdout).toBe('got:\n');
    expect(w.host.tsrun(['rm', '-f', id]).status).toBe(0);
  });
});

