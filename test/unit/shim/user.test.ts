// -u/--user made numeric against a root filesystem's /etc/passwd and /etc/group, as runc's users
// (moby/sys/user GetExecUser) expect: names, numbers without an entry, groups, additional groups.
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../../../config/errors.js';
import { resolveUser } from '../../../shim/user.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function rootfs(files: { passwd?: string; group?: string } = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-userfs-'));
  made.push(dir);
  mkdirSync(path.join(dir, 'etc'));
  if (files.passwd !== undefined) writeFileSync(path.join(dir, 'etc', 'passwd'), files.passwd);
  if (files.group !== undefined) writeFileSync(path.join(dir, 'etc', 'group'), files.group);
  return dir;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n# a comment\nbob:x:1001:100::/home/bob:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nusers:x:100:\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:bob\nnogroup:x:65534:\n';

describe('resolveUser', () => {
  const fs = rootfs({ passwd: PASSWD, group: GROUP });

  it('a name: its uid, gid and home, and the groups that list it as additional groups', () => {
    expect(resolveUser(fs, 'alice')).toEqual({ uid: 1000, gid: 1000, home: '/home/alice', additionalGids: [1000, 10] });
    expect(resolveUser(fs, 'bob')).toEqual({ uid: 1001, gid: 100, home: '/home/bob', additionalGids: [100, 10, 29] });
    expect(resolveUser(fs, 'root')).toEqual({ uid: 0, gid: 0, home: '/root', additionalGids: [0] });
  });

  it("a uid with an entry takes the entry's gid; one without takes gid 0 and home /", () => {
    expect(resolveUser(fs, '1001')).toEqual({ uid: 1001, gid: 100, home: '/home/bob', additionalGids: [100, 10, 29] });
    expect(resolveUser(fs, '4242')).toEqual({ uid: 4242, gid: 0, home: '/', additionalGids: [0] });
  });

  it('a group by name or number replaces the gid, and no other additional groups are added; the gid is always the first additional group (CVE-2022-36109)', () => {
    expect(resolveUser(fs, 'alice:audio')).toEqual({ uid: 1000, gid: 29, home: '/home/alice', additionalGids: [29] });
    expect(resolveUser(fs, 'bob:0')).toEqual({ uid: 1001, gid: 0, home: '/home/bob', additionalGids: [0] });
    expect(resolveUser(fs, '4242:777')).toEqual({ uid: 4242, gid: 777, home: '/', additionalGids: [777] });
  });

  it('names the rootfs does not have: one line', () => {
    expect(() => resolveUser(fs, 'mallory')).toThrow("unable to find user mallory: no matching entries in the root filesystem's /etc/passwd");
    expect(() => resolveUser(fs, 'alice:staff')).toThrow("unable to find group staff: no matching entries in the root filesystem's /etc/group");
  });

  it('no /etc/passwd or /etc/group: numbers still work, names do not', () => {
    const bare = rootfs();
    expect(resolveUser(bare, '1000:1000')).toEqual({ uid: 1000, gid: 1000, home: '/', additionalGids: [1000] });
    expect(() => resolveUser(bare, 'alice')).toThrow(UserError);
  });

  it('a symbolic link at /etc/passwd or at /etc is refused, not followed on the host', () => {
    const linked = rootfs();
    symlinkSync('/etc/passwd', path.join(linked, 'etc', 'passwd'));
    expect(() => resolveUser(linked, 'root')).toThrow('cannot look up --user "root": /etc/passwd in the root filesystem is a symbolic link');
    const etcLinked = mkdtempSync(path.join(os.tmpdir(), 'tsrun-userfs-'));
    made.push(etcLinked);
    symlinkSync('/etc', path.join(etcLinked, 'etc'));
    expect(() => resolveUser(etcLinked, 'root')).toThrow(/is not in a directory \/etc/);
  });

  it('a FIFO (which would hang the read), or a file over 4 MiB, is refused at once', () => {
    const fifo = rootfs();
    execFileSync('mkfifo', [path.join(fifo, 'etc', 'passwd')]);
    expect(() => resolveUser(fifo, 'root')).toThrow('/etc/passwd in the root filesystem is not a regular file');
    const huge = rootfs({ group: GROUP });
    writeFileSync(path.join(huge, 'etc', 'passwd'), Buffer.alloc(4 * 1024 * 1024 + 1, 0x61));
    expect(() => resolveUser(huge, 'root')).toThrow('/etc/passwd in the root filesystem is larger than 4 MiB');
  });
});
