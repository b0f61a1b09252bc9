// This host's lock as record locks (runtime/host-lock.ts), taken by real processes on one file:
// attaches (shared) never wait for each other, gc (exclusive) waits for them and they wait for
// it, a writer that waits is not overtaken by new readers, and a holder killed with SIGKILL lets
// go at once (the kernel drops its locks: there is no stale holder to break). No namespaces, no
// root: only a file under /tmp.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { FileLock } from '../../runtime/host-lock.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HOLDER = fileURLToPath(new URL('./fixtures/host-lock-holder.js', import.meta.url));

interface Holder {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: () => string;
  /** Resolves once a line starting with `prefix` has been printed. */
  said(prefix: string): Promise<string>;
  exit: Promise<number | null>;
}

let dir: string;
let file: string;
const started: Holder[] = [];

beforeEach(() => {
  dir = mkdtempSync('/tmp/tsrun-hostlock-');
  file = path.join(dir, 'locks', 'host.lock');
});

afterEach(() => {
  for (const h of started.splice(0)) h.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function hold(mode: 'shared' | 'exclusive', timeoutMs = 20_000, impl: 'file' | 'keyed' | 'host' = 'file'): Holder {
  const child = spawn(process.execPath, [HOLDER, file, mode, String(timeoutMs), impl], { stdio: 'pipe' });
  const lines: string[] = [];
  let err = '';
  let waiters: { prefix: string; resolve: (l: string) => void }[] = [];
  let buffered = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      lines.push(line);
      waiters = waiters.filter((w) => (line.startsWith(w.prefix) ? (w.resolve(line), false) : true));
    }
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const h: Holder = {
    child,
    lines,
    stderr: () => err,
    said: (prefix) => {
      const seen = lines.find((l) => l.startsWith(prefix));
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ prefix, resolve }));
    },
    exit,
  };
  started.push(h);
  return h;
}

const release = async (h: Holder) => {
  h.child.stdin.write('release\n');
  await h.said('released');
  expect(await h.exit).toBe(0);
};

describe('the host lock as record locks, between processes', () => {
  it('shared holders do not wait for each other', async () => {
    const a = hold('shared');
    const b = hold('shared');
    await Promise.all([a.said('held'), b.said('held')]);
    expect([...a.lines, ...b.lines]).toEqual(['held', 'held']);
    await release(a);
    await release(b);
  });

  it('gc (exclusive) waits for attaches, and attaches started meanwhile wait for gc', async () => {
    const attach = hold('shared');
    await attach.said('held');
    const gc = hold('exclusive');
    expect(await gc.said('waiting')).toBe(`waiting process ${attach.child.pid}`);
    const late = hold('shared');
    expect(await late.said('waiting')).toBe(`waiting process ${gc.child.pid}`); // behind the writer
    await release(attach);
    await gc.said('held');
    expect(late.lines).toEqual([`waiting process ${gc.child.pid}`]);
    await release(gc);
    await late.said('held');
    await release(late);
  });

  it('a holder killed with SIGKILL releases the lock at once', async () => {
    const gc = hold('exclusive');
    await gc.said('held');
    const attach = hold('shared');
    await attach.said('waiting');
    gc.child.kill('SIGKILL');
    await gc.exit;
    await attach.said('held');
    // and a SIGKILLed reader too
    const gc2 = hold('exclusive');
    await gc2.said('waiting');
    attach.child.kill('SIGKILL');
    await gc2.said('held');
    await release(gc2);
  });

  it('a wait that outlasts its timeout fails with one line naming the holder', async () => {
    const attach = hold('shared');
    await attach.said('held');
    const gc = hold('exclusive', 300);
    expect(await gc.exit).toBe(1);
    expect(gc.stderr()).toBe(`timed out waiting for the host lock (held by process ${attach.child.pid})\n`);
    // It gave the gate back: a new reader gets in at once.
    const other = hold('shared');
    await other.said('held');
    expect(other.lines).toEqual(['held']);
    await release(other);
    await release(attach);
  });

  it('one process naming the file by two paths holds one lock: releasing through one name never drops what the other holds', async () => {
    // Record locks belong to the process and the file: a second descriptor (the file opened again
    // by another name: a symlinked run directory) shares them, so an exclusive acquisition and
    // release through it would unlock the shared hold taken through the first name.
    mkdirSync(path.dirname(file), { recursive: true });
    const alias = path.join(dir, 'alias');
    symlinkSync(path.dirname(file), alias);
    const attach = await new FileLock(file, 'host').shared();
    const inner = await new FileLock(path.join(alias, 'host.lock'), 'host').exclusive();
    await inner();
    // Another process must still find the attach's shared hold.
    const gc = hold('exclusive', 500);
    expect(await Promise.race([gc.said('held'), gc.exit.then(() => 'gave up')])).toBe('gave up');
    expect(await gc.exit).toBe(1);
    expect(gc.stderr()).toBe(`timed out waiting for the host lock (held by process ${process.pid})\n`);
    await attach();
    const gc2 = hold('exclusive');
    await gc2.said('held');
    await release(gc2);
  });
});

describe('during an upgrade: an older tsrun holds the host lock as Store keys in the same directory', () => {
  it('a new gc (exclusive) waits for an old attach or detach, and an old one waits for the new gc', async () => {
    const oldDetach = hold('shared', 20_000, 'keyed');
    await oldDetach.said('held');
    const gc = hold('exclusive', 20_000, 'host');
    expect(await gc.said('waiting')).toMatch(/^waiting /);
    expect(gc.lines.filter((l) => l === 'held')).toEqual([]);
    await release(oldDetach);
    await gc.said('held');
    const oldAttach = hold('shared', 20_000, 'keyed');
    await oldAttach.said('waiting');
    await release(gc);
    await oldAttach.said('held');
    await release(oldAttach);
  });

  it('new gc and an old gc exclude each other; new attaches still take no key', async () => {
    const oldGc = hold('exclusive', 20_000, 'keyed');
    await oldGc.said('held');
    const gc = hold('exclusive', 20_000, 'host');
    await gc.said('waiting');
    await release(oldGc);
    await gc.said('held');
    await release(gc);
    const attach = hold('shared', 20_000, 'host');
    await attach.said('held');
    await release(attach);
    // Nothing keyed but the directories and the anchor an older tsrun made.
    const keyed = (readdirSync(path.join(dir, 'locks'), { recursive: true }) as string[]).filter((n) => n !== 'host.lock' && !n.includes('anchor'));
    expect(keyed.filter((n) => /shared./.test(n))).toEqual([]);
  });

  it('without an older tsrun\'s directory, a new gc creates none', async () => {
    const gc = hold('exclusive', 20_000, 'host');
    await gc.said('held');
    await release(gc);
    expect(readdirSync(path.join(dir, 'locks'))).toEqual(['host.lock']);
  });
});
