import { describe, expect, it } from '@jest/globals';
import { busyKeys, oneAtATime } from '../../../runtime/one-at-a-time.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('oneAtATime', () => {
  it('runs the calls of one key in turn, other keys beside them, and forgets idle keys', async () => {
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`${name} start`);
      await tick();
      await tick();
      log.push(`${name} end`);
      return name;
    };
    const results = await Promise.all([oneAtATime('a', job('a1')), oneAtATime('a', job('a2')), oneAtATime('b', job('b1'))]);
    expect(results).toEqual(['a1', 'a2', 'b1']);
    expect(log.indexOf('a1 end')).toBeLessThan(log.indexOf('a2 start'));
    expect(log.indexOf('b1 start')).toBeLessThan(log.indexOf('a1 end'));
    await tick();
    expect(busyKeys()).toEqual([]);
  });

  it('goes on after a call that fails, and gives each caller its own outcome', async () => {
    const failing = oneAtATime('c', async () => {
      throw new Error('boom');
    });
    const next = oneAtATime('c', async () => 'fine');
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('fine');
  });
});
