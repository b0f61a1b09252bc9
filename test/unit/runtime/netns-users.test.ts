// The users of a shared network namespace (--net container:<id>): who tears the owner's endpoint
// down, and that exactly one does. Real files in a temporary run directory, real pids: this
// process is a live user; a child that has exited is a dead one.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConflictError } from '../../../config/errors.js';
import {
  finishTeardown, isLiveUser, leave, liveUsers, registerJoiner, registerOwner, rootOf, sweepDeadUsers, usersDir,
} from '../../../runtime/netns-users.js';

let runDir: string;
const me = process.pid;
/** A pid that existed and is gone. */
const deadPid = (): number => Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
/** What a user whose process died leaves: its entry, naming a dead process. */
const die = (root: string, id: string, file = id): void => writeFileSync(path.join(usersDir(runDir, root), file), JSON.stringify({ pid: deadPid(), start: '1' }));

beforeEach(() => {
  runDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-users-'));
});
afterEach(() => rmSync(runDir, { recursive: true, force: true }));

describe('owner alone', () => {
  it('the owner leaving last tears down, once; a none owner has nothing wired', async () => {
    expect(await registerOwner(runDir, 'a', me, { wired: true })).toEqual({ reclaimed: false });
    expect(rootOf(runDir, 'a')).toBe('a');
    expect(isLiveUser(runDir, 'a', 'a')).toBe(true);
    expect(leave(runDir, 'a', 'a')).toEqual({ teardown: true, wired: true });
    // A second leave (a retried teardown) does not tear down again while the first holds it.
    expect(leave(runDir, 'a', 'a')).toEqual({ teardown: false, wired: false });
    finishTeardown(runDir, 'a');
    expect(existsSync(usersDir(runDir, 'a'))).toBe(false);

    await registerOwner(runDir, 'n', me, { wired: false });
    expect(leave(runDir, 'n', 'n')).toEqual({ teardown: true, wired: false });
  });
});

describe('owner and joiners', () => {
  it('the owner leaving first keeps the endpoint; the last joiner tears it down', async () => {
    await registerOwner(runDir, 'a', me, { wired: true });
    registerJoiner(runDir, 'a', 'j1', me);
    registerJoiner(runDir, 'a', 'j2', me);
    expect(rootOf(runDir, 'j2')).toBe('a');
    expect(liveUsers(runDir, 'a').sort()).toEqual(['a', 'j1', 'j2']);
    expect(leave(runDir, 'a', 'a')).toEqual({ teardown: false, wired: false });
    expect(isLiveUser(runDir, 'a', 'a')).toBe(false); // nobody new can join through the owner
    expect(leave(runDir, 'a', 'j1')).toEqual({ teardown: false, wired: false });
    expect(leave(runDir, 'a', 'j2')).toEqual({ teardown: true, wired: true });
  });

  it('keeps the owner\'s id taken while joiners live, and frees it after', async () => {
    await registerOwner(runDir, 'a', me, { wired: true });
    registerJoiner(runDir, 'a', 'j', me);
    leave(runDir, 'a', 'a');
    await expect(registerOwner(runDir, 'a', me, { wired: true })).rejects.toThrow(new ConflictError('container id a is still in use: container(s) j share the network namespace of an earlier a'));
    expect(leave(runDir, 'a', 'j').teardown).toBe(true);
    finishTeardown(runDir, 'a');
    expect(await registerOwner(runDir, 'a', me, { wired: true })).toEqual({ reclaimed: false });
  });

  it('ignores users whose process died, and reports the endpoint they left behind', async () => {
    await registerOwner(runDir, 'a', me, { wired: true });
    registerJoiner(runDir, 'a', 'j', me);
    die('a', 'a');
    die('a', 'j');
    expect(liveUsers(runDir, 'a')).toEqual([]);
    expect(await registerOwner(runDir, 'a', me, { wired: true })).toEqual({ reclaimed: true });
    expect(readdirSync(usersDir(runDir, 'a')).sort()).toEqual(['.wired', 'a']);
  });

  it('one listing settles what an earlier generation left: dead users, its dead teardown, its .wired', async () => {
    await registerOwner(runDir, 'a', me, { wired: true });
    registerJoiner(runDir, 'a', 'j', me);
    die('a', 'a');
    die('a', 'j');
    die('a', 'a', '.teardown');
    // registerOwner straight away (no liveUsers before it): the dead entries and the dead
    // teardown marker go, the endpoint left behind is reported, a --net none owner drops .wired
    expect(await registerOwner(runDir, 'a', me, { wired: false })).toEqual({ reclaimed: true });
    expect(readdirSync(usersDir(runDir, 'a')).sort()).toEqual(['a']);
  });

  it('finishTeardown removes the directory whatever is left in it', async () => {
    // the plain case: the last user's .teardown marker alone
    await registerOwner(runDir, 'n', me, { wired: false });
    expect(leave(runDir, 'n', 'n')).toEqual({ teardown: true, wired: false });
    expect(readdirSync(usersDir(runDir, 'n'))).toEqual(['.teardown']);
    finishTeardown(runDir, 'n');
    expect(existsSync(usersDir(runDir, 'n'))).toBe(false);
    // .wired and an entry written meanwhile (a joiner giving up): the whole tree
    await registerOwner(runDir, 'a', me, { wired: true });
    expect(leave(runDir, 'a', 'a').teardown).toBe(true);
    registerJoiner(runDir, 'a', 'late', me);
    finishTeardown(runDir, 'a');
    expect(existsSync(usersDir(runDir, 'a'))).toBe(false);
    // no marker (a failed wiring's cleanup, gc): the tree as well
    await registerOwner(runDir, 'b', me, { wired: true });
    finishTeardown(runDir, 'b');
    expect(existsSync(usersDir(runDir, 'b'))).toBe(false);
  });

  it('an unwired owner leaving last removes its directory at once; anything else in it and the protocol decides', async () => {
    // the plain case: nothing left, nothing for finishTeardown
    await registerOwner(runDir, 'n', me, { wired: false });
    expect(leave(runDir, 'n', 'n', { unwired: true })).toEqual({ teardown: true, wired: false, finished: true });
    expect(existsSync(usersDir(runDir, 'n'))).toBe(false);
    expect(existsSync(path.join(runDir, 'netns-users'))).toBe(true);
    // a live joiner: it keeps the namespace
    await registerOwner(runDir, 'a', me, { wired: false });
    registerJoiner(runDir, 'a', 'j', me);
    expect(leave(runDir, 'a', 'a', { unwired: true })).toEqual({ teardown: false, wired: false });
    expect(leave(runDir, 'a', 'j')).toEqual({ teardown: true, wired: false });
    finishTeardown(runDir, 'a');
    // a dead user's entry: the listing removes it and this caller tears down
    await registerOwner(runDir, 'b', me, { wired: false });
    die('b', 'x');
    expect(leave(runDir, 'b', 'b', { unwired: true })).toEqual({ teardown: true, wired: false });
    finishTeardown(runDir, 'b');
    expect(existsSync(usersDir(runDir, 'b'))).toBe(false);
    // the hint wrong (the owner was wired): .wired keeps the directory, the endpoint is reported
    await registerOwner(runDir, 'w', me, { wired: true });
    expect(leave(runDir, 'w', 'w', { unwired: true })).toEqual({ teardown: true, wired: true });
    finishTeardown(runDir, 'w');
    // a teardown in progress by a live holder: not this caller's
    await registerOwner(runDir, 't', me, { wired: false });
    writeFileSync(path.join(usersDir(runDir, 't'), '.teardown'), JSON.stringify({ pid: me, start: '' }));
    expect(leave(runDir, 't', 't', { unwired: true })).toEqual({ teardown: false, wired: false });
  });

  it('a new owner registers without reading anything; a directory left behind is settled as before', async () => {
    expect(existsSync(usersDir(runDir, 'f'))).toBe(false);
    expect(await registerOwner(runDir, 'f', me, { wired: false })).toEqual({ reclaimed: false });
    expect(readdirSync(usersDir(runDir, 'f'))).toEqual(['f']);
    expect(isLiveUser(runDir, 'f', 'f')).toBe(true);
  });

  it('a teardown whose holder died is taken over', async () => {
    await registerOwner(runDir, 'a', me, { wired: true });
    expect(leave(runDir, 'a', 'a').teardown).toBe(true);
    // The holder dies before finishTeardown: a later leave takes over.
    die('a', 'a', '.teardown');
    expect(leave(runDir, 'a', 'whoever')).toEqual({ teardown: true, wired: true });
  });

  it('gc sweeps directories whose users all died', async () => {
    await registerOwner(runDir, 'live', me, { wired: true });
    await registerOwner(runDir, 'gone', me, { wired: true });
    die('gone', 'gone');
    expect(sweepDeadUsers(runDir)).toEqual(['gone']);
    expect(readdirSync(path.join(runDir, 'netns-users'))).toEqual(['live']);
  });
});
