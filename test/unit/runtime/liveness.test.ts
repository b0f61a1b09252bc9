// isAlive decides whether a record's holder still holds its namespace. A zombie has released its
// namespaces while its /proc entry (start time included) still looks like the live process: a
// hook that took it for alive refused the next container of the same id as "wired for another
// live container" until its parent happened to reap it.
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAlive, processStartTime } from '../../../runtime/containers.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

describe('isAlive', () => {
  it('a running process with its start time is alive; another start time is not', () => {
    const start = processStartTime(process.pid)!;
    expect(isAlive(process.pid, start)).toBe(true);
    expect(isAlive(process.pid, '')).toBe(true);
    expect(isAlive(process.pid, String(Number(start) + 1))).toBe(false);
  });

  it('a zombie is not alive, though its /proc entry keeps its start time', async () => {
    // The shell starts a short sleep in the background, prints its pid and execs a long sleep that
    // never reaps it: the short one (which outlives the exec, so the shell cannot reap it first)
    // stays a zombie until the long one ends.
    const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    for (let i = 0; i < 1000 && stateOf(pid) !== 'Z'; i++) await new Promise((r) => setTimeout(r, 5));
    expect(stateOf(pid)).toBe('Z');
    const start = processStartTime(pid);
    expect(start).toBeDefined();
    expect(isAlive(pid, start!)).toBe(false);
    expect(isAlive(pid, '')).toBe(false);
  });

  it('a pid with no process is not alive', () => {
    expect(isAlive(2 ** 22 + 1, '')).toBe(false);
  });
});
