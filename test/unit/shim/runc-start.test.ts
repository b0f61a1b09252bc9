// `runc start` in-process (shim/runc.ts startInProcess): the exec fifo read the way runc's start
// reads it, against a real fifo and a real process standing in for runc's init (no runc needed):
// the byte read and the fifo removed; nothing done, and no wait, when the init has ended or there
// is no fifo; hooks and NOTIFY_SOCKET left to runc.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { awaitStartByte, closeExecFifo, openExecFifo, startInProcess, startableInProcess } from '../../../shim/runc.js';

let root: string;
const children: ChildProcess[] = [];
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tsrun-runc-start-test-'));
});
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** A container directory as runc leaves a created one: state.json naming `pid` as its init, and
 * its exec fifo (unless `fifo` is false). */
function created(id: string, pid: number, o: { fifo?: boolean; hooks?: unknown } = {}): string {
  const dir = path.join(root, id);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ id, init_process_pid: pid, init_process_start: startTicks(pid), config: { Hooks: o.hooks ?? null } }));
  if (o.fifo !== false) expect(spawnSync('mkfifo', [path.join(dir, 'exec.fifo')]).status).toBe(0);
  return dir;
}

describe('startInProcess', () => {
  it("reads the init's byte from the exec fifo and removes the fifo", async () => {
    // The stand-in init opens the fifo for writing (waiting for a reader, as runc's init does),
    // writes its byte, and goes on running.
    const dir = path.join(root, 'c1');
    mkdirSync(dir);
    const fifo = path.join(dir, 'exec.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const init = spawn('sh', ['-c', `printf 0 > ${fifo}; echo started; exec sleep 30`], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(init);
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ id: 'c1', init_process_pid: init.pid, init_process_start: startTicks(init.pid!), config: { Hooks: null } }));
    const said = new Promise<string>((resolve) => init.stdout!.once('data', (d: Buffer) => resolve(d.toString())));
    expect(await startInProcess({ binary: '/bin/false', root }, 'c1')).toBe(true);
    expect(await said).toBe('started\n');
    expect(existsSync(fifo)).toBe(false);
  });

  it('does nothing, at once, when the init has ended (runc start then says so)', async () => {
    const gone = spawnSync('sh', ['-c', 'echo $$']);
    const pid = Number(gone.stdout.toString());
    const dir = path.join(root, 'c2');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ id: 'c2', init_process_pid: pid, init_process_start: 1, config: {} }));
    expect(spawnSync('mkfifo', [path.join(dir, 'exec.fifo')]).status).toBe(0);
    expect(await startInProcess({ binary: '/bin/false', root }, 'c2')).toBe(false);
    expect(existsSync(path.join(dir, 'exec.fifo'))).toBe(true);
  });

  it('takes the byte of an init that wrote it and ended between a read and the look at it (a program that exits at once)', async () => {
    // Found in review: the look came after the read, so an init that wrote, exec'd and ended in
    // between was taken for one that died before starting. The look here writes the byte (as the
    // init would, with this reader open) and says the init has ended.
    const init = spawn('sleep', ['30']);
    children.push(init);
    const dir = created('c5', init.pid!);
    const fifo = path.join(dir, 'exec.fifo');
    let looks = 0;
    const alive = (): boolean => {
      looks++;
      if (looks === 1) return true; // startableInProcess: alive when the start begins
      expect(spawnSync('sh', ['-c', `printf 0 > ${fifo}`]).status).toBe(0);
      return false;
    };
    expect(await startInProcess({ binary: '/bin/false', root }, 'c5', 5_000, alive)).toBe(true);
    expect(existsSync(fifo)).toBe(false);
  });

  it('two starts at once: one takes the byte, the other gives up once the fifo is gone, not at its timeout', async () => {
    // Found in review: the second read EOF for as long as its timeout (5 s), the init being alive.
    const dir = path.join(root, 'c6');
    mkdirSync(dir);
    const fifo = path.join(dir, 'exec.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // The stand-in init waits until both starts have the fifo open (two readers), then writes.
    const init = spawn('sh', ['-c', `sleep 0.3; printf 0 > ${fifo}; exec sleep 30`], { stdio: 'ignore' });
    children.push(init);
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ id: 'c6', init_process_pid: init.pid, init_process_start: startTicks(init.pid!), config: { Hooks: null } }));
    const starts = Promise.all([startInProcess({ binary: '/bin/false', root }, 'c6', 60_000), startInProcess({ binary: '/bin/false', root }, 'c6', 60_000)]);
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 4_000)));
    const r = await Promise.race([starts, hung]);
    clearTimeout(timer);
    expect(r === 'hung' ? r : [...r].sort()).toEqual([false, true]);
    expect(existsSync(fifo)).toBe(false);
  });

  it('does nothing when there is no fifo (started already) or no state', async () => {
    const init = spawn('sleep', ['30']);
    children.push(init);
    created('c3', init.pid!, { fifo: false });
    expect(await startInProcess({ binary: '/bin/false', root }, 'c3')).toBe(false);
    expect(await startInProcess({ binary: '/bin/false', root }, 'nosuch')).toBe(false);
  });

  it('leaves a container with hooks to runc, fifo untouched', async () => {
    const init = spawn('sleep', ['30']);
    children.push(init);
    const dir = created('c4', init.pid!, { hooks: { poststart: [{ path: '/bin/true' }] } });
    expect(await startInProcess({ binary: '/bin/false', root }, 'c4')).toBe(false);
    expect(existsSync(path.join(dir, 'exec.fifo'))).toBe(true);
  });
});

describe('startableInProcess', () => {
  const state = { init_process_pid: 10, init_process_start: 99, config: { Hooks: { poststart: null, prestart: null } } };
  it('a plain created container with a live init', () => {
    expect(startableInProcess(state, () => true, {})).toBe(true);
  });
  it('not with NOTIFY_SOCKET (runc start waits for READY), hooks, an ended init or an unknown state', () => {
    expect(startableInProcess(state, () => true, { NOTIFY_SOCKET: '/run/x.sock' })).toBe(false);
    expect(startableInProcess({ ...state, config: { Hooks: { poststart: [{ path: '/x' }] } } }, () => true, {})).toBe(false);
    expect(startableInProcess(state, () => false, {})).toBe(false);
    expect(startableInProcess({ init_process_pid: '10' }, () => true, {})).toBe(false);
    expect(startableInProcess(null, () => true, {})).toBe(false);
  });
});

describe('openExecFifo and awaitStartByte (run -d opens the fifo before its records)', () => {
  it('the open lets the init go on to its program at once; the byte is read afterwards and the fifo removed', async () => {
    const dir = path.join(root, 'c7');
    mkdirSync(dir);
    const fifo = path.join(dir, 'exec.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const init = spawn('sh', ['-c', `printf 0 > ${fifo}; echo started; exec sleep 30`], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(init);
    writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ id: 'c7', init_process_pid: init.pid, init_process_start: startTicks(init.pid!), config: { Hooks: null } }));
    const said = new Promise<string>((resolve) => init.stdout!.once('data', (d: Buffer) => resolve(d.toString())));
    const opened = openExecFifo({ binary: '/bin/false', root }, 'c7');
    expect(opened).toBeDefined();
    // The init has written its byte and gone on before anyone read it.
    expect(await said).toBe('started\n');
    expect(existsSync(fifo)).toBe(true);
    expect(await awaitStartByte(opened!)).toBe(true);
    expect(existsSync(fifo)).toBe(false);
    expect(opened!.fd).toBe(-1);
  });

  it('opens nothing where startInProcess would do nothing: hooks, no fifo, no state', () => {
    const sleeper = spawn('sleep', ['30']);
    children.push(sleeper);
    created('c8', sleeper.pid!, { hooks: { poststart: [{ path: '/bin/true' }] } });
    created('c9', sleeper.pid!, { fifo: false });
    for (const id of ['c8', 'c9', 'nosuch']) expect(openExecFifo({ binary: '/bin/false', root }, id)).toBeUndefined();
  });

  it('closeExecFifo closes once (a run -d that failed before the read)', () => {
    const sleeper = spawn('sleep', ['30']);
    children.push(sleeper);
    created('c10', sleeper.pid!);
    const f = openExecFifo({ binary: '/bin/false', root }, 'c10')!;
    closeExecFifo(f);
    expect(f.fd).toBe(-1);
    closeExecFifo(f); // again: nothing
  });
});
