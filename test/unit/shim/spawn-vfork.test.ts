// A run that wired a network starts runc through posix_spawnp (shim/spawn-vfork.ts) once koffi is
// loaded. It must behave as the process handle's child does (spawn-inherit.test.ts) for what
// supervising runc uses, and start the program in the same state: signal dispositions and mask,
// stdio (which Node marks close-on-exec), environment, working directory. Each case runs in a
// child Node process that has loaded koffi first, as the wired door has.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { decodeWaitStatus } from '../../../shim/spawn-vfork.js';

const VFORK = path.join(process.cwd(), 'dist', 'shim', 'spawn-vfork.js');
const INHERIT = path.join(process.cwd(), 'dist', 'shim', 'spawn-inherit.js');
const KOFFI = path.join(process.cwd(), 'dist', 'runtime', 'koffi.js');

/** Runs `body` with spawnInheritVfork and spawnInherit in scope, koffi loaded unless told not to. */
function inNode(body: string, opts: { env?: Record<string, string>; input?: string; koffi?: boolean } = {}): { stdout: string; stderr: string; status: number | null } {
  const load = opts.koffi === false ? '' : 'k.loadKoffi();';
  const code = `Promise.all([import(${JSON.stringify(VFORK)}), import(${JSON.stringify(INHERIT)}), import(${JSON.stringify(KOFFI)})]).then(async ([{ spawnInheritVfork }, { spawnInherit }, k]) => { ${load} ${body} }).catch((e) => { console.error(e); process.exit(99); });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', input: opts.input, env: { PATH: process.env.PATH, ...opts.env } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const exitOf = `(c) => new Promise((resolve) => { c.once('exit', (code, signal) => resolve({ code, signal })); c.once('error', (e) => resolve({ error: e.code, syscall: e.syscall })); })`;

describe('spawnInheritVfork (posix_spawnp, koffi loaded)', () => {
  it('passes the exit status, stdio, environment and working directory through, and keeps the process alive until the child ends', () => {
    const r = inNode(`const c = spawnInheritVfork('/bin/sh', ['-c', 'sleep 0.2; echo "out $FOO $(pwd)"; echo err >&2; exit 7']); console.log(JSON.stringify(await (${exitOf})(c)), typeof c.pid);`, { env: { FOO: 'bar' } });
    expect(r.stderr).toBe('err\n');
    expect(r.stdout).toBe(`out bar ${process.cwd()}\n{"code":7,"signal":null} number\n`);
  });

  it('reads stdin the caller has', () => {
    const r = inNode(`await (${exitOf})(spawnInheritVfork('/bin/cat', []));`, { input: 'hello\n' });
    expect(r.stdout).toBe('hello\n');
  });

  it('kill() delivers the signal; the exit names it; a second kill after the exit is false', () => {
    const r = inNode(`const c = spawnInheritVfork('/bin/sleep', ['30']); const done = (${exitOf})(c); const sent = c.kill('SIGTERM'); const e = await done; console.log(JSON.stringify({ sent, e, again: c.kill('SIGTERM') }));`);
    expect(JSON.parse(r.stdout)).toEqual({ sent: true, e: { code: null, signal: 'SIGTERM' }, again: false });
  });

  it('a program that does not exist is an error event (ENOENT), not a throw', () => {
    const r = inNode(`const c = spawnInheritVfork('/nonexistent/runc', ['run']); console.log(JSON.stringify(await (${exitOf})(c)));`);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'ENOENT', syscall: 'spawn /nonexistent/runc' });
  });

  it('starts the program with the signal state, mask and descriptors the process handle gives it', () => {
    // Node ignores SIGPIPE and handles glibc's signals 32 and 33: neither may reach the child.
    const probe = (fn: string) => `const c = ${fn}('/bin/sh', ['-c', 'grep -E "^Sig(Ign|Blk)" /proc/self/status; ls /proc/self/fd | sort -n | tr "\\\\n" " "']); await (${exitOf})(c);`;
    const vfork = inNode(probe('spawnInheritVfork'));
    const handle = inNode(probe('spawnInherit'));
    expect(vfork.stderr).toBe('');
    expect(vfork.stdout).toMatch(/SigIgn:\s+0+\n/);
    expect(vfork.stdout).toBe(handle.stdout);
  });

  it('another child ending first is not taken for this one', () => {
    const r = inNode(`const { spawnSync } = await import('node:child_process'); const c = spawnInheritVfork('/bin/sh', ['-c', 'sleep 0.3; exit 3']); const done = (${exitOf})(c); spawnSync('/bin/true'); console.log(JSON.stringify(await done));`);
    expect(JSON.parse(r.stdout)).toEqual({ code: 3, signal: null });
  });

  it('is not used where koffi is not loaded, nor with TSRUN_SPAWN set', () => {
    expect(inNode(`console.log(spawnInheritVfork('/bin/true', []) === undefined);`, { koffi: false }).stdout).toBe('true\n');
    expect(inNode(`console.log(spawnInheritVfork('/bin/true', []) === undefined);`, { env: { TSRUN_SPAWN: 'process_wrap' } }).stdout).toBe('true\n');
    expect(inNode(`console.log(spawnInheritVfork('/bin/true', []) === undefined);`, { env: { TSRUN_SPAWN: 'child_process' } }).stdout).toBe('true\n');
  });
});

describe('decodeWaitStatus', () => {
  it('reads exit codes, signals (with or without a core) and ignores stops', () => {
    expect(decodeWaitStatus(7 << 8)).toEqual({ code: 7, signal: null });
    expect(decodeWaitStatus(0)).toEqual({ code: 0, signal: null });
    expect(decodeWaitStatus(9)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(decodeWaitStatus(0x80 | 11)).toEqual({ code: null, signal: 'SIGSEGV' });
    expect(decodeWaitStatus((19 << 8) | 0x7f)).toBeUndefined();
  });
});
