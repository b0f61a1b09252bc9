// hookMain in-process, on the paths that touch no network namespace: stages that are only
// accepted, poststop with nothing recorded, none/host annotations, and every input failure.
// (Wiring through the engine is tested with real runtimes in test/integration/hook/.)
import { afterAll, describe, expect, it } from '@jest/globals';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hookMain } from '../../../hook/main.js';
import { recordings } from './fixtures.js';

const base = mkdtempSync(path.join(os.tmpdir(), 'tsrun-hookmain-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** Runs the hook with `input` on its stdin and a fresh state root; returns code, stderr, log. */
export async function runHook(stage: string, input: string, opts: { readBundle?: (b: string) => Record<string, string> } = {}) {
  const root = path.join(base, `root${++n}`);
  const inFile = path.join(base, `stdin${n}`);
  writeFileSync(inFile, input);
  const fd = openSync(inFile, 'r');
  const err: string[] = [];
  try {
    const code = await hookMain(stage, {
      stdinFd: fd,
      env: { TSRUN_ROOT: root },
      writeErr: (l) => void err.push(l),
      readBundleAnnotations: opts.readBundle ?? (() => ({})),
    });
    const logFile = path.join(root, 'log', 'tsrun.log');
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) : [];
    return { code, stderr: err.join(''), log, root };
  } finally {
    closeSync(fd);
  }
}

const state = (extra: Record<string, unknown> = {}) => JSON.stringify({ ociVersion: '1.0.2', id: 'c1', status: 'creating', bundle: '/nonexistent/bundle', ...extra });

describe('stages that are only accepted', () => {
  const accepted = recordings().filter((r) => ['createContainer', 'startContainer', 'poststart'].includes(r.stage));
  it.each(accepted.map((r) => [r.file, r] as const))('%s: exit 0, silent, logged', async (_f, r) => {
    const res = await runHook(r.stage, r.text);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const done = res.log.find((l) => l.msg === 'hook done')!;
    expect(done).toMatchObject({ containerId: r.state.id, stage: r.stage, result: 'accepted' });
    expect(done.startupMs).toEqual(expect.any(Number));
    expect(done.loadMs).toEqual(expect.any(Number));
    expect(done.workMs).toEqual(expect.any(Number));
    // Nothing but the log was written.
    expect(readdirSync(res.root)).toEqual(['log']);
  });
});

describe('every log line carries the container id, the stage and the time', () => {
  it('on success and on failure', async () => {
    for (const res of [await runHook('poststart', state({ pid: 5 })), await runHook('createRuntime', state())]) {
      expect(res.log.length).toBeGreaterThan(0);
      for (const line of res.log) {
        expect(line.containerId).toBe('c1');
        expect(line.stage).toEqual(expect.any(String));
        expect(line.elapsedMs).toEqual(expect.any(Number));
      }
    }
  });
});

describe('poststop', () => {
  it('for a container tsrun never wired: exit 0, nothing written but the log', async () => {
    for (const r of recordings().filter((x) => x.stage === 'poststop')) {
      const res = await runHook('poststop', r.text);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.log.at(-1)).toMatchObject({ result: 'nothing-to-do', containerId: r.state.id });
      expect(readdirSync(res.root)).toEqual(['log']);
    }
  });
});

describe('setup stages that leave the namespace alone', () => {
  it.each(['none', 'host'])('io.tsrun.network=%s', async (mode) => {
    const res = await runHook('createRuntime', state({ pid: 999_999, annotations: { 'io.tsrun.network': mode } }));
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.log.at(-1)).toMatchObject({ result: 'left-alone', detail: { network: mode } });
  });

  it('a container sharing the runtime\'s namespace, with no tsrun annotation (host networking)', async () => {
    const res = await runHook('prestart', state({ pid: process.pid }));
    expect(res.code).toBe(0);
    expect(res.log.at(-1)).toMatchObject({ result: 'left-alone', detail: { network: 'host' } });
  });

  it('the annotation falls back to the bundle\'s config.json', async () => {
    const res = await runHook('createRuntime', state({ pid: 999_999 }), { readBundle: () => ({ 'io.tsrun.network': 'none' }) });
    expect(res.code).toBe(0);
    expect(res.log.at(-1)).toMatchObject({ result: 'left-alone', detail: { network: 'none' } });
  });
});

describe('failures: one line on stderr, exit 1', () => {
  const cases: [string, string, string, RegExp][] = [
    ['an unknown stage', 'boot', state(), /^tsrun: hook boot: unknown hook stage "boot": use one of /],
    ['a hostile stage name', '../x\n', state(), /^tsrun: hook "\.\.\/x\\n": unknown hook stage/],
    ['no input', 'createRuntime', '', /^tsrun: hook createRuntime: no state JSON on stdin/],
    ['bad JSON', 'createRuntime', '{"id":', /^tsrun: hook createRuntime: state JSON on stdin is not valid JSON: /],
    ['a path-like id', 'poststop', state({ id: '../../etc' }), /^tsrun: hook poststop: state JSON on stdin: id: invalid container id "\.\.\/\.\.\/etc"/],
    ['no pid at setup', 'createRuntime', state(), /^tsrun: hook createRuntime: the state has no pid: createRuntime needs the container's process to find its network namespace$/],
    ['a pid that no longer exists', 'prestart', state({ pid: 4_000_000 }), /^tsrun: hook prestart: process 4000000 of container c1 no longer exists$/],
    ['a bad annotation', 'createRuntime', state({ pid: 4_000_000, annotations: { 'io.tsrun.ports': '1:2:3:4' } }), /^tsrun: hook createRuntime: annotation io\.tsrun\.ports="1:2:3:4": invalid mapping/],
    ['a network for a host-network container', 'createRuntime', state({ pid: process.pid, annotations: { 'io.tsrun.network': 'web' } }), /^tsrun: hook createRuntime: container c1 has no network namespace of its own \(it shares the runtime's\), so io\.tsrun\.network=web cannot be wired/],
  ];

  it.each(cases)('%s', async (_what, stage, input, message) => {
    const res = await runHook(stage, input);
    expect(res.code).toBe(1);
    expect(res.stderr.endsWith('\n')).toBe(true);
    expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(res.stderr.trimEnd()).toMatch(message);
    const failed = res.log.find((l) => l.msg === 'hook failed');
    expect(failed).toMatchObject({ exitCode: 1 });
    expect(readdirSync(res.root)).toEqual(['log']);
  });

  it('the log keeps the details of the failure', async () => {
    const res = await runHook('createRuntime', '{"id":');
    const failed = res.log.find((l) => l.msg === 'hook failed') as { err: { message: string; stack: string }; containerId: unknown };
    expect(failed.containerId).toBeNull();
    expect(failed.err.message).toMatch(/not valid JSON/);
    expect(failed.err.stack).toContain('parseState');
  });
});
