import { describe, expect, it } from '@jest/globals';
import { Transaction, runAll } from '../../../runtime/tx.js';
import { SystemError, UserError } from '../../../config/errors.js';

describe('Transaction', () => {
  it('undoes completed steps in reverse order when a later step fails', async () => {
    const done: string[] = [];
    await expect(
      Transaction.run(undefined, async (tx) => {
        await tx.step('a', () => done.push('a'), () => void done.push('undo a'));
        await tx.step('b', () => done.push('b'), () => void done.push('undo b'));
        await tx.step('c', () => {
          throw new Error('boom');
        }, () => void done.push('undo c'));
      }),
    ).rejects.toThrow('c: boom');
    expect(done).toEqual(['a', 'b', 'undo b', 'undo a']);
  });

  it('keeps going when an undo fails and rethrows the original error', async () => {
    const done: string[] = [];
    const run = Transaction.run(undefined, async (tx) => {
      await tx.step('a', () => 1, () => void done.push('undo a'));
      await tx.step('b', () => 2, () => {
        throw new Error('undo broke');
      });
      throw new UserError('address taken');
    });
    await expect(run).rejects.toBeInstanceOf(UserError);
    expect(done).toEqual(['undo a']);
  });

  it('passes the step result to its undo and drops undos on commit', async () => {
    const seen: number[] = [];
    await Transaction.run(undefined, async (tx) => {
      await tx.step('x', () => 41, (n) => void seen.push(n));
    });
    expect(seen).toEqual([]);
    const tx = new Transaction();
    await tx.step('x', () => 7, (n) => void seen.push(n));
    await tx.rollback();
    expect(seen).toEqual([7]);
  });
});

describe('runAll', () => {
  it('runs every step and reports all failures', async () => {
    const ran: string[] = [];
    const result = runAll([
      { description: 'one', run: () => { ran.push('one'); throw new Error('e1'); } },
      { description: 'two', run: () => void ran.push('two') },
      { description: 'three', run: () => { ran.push('three'); throw new Error('e3'); } },
    ]);
    await expect(result).rejects.toBeInstanceOf(SystemError);
    await expect(result).rejects.toThrow(/one: e1.*three: e3/);
    expect(ran).toEqual(['one', 'two', 'three']);
  });
});

describe('fault injection: TSRUN_FAULT_KILL_AFTER', () => {
  it('parses <phase>:<k> and nothing else', async () => {
    const { parseFault } = await import('../../../runtime/tx.js');
    expect(parseFault('setup:3')).toEqual({ phase: 'setup', k: 3 });
    expect(parseFault('teardown:12')).toEqual({ phase: 'teardown', k: 12 });
    for (const bad of [undefined, '', 'setup', 'setup:0', 'setup:-1', 'attach:2', 'setup:2x']) expect(parseFault(bad)).toBeUndefined();
  });
});
