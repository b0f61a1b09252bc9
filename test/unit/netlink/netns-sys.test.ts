// Namespace logic against a recording fake of the syscalls (youki's approach): the order of the
// calls, the way back in every failure, and what is left on disk. No root needed: the fake's
// setns/unshare/mount do nothing, and the pin lives in a temporary directory.
import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConflictError, NotFoundError, SystemError } from '../../../config/errors.js';
import { IFF_UP, NLMSG_ERROR, RTM, decodeMessages, encodeMessage, parseIfinfomsg } from '../../../runtime/netlink/codec.js';
import { ErrnoError } from '../../../runtime/netns/errno.js';
import { createPinnedNetns, deletePinnedNetns, withNetnsSync } from '../../../runtime/netns/netns.js';
import { CLONE_NEWNET, MNT_DETACH, MS_BIND, type Sys } from '../../../runtime/netns/sys.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tsA-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Failures = Partial<Record<keyof Sys, () => never>>;

class FakeSys implements Sys {
  calls: string[] = [];
  sentToKernel: Buffer[] = [];
  /** errno the fake kernel answers the netlink request with. */
  nlErrno = 0;
  /** How many umount2 calls succeed before "not mounted" (EINVAL). */
  mounts = 0;
  constructor(private readonly fail: Failures = {}) {}
  private note(name: keyof Sys, text: string): void {
    this.calls.push(text);
    this.fail[name]?.();
  }
  setns(_fd: number, nstype: number): void {
    this.note('setns', `setns ${nstype === CLONE_NEWNET ? 'net' : nstype}`);
  }
  unshare(flags: number): void {
    this.note('unshare', `unshare ${flags === CLONE_NEWNET ? 'net' : flags}`);
  }
  mount(source: string | null, target: string, _t: string | null, flags: number): void {
    this.note('mount', `mount ${source} ${path.basename(target)} ${flags === MS_BIND ? 'bind' : flags}`);
    this.mounts++;
  }
  umount2(target: string, flags: number): void {
    this.note('umount2', `umount2 ${path.basename(target)} ${flags === MNT_DETACH ? 'detach' : flags}`);
    if (this.mounts === 0) throw new ErrnoError(22, 'umount2');
    this.mounts--;
  }
  socket(): number {
    this.note('socket', 'socket');
    return 1000;
  }
  send(_fd: number, buf: Buffer): number {
    this.note('send', 'send');
    this.sentToKernel.push(Buffer.from(buf));
    return buf.length;
  }
  recv(_fd: number, buf: Buffer): number {
    this.note('recv', 'recv');
    const e = Buffer.alloc(20);
    e.writeInt32LE(-this.nlErrno, 0);
    const reply = encodeMessage({ type: NLMSG_ERROR, flags: 0, seq: 1, port: 0, data: e });
    reply.copy(buf);
    return reply.length;
  }
  poll(): number {
    this.note('poll', 'poll');
    return 1;
  }
  close(): void {
    this.note('close', 'close');
  }
}

const boom = (errno: number, call: string) => (): never => {
  throw new ErrnoError(errno, call);
};

describe('createPinnedNetns', () => {
  it('unshares, bind-mounts, brings lo up from inside, and returns home', () => {
    const sys = new FakeSys();
    const pin = path.join(dir, 'a/b/pin1');
    createPinnedNetns(pin, sys);
    expect(sys.calls).toEqual(['unshare net', 'mount /proc/thread-self/ns/net pin1 bind', 'socket', 'send', 'recv', 'close', 'setns net']);
    expect(existsSync(pin)).toBe(true);
    const [msg] = decodeMessages(sys.sentToKernel[0]!);
    expect(msg!.type).toBe(RTM.NEWLINK);
    expect(parseIfinfomsg(msg!.data)).toMatchObject({ index: 1, flags: IFF_UP, change: IFF_UP });
  });

  it('refuses an existing pin without touching anything', () => {
    const sys = new FakeSys();
    const pin = path.join(dir, 'exists');
    writeFileSync(pin, '');
    expect(() => createPinnedNetns(pin, sys)).toThrow(ConflictError);
    expect(sys.calls).toEqual([]);
    expect(existsSync(pin)).toBe(true);
  });

  it('removes the pin file and returns home when the mount fails', () => {
    const sys = new FakeSys({ mount: boom(1, 'mount') });
    const pin = path.join(dir, 'mountfail');
    const err = (() => {
      try {
        createPinnedNetns(pin, sys);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(SystemError);
    expect((err as Error).message).toMatch(/mount: Operation not permitted/);
    expect(sys.calls).toEqual(['unshare net', 'mount /proc/thread-self/ns/net mountfail bind', 'setns net']);
    expect(existsSync(pin)).toBe(false);
  });

  it('unmounts and removes the pin when lo cannot be brought up', () => {
    const sys = new FakeSys();
    sys.nlErrno = 1;
    const pin = path.join(dir, 'lofail');
    expect(() => createPinnedNetns(pin, sys)).toThrow(/set link "lo" up in netns .*: Operation not permitted/);
    expect(sys.calls.slice(-3)).toEqual(['close', 'setns net', 'umount2 lofail detach']);
    expect(existsSync(pin)).toBe(false);
  });

  it('does not setns when unshare itself failed (nothing moved)', () => {
    const sys = new FakeSys({ unshare: boom(1, 'unshare') });
    const pin = path.join(dir, 'unsharefail');
    expect(() => createPinnedNetns(pin, sys)).toThrow(SystemError);
    expect(sys.calls).toEqual(['unshare net']);
    expect(existsSync(pin)).toBe(false);
  });
});

describe('deletePinnedNetns', () => {
  it('detaches every stacked mount, removes the file, and is idempotent', () => {
    const sys = new FakeSys();
    const pin = path.join(dir, 'del');
    writeFileSync(pin, '');
    sys.mounts = 2;
    deletePinnedNetns(pin, sys);
    expect(sys.calls).toEqual(['umount2 del detach', 'umount2 del detach', 'umount2 del detach']);
    expect(existsSync(pin)).toBe(false);
    deletePinnedNetns(pin, sys); // not mounted, absent: done
  });

  it('reports a real unmount failure', () => {
    const sys = new FakeSys({ umount2: boom(16, 'umount2') });
    expect(() => deletePinnedNetns(path.join(dir, 'busy'), sys)).toThrow(/unmount netns pin .*Device or resource busy/);
  });
});

describe('withNetnsSync', () => {
  const target = path.join(dir, 'fake-ns');
  writeFileSync(target, '');

  it('enters, runs, returns the value and goes back', () => {
    const sys = new FakeSys();
    expect(withNetnsSync(target, () => 42, sys)).toBe(42);
    expect(sys.calls).toEqual(['setns net', 'setns net']);
  });

  it('goes back when the function throws', () => {
    const sys = new FakeSys();
    expect(() => withNetnsSync(target, () => {
      throw new Error('inside');
    }, sys)).toThrow('inside');
    expect(sys.calls).toEqual(['setns net', 'setns net']);
  });

  it('reports a missing namespace as NotFoundError and never calls setns', () => {
    const sys = new FakeSys();
    expect(() => withNetnsSync(path.join(dir, 'gone'), () => 1, sys)).toThrow(NotFoundError);
    expect(sys.calls).toEqual([]);
  });

  it('names the namespace when entering fails', () => {
    const sys = new FakeSys({ setns: boom(22, 'setns') });
    expect(() => withNetnsSync(target, () => 1, sys)).toThrow(/enter netns ".*fake-ns": setns: Invalid argument/);
    expect(sys.calls).toEqual(['setns net']);
  });

  it('refuses a function that returned a promise', () => {
    const sys = new FakeSys();
    expect(() => withNetnsSync(target, () => Promise.reject(new Error('late')), sys)).toThrow(/returned a promise/);
    expect(sys.calls).toEqual(['setns net', 'setns net']);
  });

  // Last: it leaves the module marked as stranded, as a real failure would for the whole process.
  it('refuses all later switches once it could not return home', () => {
    let n = 0;
    const sys = new FakeSys({
      setns: () => {
        if (++n === 2) throw new ErrnoError(12, 'setns');
        return undefined as never;
      },
    });
    expect(() => withNetnsSync(target, () => 1, sys)).toThrow(/return to the original network namespace/);
    expect(() => withNetnsSync(target, () => 1, new FakeSys())).toThrow(/refusing/);
    expect(() => createPinnedNetns(path.join(dir, 'after'), new FakeSys())).toThrow(/refusing/);
  });
});
