// The entry (dist/bundle/tsrun: a node script, no shell in front) and the front doors' start-up
// snapshots. By default the entry runs the plain bundle (the snapshot does not pay, and V8 refuses
// one built on another CPU with an exit status nothing can tell apart: docs/fast-path.md). With
// TSRUN_SNAPSHOT=1 it execs node again from the door's snapshot (a hook from the hook's, stdin
// read, the CLI from the CLI's, stdout written); with the snapshot missing, or older than the node
// binary (an upgraded Node would refuse it), it runs the plain bundle instead; a symlink to the
// entry (npm's bin link) finds its bundle and the snapshots from any directory; TSRUN_NO_SNAPSHOT=1
// wins; `sh tsrun` (hooks registered through the old sh launcher) still runs it; a node that is gone
// is one line from the shell. Every other integration test runs tsrun through the entry, i.e. from
// the plain bundle.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Netns } from '../harness/sandbox.js';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');

describe('the entry and start-up snapshots', () => {
  let tmp: string;
  let copy: string;
  // Every tsrun here runs in a namespace of the test's own: a CLI command self-checks the firewall
  // of the namespace it runs in, and the machine's own is never the test's to touch.
  let ns: Netns;
  beforeAll(async () => {
    ns = await Netns.create('snap');
    tmp = mkdtempSync(path.join(os.tmpdir(), 'tsrun-snapshot-'));
    // A copy beside dist/bundle (so node_modules still resolves), to age and remove snapshots in.
    copy = mkdtempSync(path.join(process.cwd(), 'dist', 'bundle-snaptest-'));
    cpSync(BUNDLE, copy, { recursive: true });
  });
  afterAll(() => {
    ns?.destroy();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(copy, { recursive: true, force: true });
  });

  /** Runs `<entry> hook poststart` for a --net none container; returns the exit code and how the
   * process started, from its "hook done" log line. `cmd` runs the entry some other way (sh). */
  const hook = (entry: string, name: string, env: Record<string, string> = { TSRUN_SNAPSHOT: '1' }, cmd?: string) => {
    const root = path.join(tmp, name);
    const state = { ociVersion: '1.0.2', id: `snap-${name}`, status: 'created', pid: 1, bundle: tmp, annotations: { 'io.tsrun.network': 'none' } };
    const r = ns.exec(cmd ?? entry, [...(cmd === undefined ? [] : [entry]), 'hook', 'poststart'], { input: JSON.stringify(state), env: { PATH: process.env.PATH, TSRUN_ROOT: root, ...env } });
    const log = path.join(root, 'log', 'tsrun.log');
    const done = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"hook done"')).map((l) => JSON.parse(l) as { startedFrom?: string }) : [];
    return { status: r.status, stderr: r.stderr, startedFrom: done.at(-1)?.startedFrom };
  };

  it('builds one snapshot per front door', () => {
    expect(existsSync(path.join(BUNDLE, 'hook.snapshot.blob'))).toBe(true);
    expect(existsSync(path.join(BUNDLE, 'cli.snapshot.blob'))).toBe(true);
  });

  it('runs the plain bundle by default', () => {
    expect(hook(path.join(BUNDLE, 'tsrun'), 'default', {})).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
  });

  it('starts the hook from its snapshot with TSRUN_SNAPSHOT=1', () => {
    expect(hook(path.join(BUNDLE, 'tsrun'), 'snap')).toEqual({ status: 0, stderr: '', startedFrom: 'snapshot' });
  });

  it('runs the CLI from its snapshot with TSRUN_SNAPSHOT=1', () => {
    const r = ns.exec(path.join(BUNDLE, 'tsrun'), ['network', 'ls'], { env: { PATH: process.env.PATH, TSRUN_ROOT: path.join(tmp, 'cli'), TSRUN_SNAPSHOT: '1' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+DRIVER/);
    // A read-only command on a host with no networks leaves the firewall alone: no tsrun table.
    expect(ns.sh('nft list tables')).not.toMatch(/tsrun/);
  });

  it('finds the snapshots through a symlink, as npm links the bin', () => {
    const link = path.join(tmp, 'tsrun');
    symlinkSync(path.join(BUNDLE, 'tsrun'), link);
    expect(hook(link, 'link')).toEqual({ status: 0, stderr: '', startedFrom: 'snapshot' });
  });

  it('falls back to the plain bundle when the snapshot is older than node, or missing', () => {
    const blob = path.join(copy, 'hook.snapshot.blob');
    utimesSync(blob, new Date(0), new Date(0));
    expect(hook(path.join(copy, 'tsrun'), 'old')).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
    rmSync(blob);
    expect(hook(path.join(copy, 'tsrun'), 'gone')).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
  });

  it('runs the plain bundle when TSRUN_NO_SNAPSHOT is set, even with TSRUN_SNAPSHOT=1', () => {
    expect(hook(path.join(BUNDLE, 'tsrun'), 'off', { TSRUN_SNAPSHOT: '1', TSRUN_NO_SNAPSHOT: '1' })).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
  });

  it('is a node script that names its node absolutely, loaded as CommonJS beside the bundle', () => {
    const [first] = readFileSync(path.join(BUNDLE, 'tsrun'), 'utf8').split('\n');
    // `--`: node reads none of tsrun's arguments as its own (`--env-file FILE`; shim/entry.ts).
    expect(first).toBe(`#!${realpathSync(process.execPath)} --`);
    expect(JSON.parse(readFileSync(path.join(BUNDLE, 'package.json'), 'utf8'))).toEqual({ type: 'commonjs' });
  });

  it('runs through a symlink from another directory, and names tsrun.cjs as its entry script', () => {
    const bin = path.join(tmp, 'bin');
    mkdirSync(bin);
    symlinkSync(path.join(BUNDLE, 'tsrun'), path.join(bin, 'tsrun'));
    const elsewhere = mkdtempSync(path.join(tmp, 'cwd-'));
    const env = { PATH: `${bin}:${process.env.PATH}`, TSRUN_ROOT: path.join(tmp, 'install') };
    // `tsrun` found on PATH, run from a directory with nothing of tsrun's in it.
    const v = ns.exec('tsrun', ['--version'], { env, cwd: elsewhere });
    expect({ status: v.status, stderr: v.stderr }).toEqual({ status: 0, stderr: '' });
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // A hook registration records the script node runs (process.argv[1]): tsrun.cjs, as the
    // launcher's `exec node tsrun.cjs` gave, never the link.
    const hooks = path.join(tmp, 'hooks.d');
    const r = ns.exec('tsrun', ['hook', 'install', '--hooks-dir', hooks], { env, cwd: elsewhere });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const files = readdirSync(hooks);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const h = JSON.parse(readFileSync(path.join(hooks, f), 'utf8')) as { hook: { path: string; args: string[] } };
      expect(h.hook.args.slice(0, 2)).toEqual([realpathSync(process.execPath), path.join(realpathSync(BUNDLE), 'tsrun.cjs')]);
    }
    // A plain run from the plain bundle through the link, too.
    expect(hook(path.join(bin, 'tsrun'), 'link-plain', {})).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
  });

  it('still runs as a shell script (hooks registered through the old sh launcher)', () => {
    expect(hook(path.join(BUNDLE, 'tsrun'), 'sh', {}, '/bin/sh')).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
    expect(hook(path.join(BUNDLE, 'tsrun'), 'sh-snap', { TSRUN_SNAPSHOT: '1' }, '/bin/sh')).toEqual({ status: 0, stderr: '', startedFrom: 'snapshot' });
  });

  it('runs the dispatcher without its code cache when the cache is stale or missing', () => {
    // The cache's header names dispatch.cjs's size and mtime: a touched dispatch.cjs makes it stale.
    const dispatcher = path.join(copy, 'dispatch.cjs');
    const now = new Date();
    utimesSync(dispatcher, now, now);
    expect(hook(path.join(copy, 'tsrun'), 'stale-cache', {})).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
    rmSync(`${dispatcher}.v8cache`);
    expect(hook(path.join(copy, 'tsrun'), 'no-cache', {})).toEqual({ status: 0, stderr: '', startedFrom: 'bundle' });
  });

  it('runs a guessed plain run from run-plain.cjs without its code cache when the cache is stale or missing', () => {
    // The entry loads run-plain.cjs itself for what it guesses is a plain run (scripts/bundle.mjs),
    // with the same header check: a stale or missing cache means a plain require, and its start().
    const userBundle = path.join(tmp, 'plain-bundle');
    mkdirSync(path.join(userBundle, 'rootfs'), { recursive: true });
    writeFileSync(path.join(userBundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['true'], cwd: '/' }, root: { path: 'rootfs' }, linux: { namespaces: [{ type: 'pid' }] } }));
    const run = (name: string) => {
      const r = ns.exec(path.join(copy, 'tsrun'), ['run', '--net', 'none', userBundle], { env: { PATH: process.env.PATH, TSRUN_ROOT: path.join(tmp, `root-${name}`), TSRUN_RUNC: '/bin/true' } });
      return { status: r.status, stderr: r.stderr };
    };
    const door = path.join(copy, 'run-plain.cjs');
    const now = new Date();
    utimesSync(door, now, now);
    expect(run('plain-stale')).toEqual({ status: 0, stderr: '' });
    rmSync(`${door}.v8cache`);
    expect(run('plain-no-cache')).toEqual({ status: 0, stderr: '' });
  });

  it('fails with one line from the shell when its node is gone', () => {
    const moved = path.join(copy, 'tsrun-moved');
    const [, ...lines] = readFileSync(path.join(copy, 'tsrun'), 'utf8').split('\n');
    writeFileSync(moved, [`#!${path.join(tmp, 'no-such-node')}`, ...lines].join('\n'), { mode: 0o755 });
    const r = spawnSync('bash', ['-c', `${moved} --version`], { encoding: 'utf8' });
    // bash 5.2: "<entry>: cannot execute: required file not found", 127 (older: "<entry>:
    // <node>: bad interpreter: No such file or directory", 126)
    expect([126, 127]).toContain(r.status);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringContaining(moved)]);
  });
});
