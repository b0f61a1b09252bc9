// spawnConmon holds conmon on its start pipe (_OCI_STARTPIPE) until start(): checked against a
// stand-in conmon (a shell script speaking conmon's pipes: it reads the start byte from fd 4 as
// conmon does, then "creates" — marks a file, writes its pid file and the sync message on fd 3).
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnConmon } from '../../../../shim/lifecycle/conmon.js';
import { pathsOf } from '../../../../shim/lifecycle/record.js';

let dir: string;
let fake: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-conmon-'));
  fake = path.join(dir, 'conmon');
  // $STARTED marks that it went on; its own pid is the "monitor" and 4242 the "container".
  writeFileSync(fake, `#!/bin/sh
echo "$$" > "$FAKE_DIR/held.pid"
head -c 1 <&4 > "$FAKE_DIR/byte"
touch "$FAKE_DIR/started"
echo "$$" > "$FAKE_DIR/run/containers/c1/conmon.pid"
printf '{"data": 4242}\\n' >&3
`);
  chmodSync(fake, 0o755);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function handle() {
  const p = pathsOf(path.join(dir, 'run'), 'c1');
  return spawnConmon({ id: 'c1', paths: p, runc: { binary: '/bin/false', root: path.join(dir, 'runc') }, tty: false, stdin: false, exitCommand: ['/bin/true'], env: { PATH: process.env.PATH, FAKE_DIR: dir }, conmonBinary: fake, timeoutMs: 5_000 });
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

// Both ways of starting it (shim/lifecycle/conmon.ts): libc's posix_spawn, and node:child_process
// (TSRUN_SPAWN=child_process, also what runs where koffi cannot be loaded).
const ways: ['posix_spawn' | 'child_process', string | undefined][] = [
  ['posix_spawn', undefined],
  ['child_process', 'child_process'],
];
describe.each(ways)('conmon held on its start pipe, started by %s', (way, knob) => {
  const saved = process.env.TSRUN_SPAWN;
  beforeEach(() => {
    if (knob === undefined) delete process.env.TSRUN_SPAWN;
    else process.env.TSRUN_SPAWN = knob;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TSRUN_SPAWN;
    else process.env.TSRUN_SPAWN = saved;
  });

  it('does nothing until start(), then goes on and reports the pid', async () => {
    mkdirSync(path.join(dir, 'run', 'containers', 'c1'), { recursive: true });
    const h = handle();
    expect(h.spawnedBy).toBe(way);
    await until('the stand-in to run', () => existsSync(path.join(dir, 'held.pid')));
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(path.join(dir, 'started'))).toBe(false);
    const started = await h.start();
    expect(started.pid).toBe(4242);
    expect(started.conmonPid).toBe(Number(readFileSync(path.join(dir, 'held.pid'), 'utf8')));
    expect(readFileSync(path.join(dir, 'byte'), 'utf8')).toHaveLength(1);
    expect(existsSync(path.join(dir, 'started'))).toBe(true);
  });

  it('kill() before start() ends it having done nothing; start() then reports the failure', async () => {
    const h = handle();
    await until('the stand-in to run', () => existsSync(path.join(dir, 'held.pid')));
    const pid = Number(readFileSync(path.join(dir, 'held.pid'), 'utf8'));
    h.kill();
    await expect(h.start()).rejects.toThrow(/conmon/);
    expect(existsSync(path.join(dir, 'started'))).toBe(false);
    await until('the stand-in to end', () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
  });

  it('a conmon that fails before it answers: its last stderr line, and its descriptors were 0-4 alone', async () => {
    const failing = path.join(dir, 'conmon-failing');
    writeFileSync(failing, `#!/bin/sh
while read -r k v; do case $k in SigBlk:|SigIgn:) echo "$k $v";; esac; done < /proc/$$/status > "$FAKE_DIR/signals"
ls -l /proc/$$/fd > "$FAKE_DIR/fds"
head -c 1 <&4 > /dev/null
echo "[conmon:w]: first" >&2
echo "[conmon:e]: cannot open the log" >&2
exit 1
`);
    chmodSync(failing, 0o755);
    const p = pathsOf(path.join(dir, 'run'), 'c3');
    const h = spawnConmon({ id: 'c3', paths: p, runc: { binary: '/bin/false', root: dir }, tty: false, stdin: false, exitCommand: ['/bin/true'], env: { PATH: process.env.PATH, FAKE_DIR: dir }, conmonBinary: failing, timeoutMs: 5_000 });
    await expect(h.start()).rejects.toThrow(/^conmon: cannot open the log$/);
    // `N -> target` lines: 0-4 are conmon's (stdio, the sync and start pipes); above them only the
    // shell's own copies for its redirection (fd 10 on: /dev/null, the listing's file), never a
    // pipe or socket of this process's.
    const fds = new Map([...readFileSync(path.join(dir, 'fds'), 'utf8').matchAll(/ (\d+) -> (.*)$/gm)].map((m) => [Number(m[1]), m[2]!]));
    expect([0, 1, 2, 3, 4].every((fd) => fds.has(fd))).toBe(true);
    expect([...fds].filter(([fd, target]) => fd > 4 && /^(pipe|socket):/.test(target))).toEqual([]);
    expect([...fds.keys()].filter((fd) => fd > 4 && fd < 10)).toEqual([]);
    // No signal ignored or blocked, glibc's 32 and 33 included, either way (libuv resets them all).
    // Read by the shell's builtins before it forks anything: while it waits for a child, dash blocks
    // every signal for a moment (waitproc's sigblockall), which a grep of /proc/$$/status caught
    // now and then on a loaded machine.
    expect(readFileSync(path.join(dir, 'signals'), 'utf8')).toMatch(/^SigBlk:\s*0+\nSigIgn:\s*0+\n$/);
  });

  it('a missing binary is reported by start(), in one line', async () => {
    const p = pathsOf(path.join(dir, 'run'), 'c2');
    const h = spawnConmon({ id: 'c2', paths: p, runc: { binary: '/bin/false', root: dir }, tty: false, stdin: false, exitCommand: ['/bin/true'], env: {}, conmonBinary: path.join(dir, 'no-such-conmon') });
    await new Promise((r) => setTimeout(r, 50)); // the spawn error arrives before start(): no unhandled rejection
    await expect(h.start()).rejects.toThrow(/^conmon: not installed/);
  });
});
