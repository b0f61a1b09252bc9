// superviseChild (shim/supervise.ts) holds forwarded signals until runc can take them (`ready`):
// a `runc run` still in its Go runtime's first milliseconds dies of a SIGTERM instead of passing it
// on. Signals are emitted on `process` directly (its listeners run, no real signal is sent).
import { describe, expect, it } from '@jest/globals';
import { EventEmitter } from 'node:events';
import { superviseChild, HELD_SIGNAL_POLL_MS } from '../../../shim/supervise.js';
import type { InheritingChild } from '../../../shim/spawn-inherit.js';

class FakeChild extends EventEmitter {
  readonly pid = 4242;
  readonly sent: NodeJS.Signals[] = [];
  kill(signal: NodeJS.Signals): boolean {
    this.sent.push(signal);
    return true;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('superviseChild: signals held until runc can take them', () => {
  it('forwards the pending signals and later ones at once when ready', async () => {
    const child = new FakeChild();
    const exit = superviseChild(child as unknown as InheritingChild, undefined, { pending: ['SIGTERM'], ready: () => true });
    process.emit('SIGUSR1', 'SIGUSR1');
    expect(child.sent).toEqual(['SIGTERM', 'SIGUSR1']);
    child.emit('exit', 0, null);
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it('holds them while not ready, then forwards them in order', async () => {
    const child = new FakeChild();
    let ready = false;
    let looks = 0;
    const exit = superviseChild(child as unknown as InheritingChild, undefined, {
      pending: ['SIGINT'],
      ready: () => {
        looks++;
        return ready;
      },
    });
    process.emit('SIGHUP', 'SIGHUP');
    await sleep(HELD_SIGNAL_POLL_MS * 5);
    expect(child.sent).toEqual([]);
    ready = true;
    await sleep(HELD_SIGNAL_POLL_MS * 5);
    expect(child.sent).toEqual(['SIGINT', 'SIGHUP']);
    const after = looks;
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(child.sent).toEqual(['SIGINT', 'SIGHUP', 'SIGUSR2']);
    expect(looks).toBe(after); // once ready, not asked again
    child.emit('exit', 0, null);
    await exit;
  });

  it('the stop timeout runs from the stop signal, held or not', async () => {
    const child = new FakeChild();
    let killed = 0;
    const exit = superviseChild(child as unknown as InheritingChild, { stopTimeoutMs: 20, kill: () => void killed++ }, { pending: ['SIGTERM'], ready: () => false });
    await sleep(80);
    expect(killed).toBe(1);
    expect(child.sent).toEqual([]);
    child.emit('exit', null, 'SIGKILL');
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('a child that ends while a signal is held: nothing forwarded, no listener left', async () => {
    const child = new FakeChild();
    const before = process.listenerCount('SIGTERM');
    const exit = superviseChild(child as unknown as InheritingChild, undefined, { ready: () => false });
    process.emit('SIGTERM', 'SIGTERM');
    child.emit('exit', 1, null);
    expect(await exit).toEqual({ code: 1, signal: null });
    await sleep(HELD_SIGNAL_POLL_MS * 3);
    expect(child.sent).toEqual([]);
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
