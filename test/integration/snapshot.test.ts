// The launcher (dist/bundle/tsrun) and the front doors' start-up snapshots. By default the launcher
// runs the plain bundle (the snapshot does not pay, and V8 refuses one built on another CPU with an
// exit status no launcher can tell apart: docs/fast-path.md). With TSRUN_SNAPSHOT=1 a hook runs from
// the hook's snapshot; with the snapshot missing, or older than the node binary (an upgraded Node
// would refuse it), the launcher runs the plain bundle instead; a symlink to the launcher (npm's
// bin link) finds the snapshot too; TSRUN_NO_SNAPSHOT=1 wins. Every other integration test runs
// tsrun through the launcher, i.e. from the plain bundle.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Netns } from '../harness/sandbox.js';

const BUNDLE = path.join(process.cwd(), 'dist', 'bundle');

describe('launcher and start-up snapshots', () => {
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

  /** Runs `<launcher> hook poststart` for a --net none container; returns the exit code and how
   * the process started, from its "hook done" log line. */
  const hook = (launcher: string, name: string, env: Record<string, string> = { TSRUN_SNAPSHOT: '1' }) => {
    const root = path.join(tmp, name);
    const state = { ociVersion: '1.0.2', id: `snap-${name}`, status: 'created', pid: 1, bundle: tmp, annotations: { 'io.tsrun.network': 'none' } };
    const r = ns.exec(launcher, ['hook', 'poststart'], { input: JSON.stringify(state), env: { PATH: process.env.PATH, TSRUN_ROOT: root, ...env } });
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
});
