// spawnDetached: a program started through posix_spawn that nobody waits for. What a runtime
// waiting for a hook's pipes needs from it: its stdio on /dev/null, no other descriptor of the
// caller's, a session of its own, SIGPIPE back to its default.
import { describe, expect, it } from '@jest/globals';
import { closeSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { pipeCloexec, spawnDetached } from '../../../runtime/spawn-detached.js';
import { ErrnoError } from '../../../runtime/netns/errno.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('spawnDetached', () => {
  it('stdio on /dev/null, nothing else inherited, a session of its own, SIGPIPE at its default', async () => {
    const pid = spawnDetached('/bin/sleep', ['sleep', '30']);
    try {
      expect(pid).toBeGreaterThan(0);
      // posix_spawn returns once the program is executing; read what it was given.
      for (let i = 0; i < 100 && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sleep'; i++) await sleep(10);
      const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => `${fd} ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
      expect(fds.sort()).toEqual(['0 /dev/null', '1 /dev/null', '2 /dev/null']);
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const sid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
      expect(sid).toBe(pid);
      const ignored = BigInt(`0x${/SigIgn:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]}`);
      expect(ignored & (1n << 12n)).toBe(0n); // SIGPIPE (13) not ignored
      expect(ignored).toBe(0n); // nor any other, glibc's 32 and 33 included
      const blocked = BigInt(`0x${/SigBlk:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]}`);
      expect(blocked).toBe(0n);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it("run -d's conmon: a pipe of the caller's on fd 3, the environment given, the program found in PATH", () => {
    const [r, w] = pipeCloexec();
    try {
      const pid = spawnDetached('sh', ['sh', '-c', 'echo "$X $(readlink /proc/$$/fd/2) $(ls /proc/$$/fd | tr "\\n" " ")" >&3'], { fds: [undefined, undefined, undefined, w], env: ['X=given', 'PATH=/usr/bin:/bin'], search: true });
      expect(pid).toBeGreaterThan(0);
      closeSync(w);
      // Blocking reads: the pipe ends when sh has exited (the caller's own end is close-on-exec).
      const buf = Buffer.alloc(4096);
      let out = '';
      for (let n = readSync(r, buf); n > 0; n = readSync(r, buf)) out += buf.toString('utf8', 0, n);
      const [x, stderr, ...fds] = out.trim().split(/\s+/);
      expect(x).toBe('given');
      expect(stderr).toBe('/dev/null');
      // 0-3, and nothing of this process's (the command substitution's own pipe aside)
      const nums = fds.map(Number).sort((a, b) => a - b);
      expect(nums.slice(0, 4)).toEqual([0, 1, 2, 3]);
      expect(nums.filter((fd) => fd > 3).length).toBeLessThanOrEqual(1);
    } finally {
      closeSync(r);
    }
  });

  it('refuses a descriptor that a lower one would overwrite first', () => {
    expect(() => spawnDetached('/bin/true', ['true'], { fds: [undefined, undefined, undefined, 2] })).toThrow(RangeError);
  });

  it('a program that cannot be started: an ErrnoError', () => {
    expect(() => spawnDetached('/nonexistent/tsrun-no-such-program', ['x'])).toThrow(ErrnoError);
  });
});
