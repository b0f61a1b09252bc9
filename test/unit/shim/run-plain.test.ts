// A foreground `tsrun run --net none` or `--net host` goes through the plain door
// (shim/run-door-plain.ts, bundled as run-plain.cjs), which carries no engine; everything else a
// run's door takes, and whatever the plain door hands back, goes through run.cjs's door. Each run
// here is a whole `tsrun run` through the entry with /bin/true standing in for runc, in a throwaway
// root: no network is touched.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPlainRun, parseRunArgs } from '../../../shim/run-args.js';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');
let dir: string;
let userBundle: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-run-plain-test-'));
  userBundle = path.join(dir, 'b');
  mkdirSync(path.join(userBundle, 'rootfs'), { recursive: true });
  writeFileSync(path.join(userBundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: 'rootfs' }, linux: { namespaces: [{ type: 'pid' }] } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `tsrun <args>` through the entry; which bundles it loaded (require.cache at exit). */
function tsrun(args: string[], root: string): { status: number | null; stderr: string; loaded: string[] } {
  const preload = path.join(dir, 'loaded.cjs');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeSync(3, JSON.stringify(Object.keys(require.cache).map((f) => require('node:path').basename(f)))));`);
  const r = spawnSync(process.execPath, ['-r', preload, path.join(BUNDLE, 'tsrun.cjs'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, TSRUN_ROOT: root, TSRUN_RUNC: '/bin/true' },
  });
  return { status: r.status, stderr: r.stderr, loaded: JSON.parse(String(r.output[3])) as string[] };
}

describe('the plain run door', () => {
  it("starts libuv's pool with one thread, and runc never sees the variable that asks for it", () => {
    // runc stood in for by a script that records its environment's UV_THREADPOOL_SIZE and how many
    // threads its parent, tsrun, has. A user's own UV_THREADPOOL_SIZE is left as it is (and passed on).
    const fake = path.join(dir, 'fake-runc.sh');
    const out = path.join(dir, 'fake-runc.out');
    writeFileSync(fake, `#!/bin/sh\necho "\${UV_THREADPOOL_SIZE-unset} $(ls /proc/$PPID/task | wc -l)" > ${out}\n`, { mode: 0o755 });
    const run = (extra: Record<string, string>) => {
      const r = spawnSync(process.execPath, [path.join(BUNDLE, 'tsrun.cjs'), 'run', '--net', 'none', userBundle], { encoding: 'utf8', env: { PATH: process.env.PATH, TSRUN_ROOT: path.join(dir, 'root-pool'), TSRUN_RUNC: fake, ...extra } });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const [env, threads] = readFileSync(out, 'utf8').trim().split(' ');
      return { env, threads: Number(threads) };
    };
    const one = run({});
    const four = run({ UV_THREADPOOL_SIZE: '4' });
    expect(one.env).toBe('unset');
    expect(four.env).toBe('4');
    // Three threads fewer where the warm-up started the pool (a host where it cannot move the
    // process starts no pool before runc at all).
    expect([0, 3]).toContain(four.threads - one.threads);
  });

  it.each([['none'], ['host'], [' none ']])('a foreground run with --net %j loads run-plain.cjs, not run.cjs, and leaves nothing', (net) => {
    const root = path.join(dir, `root-${net.trim()}`);
    const r = tsrun(['run', '--net', net, '-e', 'A=1', userBundle], root);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.loaded).toContain('run-plain.cjs');
    expect(r.loaded).not.toContain('run.cjs');
    // The entry guessed a plain run (its guess looks for a whole argument none or host): run-plain.cjs
    // carries the routing, no dispatcher loaded.
    if (net === net.trim()) expect(r.loaded).not.toContain('dispatch.cjs');
    expect(readdirSync(path.join(root, 'run', 'containers'))).toEqual([]);
    // host has no namespace of its own, so no users directory at all
    if (net !== 'host') expect(readdirSync(path.join(root, 'run', 'netns-users'))).toEqual([]);
  });

  it('hands a --name whose state directory exists to run.cjs, which refuses a live owner as before', () => {
    const root = path.join(dir, 'root-taken');
    const state = path.join(root, 'run', 'containers', 'taken');
    mkdirSync(state, { recursive: true });
    // This test's own process stands in for a live owner.
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
    writeFileSync(path.join(state, 'container.json'), JSON.stringify({ id: 'taken', ownerPid: process.pid, ownerStart: start, created: new Date().toISOString(), bundle: userBundle }));
    const r = tsrun(['run', '--name', 'taken', '--net', 'none', userBundle], root);
    expect(r.stderr).toBe('tsrun: container id taken is already in use\n');
    expect(r.status).toBe(125);
    expect(r.loaded).toEqual(expect.arrayContaining(['run-plain.cjs', 'run.cjs']));
  });

  it('reports bad input with one line and exit 125, as run.cjs does', () => {
    const r = tsrun(['run', '--net', 'none', '-p', '8080:80', userBundle], path.join(dir, 'root-bad'));
    expect(r.stderr).toBe('tsrun: -p needs a network: --net none has no interfaces to publish on\n');
    expect(r.status).toBe(125);
    expect(r.loaded).not.toContain('run.cjs');
  });

  // The entry loads run-plain.cjs alone (its routing, shim/dispatch.ts, in the same script) for a
  // command line it guesses is a plain run (scripts/bundle.mjs); the routing decides. A command line
  // with global options first is never guessed (dispatch.cjs routes it): both ways end the same.
  it.each([
    ['an unknown option', ['--bogus']],
    ['a mistyped option of the plain door', ['-p', '80:80']],
    ['a network named "none" is not --net none', ['--name', 'x', '--hostname', 'none', '--net', 'container:nothere']],
    ['help', ['--help']],
  ])('a command line guessed plain that is not (%s) ends as through the dispatcher', (_what, extra) => {
    const line = ['run', '--net', 'none', ...extra, path.join(dir, 'no-bundle')];
    const guessed = tsrun(line, path.join(dir, 'root-guess-a'));
    const routed = tsrun(['--log-level', 'info', ...line], path.join(dir, 'root-guess-b'));
    expect(guessed.loaded).toContain('run-plain.cjs');
    expect(guessed.loaded).not.toContain('dispatch.cjs');
    expect(routed.loaded).toContain('dispatch.cjs');
    expect(guessed.status).toBe(routed.status);
    expect(guessed.stderr.replaceAll('root-guess-a', 'root-guess-b')).toBe(routed.stderr);
  });

  it('carries no engine: no libnftables, no store, no attach', () => {
    const src = readFileSync(path.join(BUNDLE, 'run-plain.cjs'), 'utf8');
    for (const marker of ['nft_ctx_new', 'etcd3', 'attach to network']) {
      expect(readFileSync(path.join(BUNDLE, 'run.cjs'), 'utf8')).toContain(marker); // the marker is real
      expect(src).not.toContain(marker);
    }
  });
});

describe('which run door takes a command line', () => {
  const plain = (...args: string[]) => isPlainRun(parseRunArgs(args)!);
  it('--net none and host in the foreground are the plain door\'s', () => {
    expect(plain('run', '--net', 'none', 'b')).toBe(true);
    expect(plain('run', '--net=host', '-t', 'b', 'sh')).toBe(true);
  });
  it('a network (the default too), container:<id> and -d are run.cjs\'s', () => {
    expect(plain('run', 'b')).toBe(false);
    expect(plain('run', '--net', 'bridge', 'b')).toBe(false);
    expect(plain('run', '--net', 'container:x', 'b')).toBe(false);
    expect(plain('run', '-d', '--net', 'none', 'b')).toBe(false);
  });
});
