import { describe, expect, it } from '@jest/globals';
import os from 'node:os';
import { F_UNLCK, F_WRLCK, FileLock, GATE, MAIN, recordLocksWork, type LockType, type RecordLocks } from '../../../runtime/host-lock.js';

/** The kernel's record locks on one file, for simulated processes (each a FakeProcess). */
class FakeKernel {
  /** byte → pid → type held */
  readonly locks = new Map<number, Map<number, LockType>>();
  conflict(pid: number, type: LockType, byte: number): number | undefined {
    for (const [other, held] of this.locks.get(byte) ?? []) {
      if (other !== pid && (type === F_WRLCK || held === F_WRLCK)) return other;
    }
    return undefined;
  }
  held(byte: number): Record<number, string> {
    return Object.fromEntries([...(this.locks.get(byte) ?? [])].map(([pid, t]) => [pid, t === F_WRLCK ? 'W' : 'R']));
  }
}

class FakeProcess implements RecordLocks {
  opens = 0;
  constructor(
    private readonly kernel: FakeKernel,
    readonly pid: number,
  ) {}
  open(): number {
    this.opens++;
    return 3;
  }
  set(_fd: number, type: LockType, byte: number): boolean {
    const mine = this.kernel.locks.get(byte) ?? new Map<number, LockType>();
    this.kernel.locks.set(byte, mine);
    if (type === F_UNLCK) {
      mine.delete(this.pid);
      return true;
    }
    if (this.kernel.conflict(this.pid, type, byte) !== undefined) return false; // nothing changes
    mine.set(this.pid, type);
    return true;
  }
  holder(_fd: number, type: LockType, byte: number): number | undefined {
    return this.kernel.conflict(this.pid, type, byte);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 20));
const FILE = '/nonexistent/host.lock';

function setup(n: number, timeoutMs = 3000) {
  const kernel = new FakeKernel();
  const procs = Array.from({ length: n }, (_, i) => new FakeProcess(kernel, 100 + i));
  const locks = procs.map((p) => new FileLock(FILE, 'host', { timeoutMs }, p));
  return { kernel, procs, locks };
}

describe('FileLock (record locks, simulated processes)', () => {
  it('shared holders of several processes do not wait for each other; the last release frees MAIN', async () => {
    const { kernel, locks } = setup(2);
    const a = await locks[0]!.shared();
    const b = await locks[1]!.shared();
    const a2 = await locks[0]!.shared(); // a second attach of the same process
    expect(kernel.held(MAIN)).toEqual({ 100: 'R', 101: 'R' });
    expect(kernel.held(GATE)).toEqual({}); // the gate is held only while taking MAIN
    await a();
    expect(kernel.held(MAIN)).toEqual({ 100: 'R', 101: 'R' });
    await a(); // a release is done once
    await a2();
    await b();
    expect(kernel.held(MAIN)).toEqual({});
  });

  it('the writer waits for the readers of other processes, and new readers wait behind it', async () => {
    const { kernel, locks } = setup(3);
    const events: string[] = [];
    const reader = await locks[0]!.shared();
    const writer = locks[1]!.exclusive().then((release) => (events.push('writer in'), release));
    await tick();
    expect(kernel.held(GATE)).toEqual({ 101: 'W' }); // announced
    const late = locks[2]!.shared().then((release) => (events.push('late reader in'), release));
    await tick();
    expect(events).toEqual([]);
    events.push('reader out');
    await reader();
    const w = await writer;
    expect(kernel.held(MAIN)).toEqual({ 101: 'W' });
    await tick();
    expect(events).toEqual(['reader out', 'writer in']);
    await w();
    await (await late)();
    expect(events).toEqual(['reader out', 'writer in', 'late reader in']);
    expect([kernel.held(GATE), kernel.held(MAIN)]).toEqual([{}, {}]);
  });

  it('shared inside exclusive in one process is a no-op; exclusive converts its own readers in place and gives them back', async () => {
    const { kernel, locks } = setup(2);
    const reader = await locks[0]!.shared();
    const writer = await locks[0]!.exclusive(); // its own read lock does not conflict
    expect(kernel.held(MAIN)).toEqual({ 100: 'W' });
    const nested = await locks[0]!.shared();
    const nestedEx = await locks[0]!.exclusive();
    await nested();
    await nestedEx();
    expect(kernel.held(MAIN)).toEqual({ 100: 'W' }); // the outer exclusive still holds it
    await writer();
    expect(kernel.held(MAIN)).toEqual({ 100: 'R' }); // back to its reader
    expect(kernel.held(GATE)).toEqual({});
    const other = await locks[1]!.shared();
    await other();
    await reader();
    expect(kernel.held(MAIN)).toEqual({});
  });

  it('times out with one line naming the holder, tells onWait once, and leaves nothing held', async () => {
    const kernel = new FakeKernel();
    const p1 = new FakeProcess(kernel, 4242);
    const p2 = new FakeProcess(kernel, 7);
    const holder = await new FileLock(FILE, 'host', {}, p1).shared();
    const waits: string[] = [];
    const lock = new FileLock(FILE, 'host', { timeoutMs: 100, onWait: (h) => waits.push(h) }, p2);
    await expect(lock.exclusive()).rejects.toThrow(/^timed out waiting for the host lock \(held by process 4242\)$/);
    expect(waits).toEqual(['process 4242']);
    expect(kernel.held(GATE)).toEqual({}); // the gate was given back: readers are not shut out
    await (await new FileLock(FILE, 'host', {}, p1).shared())();
    await holder();
    const ex = await new FileLock(FILE, 'host', { timeoutMs: 100 }, p1).exclusive();
    await expect(lock.shared()).rejects.toThrow(/held by process 4242/);
    await ex();
  });

  it('a process opens the file once, whatever number of lock objects name it', async () => {
    const kernel = new FakeKernel();
    const p = new FakeProcess(kernel, 1);
    for (let i = 0; i < 3; i++) await (await new FileLock(FILE, 'host', {}, p).shared())();
    expect(p.opens).toBe(1);
  });

  it('one file by two paths (same identity) is one hold: an exclusive release through one path keeps the shared hold taken through the other', async () => {
    const kernel = new FakeKernel();
    const p = Object.assign(new FakeProcess(kernel, 1), { identity: () => '8:42' });
    const attach = await new FileLock('/run/tsrun/locks/host.lock', 'host', {}, p).shared();
    await (await new FileLock('/var/run/tsrun/locks/host.lock', 'host', {}, p).exclusive())();
    expect(kernel.held(MAIN)).toEqual({ 1: 'R' });
    await attach();
    expect(kernel.held(MAIN)).toEqual({});
    expect(p.opens).toBe(2);
  });

  it('two exclusive acquisitions of one process: the second waits for the first to get it, then nests', async () => {
    const { kernel, locks } = setup(2);
    const reader = await locks[1]!.shared();
    const first = locks[0]!.exclusive();
    const second = locks[0]!.exclusive();
    await tick();
    await reader();
    const [r1, r2] = await Promise.all([first, second]);
    await r1();
    expect(kernel.held(MAIN)).toEqual({ 100: 'W' });
    await r2();
    expect([kernel.held(GATE), kernel.held(MAIN)]).toEqual([{}, {}]);
  });

  it('is used only where struct flock has the generic 64-bit layout', () => {
    expect(recordLocksWork()).toBe(process.platform === 'linux' && os.endianness() === 'LE' && ['x64', 'arm64', 'riscv64', 'loong64'].includes(process.arch));
    expect(recordLocksWork('linux', 'x64', 'LE')).toBe(true);
    expect(recordLocksWork('linux', 'arm64', 'LE')).toBe(true);
    expect(recordLocksWork('linux', 'arm', 'LE')).toBe(false);
    expect(recordLocksWork('linux', 'ppc64', 'BE')).toBe(false);
    expect(recordLocksWork('darwin', 'arm64', 'LE')).toBe(false);
  });
});

