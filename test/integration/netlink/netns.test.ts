// Creating, entering and deleting network namespaces from the test process itself. The process
// must end every call where it started: that is checked after each test.
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { ConflictError, NotFoundError } from '../../../config/errors.js';
import { createPinnedNetns, deletePinnedNetns, netnsId, withNetnsSync } from '../../../runtime/netns/netns.js';
import { Rtnl } from '../../../runtime/netlink/rtnl.js';
import { getSysctlSync, setSysctlSync } from '../../../runtime/netlink/sysctl.js';
import { scratchNetns } from '../../harness/sandbox.js';

const PIN_DIR = `/tmp/tsA-pins-${process.pid}`;
const ownNetns = readlinkSync('/proc/self/ns/net');
const ownId = netnsId('/proc/self/ns/net');

interface IpLink { ifname: string; flags: string[]; operstate: string }

const mounts = (): string[] => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(PIN_DIR));

afterEach(() => {
  expect(readlinkSync('/proc/thread-self/ns/net')).toBe(ownNetns);
  expect(netnsId('/proc/thread-self/ns/net')).toBe(ownId);
});

afterAll(() => {
  expect(mounts()).toEqual([]);
  rmSync(PIN_DIR, { recursive: true, force: true });
});

describe('createPinnedNetns / deletePinnedNetns', () => {
  it('pins a new namespace with lo up, without moving the caller; delete is idempotent', () => {
    const pin = `${PIN_DIR}/sub/one`;
    createPinnedNetns(pin);
    try {
      expect(netnsId(pin)).not.toBe(ownId);
      expect(mounts()).toHaveLength(1);
      const links = JSON.parse(execFileSync('nsenter', [`--net=${pin}`, 'ip', '-j', 'link'], { encoding: 'utf8' })) as IpLink[];
      expect(links).toHaveLength(1);
      expect(links[0]).toMatchObject({ ifname: 'lo' });
      expect(links[0]!.flags).toContain('UP');
      expect(readlinkSync('/proc/self/ns/net')).toBe(ownNetns);
    } finally {
      deletePinnedNetns(pin);
    }
    expect(existsSync(pin)).toBe(false);
    expect(mounts()).toEqual([]);
    deletePinnedNetns(pin); // absent: done
    deletePinnedNetns(`${PIN_DIR}/never-existed`);
  });

  it('refuses to pin over an existing file and leaves it alone', () => {
    const pin = `${PIN_DIR}/two`;
    createPinnedNetns(pin);
    const id = netnsId(pin);
    try {
      expect(() => createPinnedNetns(pin)).toThrow(ConflictError);
      expect(netnsId(pin)).toBe(id);
    } finally {
      deletePinnedNetns(pin);
    }
  });

  it('gives each pin its own namespace', () => {
    const a = `${PIN_DIR}/a`;
    const b = `${PIN_DIR}/b`;
    createPinnedNetns(a);
    createPinnedNetns(b);
    try {
      expect(netnsId(a)).not.toBe(netnsId(b));
    } finally {
      deletePinnedNetns(a);
      deletePinnedNetns(b);
    }
  });
});

describe('withNetnsSync', () => {
  it('runs inside the namespace and returns, also when the function throws', async () => {
    const ns = await scratchNetns('tsA-with');
    try {
      expect(withNetnsSync(ns.path, () => netnsId('/proc/thread-self/ns/net'))).toBe(netnsId(ns.path));
      expect(() => withNetnsSync(ns.path, () => {
        throw new Error('boom');
      })).toThrow('boom');
      expect(readlinkSync('/proc/thread-self/ns/net')).toBe(ownNetns);
      // Nesting: the inner call returns to the outer namespace, the outer one to ours. (Our own
      // namespace is named through a descriptor: inside, /proc/self/ns/net is the namespace the
      // main thread is in, i.e. the one entered.)
      const ownFd = openSync('/proc/thread-self/ns/net', 'r');
      try {
        const seen = withNetnsSync(ns.path, () => {
          expect(netnsId('/proc/self/ns/net')).toBe(netnsId(ns.path));
          const innermost = withNetnsSync(`/proc/self/fd/${ownFd}`, () => netnsId('/proc/thread-self/ns/net'));
          return `${innermost}|${netnsId('/proc/thread-self/ns/net')}`;
        });
        expect(seen).toBe(`${ownId}|${netnsId(ns.path)}`);
      } finally {
        closeSync(ownFd);
      }
    } finally {
      await ns.destroy();
    }
  });

  it('rejects an async function (its continuation would run outside)', async () => {
    const ns = await scratchNetns('tsA-async');
    try {
      expect(() => withNetnsSync(ns.path, async () => 1)).toThrow(/returned a promise/);
    } finally {
      await ns.destroy();
    }
  });

  it('targets /proc/sys/net of the namespace it is in', async () => {
    const ns = await scratchNetns('tsA-sysctl');
    const ours = getSysctlSync('net.ipv4.ip_forward');
    try {
      const before = ns.run('cat', ['/proc/sys/net/ipv4/ip_forward']).trim();
      const want = before === '1' ? '0' : '1';
      withNetnsSync(ns.path, () => setSysctlSync('net.ipv4.ip_forward', want));
      expect(ns.run('cat', ['/proc/sys/net/ipv4/ip_forward']).trim()).toBe(want);
      expect(withNetnsSync(ns.path, () => getSysctlSync('net/ipv4/ip_forward'))).toBe(want);
      expect(getSysctlSync('net.ipv4.ip_forward')).toBe(ours); // ours untouched
    } finally {
      await ns.destroy();
    }
  });
});

describe('a namespace that is gone', () => {
  it('is NotFoundError for Rtnl.open, withNetnsSync and netnsId', async () => {
    const ns = await scratchNetns('tsA-gone');
    const p = ns.path;
    await ns.destroy();
    expect(() => Rtnl.open(p)).toThrow(NotFoundError);
    expect(() => withNetnsSync(p, () => 1)).toThrow(NotFoundError);
    expect(() => netnsId(p)).toThrow(NotFoundError);
    expect(() => Rtnl.open(`${PIN_DIR}/no-such-pin`)).toThrow(NotFoundError);
  });
});

describe('Rtnl in a pinned namespace', () => {
  it('acts in the namespace it was opened in', async () => {
    const pin = `${PIN_DIR}/rtnl`;
    createPinnedNetns(pin);
    const nl = Rtnl.open(pin);
    try {
      await nl.createBridge({ name: 'tsAbr9' });
      const out = execFileSync('nsenter', [`--net=${pin}`, 'ip', '-j', 'link'], { encoding: 'utf8' });
      expect((JSON.parse(out) as IpLink[]).map((l) => l.ifname).sort()).toEqual(['lo', 'tsAbr9']);
      expect((await nl.getLink('lo'))?.up).toBe(true);
    } finally {
      nl.close();
      deletePinnedNetns(pin);
    }
  });
});
