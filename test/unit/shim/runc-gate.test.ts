// The gate that holds runc at its first hook while a foreground run attaches its network
// (shim/runc-gate.ts): where the hook goes in the spec, the child whose end is remembered, and the
// hook itself (a real /bin/sh reading the real pipe, in a Node process with koffi loaded, as the
// wired door runs it). The gate in a whole run: test/integration/bridge.test.ts.
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { rememberEnd, withGateHook } from '../../../shim/runc-gate.js';
import type { InheritingChild } from '../../../shim/spawn-inherit.js';

const GATE = path.join(process.cwd(), 'dist', 'shim', 'runc-gate.js');
const KOFFI = path.join(process.cwd(), 'dist', 'runtime', 'koffi.js');

const gate = { path: '/bin/sh', args: ['sh', '-c', 'gate'] };

describe('withGateHook', () => {
  it('puts the gate first of the createRuntime hooks, keeping every other hook', () => {
    expect(withGateHook(undefined, gate)).toEqual({ createRuntime: [gate] });
    const own = { path: '/usr/bin/own', args: ['own'] };
    expect(withGateHook({ createRuntime: [own], poststop: [own] }, gate)).toEqual({ createRuntime: [gate, own], poststop: [own] });
  });

  it('goes before the prestart hooks when there are any (runc runs those first)', () => {
    const pre = { path: '/usr/bin/pre', args: ['pre'] };
    const cr = { path: '/usr/bin/cr', args: ['cr'] };
    expect(withGateHook({ prestart: [pre], createRuntime: [cr] }, gate)).toEqual({ prestart: [gate, pre], createRuntime: [cr] });
    expect(withGateHook({ prestart: [], createRuntime: [cr] }, gate)).toEqual({ prestart: [], createRuntime: [gate, cr] });
  });
});

class FakeChild extends EventEmitter {
  readonly pid = 4242;
  killed: string[] = [];
  kill(signal: NodeJS.Signals): boolean {
    this.killed.push(signal);
    return true;
  }
}

describe('rememberEnd', () => {
  it('tells a listener added after the exit at once, and settles `exited`', async () => {
    const c = new FakeChild();
    const held = rememberEnd(c as unknown as InheritingChild);
    c.emit('exit', 3, null);
    await expect(held.exited).resolves.toEqual({ code: 3, signal: null });
    const seen = await new Promise((resolve) => held.once('exit', (code, signal) => resolve({ code, signal })));
    expect(seen).toEqual({ code: 3, signal: null });
  });

  it('passes a later exit and an error through, and kill to the child', async () => {
    const c = new FakeChild();
    const held = rememberEnd(c as unknown as InheritingChild);
    const seen = new Promise((resolve) => held.once('exit', (code, signal) => resolve({ code, signal })));
    expect(held.kill('SIGKILL')).toBe(true);
    expect(c.killed).toEqual(['SIGKILL']);
    expect(held.pid).toBe(4242);
    c.emit('exit', null, 'SIGKILL');
    await expect(seen).resolves.toEqual({ code: null, signal: 'SIGKILL' });

    const e = new FakeChild();
    const failed = rememberEnd(e as unknown as InheritingChild);
    e.emit('error', new Error('spawn runc ENOENT'));
    await expect(failed.exited).rejects.toThrow('ENOENT');
    await expect(new Promise((resolve) => failed.once('error', resolve))).resolves.toBeInstanceOf(Error);
  });
});

/** Runs `body` with makeGate in scope (koffi loaded unless told not to); prints what it logs. */
function inNode(body: string, opts: { koffi?: boolean; env?: Record<string, string> } = {}): { stdout: string; stderr: string; status: number | null } {
  const load = opts.koffi === false ? '' : 'k.loadKoffi();';
  const code = `Promise.all([import(${JSON.stringify(GATE)}), import(${JSON.stringify(KOFFI)}), import('node:child_process')]).then(async ([{ makeGate }, k, cp]) => { ${load} ${body} }).catch((e) => { console.error(e); process.exit(99); });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH, ...opts.env } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** Starts the gate's hook as runc would, and prints its exit status once it ends. */
const runHook = `const run = (g) => new Promise((resolve) => { const c = cp.spawn(g.hook.path, g.hook.args.slice(1), { argv0: g.hook.args[0], stdio: 'ignore' }); c.once('exit', (code) => resolve(code)); });`;

describe('makeGate (a real pipe and /bin/sh)', () => {
  it('the hook succeeds once the gate is opened, and not before', () => {
    const r = inNode(`${runHook} const g = makeGate(); let done = false; const p = run(g).then((code) => { done = true; return code; }); await new Promise((r) => setTimeout(r, 300)); console.log('waiting', !done); g.open(); console.log('code', await p); g.close(); g.close();`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('waiting true\ncode 0\n');
  });

  it('the hook fails when the gate is closed without opening (the run died), whether it had opened the pipe or not', () => {
    const r = inNode(`${runHook} const g = makeGate(); const p = run(g); await new Promise((r) => setTimeout(r, 300)); g.close(); console.log('code', await p); const h = makeGate(); h.close(); console.log('late', (await run(h)) !== 0);`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('code 1\nlate true\n');
  });

  it('the hook outlives a Ctrl-C (SIGINT to the process group) and still waits for the gate', () => {
    const spawnHook = `const run = (g) => { const c = cp.spawn(g.hook.path, g.hook.args.slice(1), { argv0: g.hook.args[0], stdio: 'ignore' }); return { c, code: new Promise((resolve) => c.once('exit', (code, sig) => resolve(sig ?? code))) }; };`;
    const r = inNode(`${spawnHook} const g = makeGate(); const h = run(g); await new Promise((r) => setTimeout(r, 300)); h.c.kill('SIGINT'); h.c.kill('SIGTERM'); await new Promise((r) => setTimeout(r, 200)); console.log('alive', h.c.exitCode === null && h.c.signalCode === null); g.open(); console.log('code', await h.code); g.close();`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('alive true\ncode 0\n');
  });

  it('is not made without koffi loaded, or with TSRUN_RUNC_GATE=0 (the run attaches first)', () => {
    expect(inNode(`console.log(makeGate() === undefined);`, { koffi: false }).stdout).toBe('true\n');
    expect(inNode(`console.log(makeGate() === undefined);`, { env: { TSRUN_RUNC_GATE: '0' } }).stdout).toBe('true\n');
  });
});
