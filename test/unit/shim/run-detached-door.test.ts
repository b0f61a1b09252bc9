// `tsrun run -d --net none` or `--net host` goes through the plain detached door
// (shim/lifecycle/run-detached-door.ts, bundled as run-detached.cjs), which carries no engine;
// whatever it hands back goes through run.cjs's door. The runs here stop before runc (bad input,
// a name in use), through the entry, in a throwaway root; the whole run -d through this door is
// test/integration/detached*.test.ts's (real conmon and runc).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPlainDetachedRun, isPlainRun, parseRunArgs } from '../../../shim/run-args.js';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');
let dir: string;
let userBundle: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-run-detached-test-'));
  userBundle = path.join(dir, 'b');
  mkdirSync(path.join(userBundle, 'rootfs'), { recursive: true });
  writeFileSync(path.join(userBundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: 'rootfs' }, linux: { namespaces: [{ type: 'pid' }] } }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `tsrun <args>` through the entry; which bundles it loaded (require.cache at exit). */
function tsrun(args: string[], root: string): { status: number | null; stdout: string; stderr: string; loaded: string[] } {
  const preload = path.join(dir, 'loaded.cjs');
  writeFileSync(preload, `process.on('exit', () => require('node:fs').writeSync(3, JSON.stringify(Object.keys(require.cache).map((f) => require('node:path').basename(f)))));`);
  const r = spawnSync(process.execPath, ['-r', preload, path.join(BUNDLE, 'tsrun.cjs'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, TSRUN_ROOT: root, TSRUN_RUNC: '/bin/false' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, loaded: JSON.parse(String(r.output[3])) as string[] };
}

describe('the plain detached door', () => {
  it.each([
    [['--net', 'none', '-p', '8080:80'], 'tsrun: -p needs a network: --net none has no interfaces to publish on\n'],
    [['--net', 'host', '-p', '8080:80'], 'tsrun: -p is not needed with --net host: the container uses the host ports directly\n'],
    [['--net', 'none', '--log-max-size', 'lots'], expect.stringMatching(/^tsrun: [^\n]*--log-max-size[^\n]*\n$/)],
  ])('reports bad input (%j) in one line, exit 125, from run-detached.cjs, and leaves nothing', (flags, message) => {
    const root = path.join(dir, `root-bad-${flags.join('')}`);
    const r = tsrun(['run', '-d', ...flags, userBundle], root);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 125, stdout: '', stderr: message });
    expect(r.loaded).toContain('run-detached.cjs');
    expect(r.loaded).not.toContain('run.cjs');
    const containers = path.join(root, 'run', 'containers');
    if (existsSync(containers)) expect(readdirSync(containers)).toEqual([]);
    const users = path.join(root, 'run', 'netns-users');
    if (existsSync(users)) expect(readdirSync(users)).toEqual([]);
  });

  it.each([['none'], ['host']])('hands a --name whose state directory exists (--net %s) to run.cjs, which refuses a live owner as before', (net) => {
    const root = path.join(dir, `root-taken-${net}`);
    const state = path.join(root, 'run', 'containers', 'taken');
    mkdirSync(state, { recursive: true });
    // This test's own process stands in for a live owner.
    const start = readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
    writeFileSync(path.join(state, 'container.json'), JSON.stringify({ id: 'taken', ownerPid: process.pid, ownerStart: start, created: new Date().toISOString(), bundle: userBundle }));
    const r = tsrun(['run', '-d', '--name', 'taken', '--net', net, userBundle], root);
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 125, stdout: '', stderr: 'tsrun: container id taken is already in use\n' });
    expect(r.loaded).toEqual(expect.arrayContaining(['run-detached.cjs', 'run.cjs']));
    expect(readdirSync(path.join(root, 'run', 'containers'))).toEqual(['taken']);
  });

  it('carries no engine: no libnftables, no store, no attach, no commander', () => {
    const src = readFileSync(path.join(BUNDLE, 'run-detached.cjs'), 'utf8');
    for (const marker of ['nft_ctx_new', 'etcd3', 'attach to network']) {
      expect(readFileSync(path.join(BUNDLE, 'run.cjs'), 'utf8')).toContain(marker); // the marker is real
      expect(src).not.toContain(marker);
    }
    expect(readFileSync(path.join(BUNDLE, 'cli.cjs'), 'utf8')).toContain('commander');
    expect(src).not.toContain('commander');
  });
});

describe('which door takes a run -d', () => {
  const detached = (...args: string[]) => isPlainDetachedRun(parseRunArgs(args)!);
  it('-d with --net none or host is the plain detached door\'s', () => {
    expect(detached('run', '-d', '--net', 'none', 'b')).toBe(true);
    expect(detached('run', '--detach', '--net=host', '-t', 'b', 'sh')).toBe(true);
    expect(detached('run', '-d', '--net', ' none ', '--log-max-size', '1m', 'b')).toBe(true);
  });
  it('a network (the default too), container:<id> and the foreground are not', () => {
    expect(detached('run', '-d', 'b')).toBe(false);
    expect(detached('run', '-d', '--net', 'bridge', 'b')).toBe(false);
    expect(detached('run', '-d', '--net', 'container:x', 'b')).toBe(false);
    expect(detached('run', '--net', 'none', 'b')).toBe(false);
  });
  it('never takes what the plain foreground door takes', () => {
    for (const args of [['run', '--net', 'none', 'b'], ['run', '-d', '--net', 'none', 'b'], ['run', '--net', 'host', 'b'], ['run', '-d', '--net', 'host', 'b']]) {
      const a = parseRunArgs(args)!;
      expect(isPlainRun(a) && isPlainDetachedRun(a)).toBe(false);
    }
  });
});
