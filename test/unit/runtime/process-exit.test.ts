// Waiting for a process that is not a child of the waiter's to end: here the processes are this
// test's children (Node reaps them), which is what a zombie-free end looks like from outside.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { isAlive, processStartTime } from '../../../runtime/containers.js';
import { killAndWait, waitGone } from '../../../runtime/process-exit.js';

function sleeper(): { pid: number; start: string; stop: () => void } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid!;
  return { pid, start: processStartTime(pid) ?? '', stop: () => child.kill('SIGKILL') };
}

describe('process-exit', () => {
  it('killAndWait sends SIGKILL and returns once the process has ended', async () => {
    const p = sleeper();
    expect(await killAndWait(p.pid, p.start, 30_000)).toBe(true); // generous: a loaded CI machine
    expect(isAlive(p.pid, p.start)).toBe(false); // gone, or a zombie Node has not reaped yet
  });

  it('waitGone gives up after the timeout while the process runs', async () => {
    const p = sleeper();
    try {
      expect(await waitGone(p.pid, p.start, 60)).toBe(false);
    } finally {
      p.stop();
    }
  });

  it('leaves a process alone whose start time is not the one recorded (a reused pid)', async () => {
    const p = sleeper();
    try {
      expect(await killAndWait(p.pid, '1', 1_000)).toBe(true); // "that" process is gone
      expect(processStartTime(p.pid)).toBe(p.start); // this one was not signalled
    } finally {
      p.stop();
    }
  });
});
