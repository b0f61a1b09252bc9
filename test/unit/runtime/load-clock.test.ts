import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { bookImport, bookLoad, loadedMs } from '../../../runtime/load-clock.js';
import { HookTiming } from '../../../hook/timing.js';

// A fake clock: each test moves time by hand.
let now = 1000;
const advance = (ms: number) => void (now += ms);
beforeEach(() => void jest.spyOn(performance, 'now').mockImplementation(() => now));
afterEach(() => {
  jest.restoreAllMocks();
});

describe('the load clock', () => {
  it('books synchronous and asynchronous loads, nested ones once', async () => {
    const before = loadedMs();
    expect(bookLoad(() => (advance(5), 42))).toBe(42);
    expect(loadedMs() - before).toBe(5);
    await bookImport(async () => {
      advance(3);
      bookLoad(() => advance(4)); // inside the outer load: counted by it, not twice
      await Promise.resolve();
      advance(2);
    });
    expect(loadedMs() - before).toBe(5 + 9);
  });

  it('books a load that throws', () => {
    const before = loadedMs();
    expect(() => bookLoad(() => (advance(3), JSON.parse('{')))).toThrow();
    expect(loadedMs() - before).toBe(3);
  });

  it('moves a native library opened during the hook\'s work from work to load', async () => {
    now = 20;
    const t = new HookTiming(15, 20); // 15 ms of start-up, then 5 of loading the hook's bundle
    advance(10); // work
    bookLoad(() => advance(7)); // koffi, libnftables
    await t.load(async () => advance(4)); // a lazy import
    advance(1); // work
    expect(t.summary()).toMatchObject({ startupMs: 15, loadMs: 5 + 7 + 4, workMs: 11, totalMs: 42 });
  });
});
