// `runc run` is started through Node's process handle when it can be (shim/spawn-inherit.ts), else
// through child_process.spawn. Both must behave as ChildProcess does for what supervising runc
// uses: the exit event's code and signal, kill() and its result, an 'error' event for a program
// that cannot start, inherited stdio, environment and working directory. Each case runs in a child
// Node process on both paths (TSRUN_SPAWN=child_process forces the fallback).
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const MODULE = path.join(process.cwd(), 'dist', 'shim', 'spawn-inherit.js');

/** Runs `body` (an async function body with spawnInherit in scope) in a fresh Node; its stdout. */
function inNode(body: string, env: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const code = `import(${JSON.stringify(MODULE)}).then(async ({ spawnInherit }) => { ${body} }).catch((e) => { console.error(e); process.exit(99); });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const exitOf = `(c) => new Promise((resolve) => { c.once('exit', (code, signal) => resolve({ code, signal })); c.once('error', (e) => resolve({ error: e.code, syscall: e.syscall })); })`;

describe.each([
  ['the process handle', {}],
  ['child_process (fallback)', { TSRUN_SPAWN: 'child_process' }],
])('spawnInherit through %s', (_name, env) => {
  it('passes the exit status, stdio, environment and working directory through', () => {
    const r = inNode(`const c = spawnInherit('/bin/sh', ['-c', 'echo "out $FOO $(pwd)"; echo err >&2; exit 7']); console.log(JSON.stringify(await (${exitOf})(c)), typeof c.pid);`, { ...env, FOO: 'bar' });
    expect(r.stderr).toBe('err\n');
    expect(r.stdout).toBe(`out bar ${process.cwd()}\n{"code":7,"signal":null} number\n`);
  });

  it('reads stdin the caller has', () => {
    const code = `import(${JSON.stringify(MODULE)}).then(async ({ spawnInherit }) => { const c = spawnInherit('/bin/cat', []); await (${exitOf})(c); });`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', input: 'hello\n', env: { PATH: process.env.PATH, ...env } });
    expect(r.stdout).toBe('hello\n');
  });

  it('kill() delivers the signal; the exit names it; a second kill after the exit is false', () => {
    const r = inNode(`const c = spawnInherit('/bin/sleep', ['30']); const done = (${exitOf})(c); const sent = c.kill('SIGTERM'); const e = await done; console.log(JSON.stringify({ sent, e, again: c.kill('SIGTERM') }));`, env);
    expect(JSON.parse(r.stdout)).toEqual({ sent: true, e: { code: null, signal: 'SIGTERM' }, again: false });
  });

  it('a program that does not exist is an error event (ENOENT), not a throw', () => {
    const r = inNode(`const c = spawnInherit('/nonexistent/runc', ['run']); console.log(JSON.stringify(await (${exitOf})(c)));`, env);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'ENOENT', syscall: 'spawn /nonexistent/runc' });
  });
});

describe('spawnInherit falls back', () => {
  it('under --pending-deprecation (process.binding would warn), without a warning', () => {
    const code = `import(${JSON.stringify(MODULE)}).then(async ({ spawnInherit }) => { const c = spawnInherit('/bin/true', []); c.once('exit', (code) => console.log(code)); });`;
    const r = spawnSync(process.execPath, ['--pending-deprecation', '-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n');
    // NODE_PENDING_DEPRECATION=1 turns it on too, which the flags do not show
    const e = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH, NODE_PENDING_DEPRECATION: '1' } });
    expect({ stdout: e.stdout, stderr: e.stderr }).toEqual({ stdout: '0\n', stderr: '' });
  });
});

describe.each(['run.cjs', 'run-plain.cjs'])('a whole foreground run from %s', (door) => {
  it('starts runc without loading child_process (runc stands in as /bin/true; --net none, a throwaway root)', () => {
    const loader = path.join(process.cwd(), 'scripts', 'code-cache.cjs');
    const bundle = path.join(process.cwd(), 'dist', 'bundle', door);
    const code = `
      const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrun-spawn-test-'));
      fs.mkdirSync(path.join(dir, 'b', 'rootfs'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'b', 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: 'rootfs' }, linux: { namespaces: [{ type: 'pid' }] } }));
      process.env.TSRUN_ROOT = path.join(dir, 'root');
      process.env.TSRUN_RUNC = '/bin/true';
      require(${JSON.stringify(loader)}).load(${JSON.stringify(bundle)}).main([process.execPath, 'tsrun', 'run', '--net', 'none', path.join(dir, 'b')]).then((code) => {
        fs.rmSync(dir, { recursive: true, force: true });
        process.stdout.write(JSON.stringify({ code, childProcess: process.moduleLoadList.includes('NativeModule child_process') }));
      });`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ code: 0, childProcess: false });
  });
});
