// The shell front of tsrun-runc (runc/tsrun-runc.sh, built to dist/bundle/tsrun-runc) decides,
// without Node, what goes straight to runc. A fake runc and a fake node record what they were
// given, so each case shows which side a command reached, with its words unchanged.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FRONT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../runc/tsrun-runc.sh');
let dir: string;

function front(args: string[], env: NodeJS.ProcessEnv = {}): { side: string; args: string[] } {
  const r = spawnSync('sh', [FRONT, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { PATH: '/usr/bin:/bin', TSRUN_ROOT: path.join(dir, 'root'), TSRUN_RUNC: path.join(dir, 'fake-runc'), TSRUN_NODE: path.join(dir, 'fake-node'), ...env },
  });
  const [side, ...rest] = r.stdout.trim().split('\n');
  return { side: side ?? r.stderr, args: rest };
}

describe('tsrun-runc shell front', () => {
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-front-'));
    writeFileSync(path.join(dir, 'fake-runc'), '#!/bin/sh\necho runc; for a do echo "$a"; done\n', { mode: 0o755 });
    // node gets the entry path first, then the arguments
    writeFileSync(path.join(dir, 'fake-node'), '#!/bin/sh\necho node; shift; for a do echo "$a"; done\n', { mode: 0o755 });
    mkdirSync(path.join(dir, 'plain'));
    writeFileSync(path.join(dir, 'plain', 'config.json'), '{"ociVersion":"1.0.2","annotations":{"org.example":"x"}}');
    mkdirSync(path.join(dir, 'tsrun'));
    writeFileSync(path.join(dir, 'tsrun', 'config.json'), '{"ociVersion":"1.0.2","annotations":{"io.tsrun.network":"web"}}');
    mkdirSync(path.join(dir, 'root', 'run', 'runc-net'), { recursive: true });
    writeFileSync(path.join(dir, 'root', 'run', 'runc-net', 'wired.json'), '{}');
    for (const root of ['/r', '/run/runc']) {
      mkdirSync(path.join(dir, 'root', 'run', 'runc-net', `by-root${root}`), { recursive: true });
      writeFileSync(path.join(dir, 'root', 'run', 'runc-net', `by-root${root}`, 'keyed.json'), '{}');
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('commands tsrun has no part in go to runc, words unchanged', () => {
    for (const args of [
      ['--root', '/r', 'start', 'x'],
      ['--root=/r', '--log', '/l', 'state', 'x'],
      ['kill', '--all', 'x', 'KILL'],
      ['exec', '--process', '/p', '-d', 'x'],
      ['--systemd-cgroup', 'ps', '--format', 'json', 'x'],
    ]) {
      expect(front(args)).toEqual({ side: 'runc', args });
    }
  });

  it('create/run of a bundle without io.tsrun. go to runc; with it, to Node', () => {
    const plain = ['--root', '/r', '--log-format', 'json', 'create', '--bundle', path.join(dir, 'plain'), '--pid-file', '/p', 'x'];
    expect(front(plain)).toEqual({ side: 'runc', args: plain });
    expect(front(['create', `--bundle=${path.join(dir, 'plain')}`, 'x']).side).toBe('runc');
    expect(front(['run', '-b', path.join(dir, 'plain'), 'x']).side).toBe('runc');
    const wired = ['--root', '/r', 'create', '-b', path.join(dir, 'tsrun'), '--console-socket', '/s', 'x'];
    expect(front(wired)).toEqual({ side: 'node', args: wired });
    // no --bundle: the current directory, as for runc
    expect(front(['create', 'x']).side).toBe('runc');
  });

  it('delete goes to Node only for a container tsrun-runc wired', () => {
    expect(front(['--root', '/r', 'delete', '--force', 'wired'])).toEqual({ side: 'node', args: ['--root', '/r', 'delete', '--force', 'wired'] });
    expect(front(['delete', '-f', 'other']).side).toBe('runc');
    expect(front(['delete', '../wired']).side).toBe('runc');
  });

  it("delete: markers are keyed by runc's root, so another engine's container of the same id goes to runc", () => {
    for (const args of [['--root', '/r', 'delete', 'keyed'], ['--root=/r', 'delete', '-f', 'keyed'], ['-root', '/r', 'delete', 'keyed'], ['delete', 'keyed']]) {
      expect(front(args)).toEqual({ side: 'node', args });
    }
    for (const args of [['--root', '/other', 'delete', '--force', 'keyed'], ['--root', '/r/sub', 'delete', 'keyed'], ['--root=/', 'delete', 'keyed']]) {
      expect(front(args)).toEqual({ side: 'runc', args });
    }
    // No --root with XDG_RUNTIME_DIR set (a login shell's, root's runc ignores it): runc unless a
    // marker is under either default root; Node tells which applies (the euid).
    expect(front(['delete', 'other'], { XDG_RUNTIME_DIR: '/run/user/0' }).side).toBe('runc');
    expect(front(['delete', 'keyed'], { XDG_RUNTIME_DIR: '/run/user/0' }).side).toBe('node');
    mkdirSync(path.join(dir, 'root', 'run', 'runc-net', 'by-root/run/user/1000/runc'), { recursive: true });
    writeFileSync(path.join(dir, 'root', 'run', 'runc-net', 'by-root/run/user/1000/runc', 'mine.json'), '{}');
    expect(front(['delete', 'mine'], { XDG_RUNTIME_DIR: '/run/user/1000' }).side).toBe('node');
    expect(front(['delete', 'mine'], { XDG_RUNTIME_DIR: '/run/user/1000/' }).side).toBe('node');
    expect(front(['delete', 'mine']).side).toBe('runc');
    // roots the front cannot normalise without a process: Node decides
    for (const root of ['/r/', 'r', '/x/../r', '/./r', '//r']) expect(front(['--root', root, 'delete', 'keyed']).side).toBe('node');
  });

  it('--version and unparseable input go to Node', () => {
    expect(front(['--version']).side).toBe('node');
    expect(front(['-v']).side).toBe('node');
    expect(front([]).side).toBe('node');
  });
});
