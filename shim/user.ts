// `-u/--user USER[:GROUP]` made numeric for the spec (runc takes only numbers), as runc's and
// docker's users expect it (moby/sys/user GetExecUser): USER a name in the root filesystem's
// /etc/passwd, or its uid there, or a number with no entry (gid 0 then); its gid the entry's;
// GROUP a name in /etc/group or a number; without GROUP, the groups that list USER's name are its
// additional groups. The gid is always the first additional group too: a group the process could
// otherwise drop, and so read what a file denies to that group (CVE-2022-36109 in docker,
// CVE-2022-2989 in podman; runtime-spec PR 1168). HOME is the entry's home ("/" without one), for the caller to set when the
// spec does not. The files are the bundle's, read from the host: a symbolic link at /etc or at the
// file itself is refused (it would be followed on the host, not in the container's root), as is a
// file that is not a regular one (a FIFO, a device) or larger than 4 MiB; the file is looked up in
// the /etc directory that was checked, never by a second walk from the rootfs.
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import path from 'node:path';
import { readRegularFd } from '../config/bundle.js';
import { UserError } from '../config/errors.js';

export interface ProcessUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

const MAX_ID = 2 ** 31 - 1;
const MAX_FILE = 4 * 1024 * 1024;

/** The rootfs's /etc/`name` as lines of fields, [] when it does not exist. /etc is opened first
 * (O_NOFOLLOW: not a link) and the file looked up inside THAT directory, through its descriptor's
 * /proc/self/fd entry (openat's semantics, which Node lacks): a path walk from the rootfs twice
 * let a running container swap /etc for a link to a host directory between the check and the
 * open (user-lookup-race.test.ts: the host's entries were read). */
function readEtc(rootfs: string, name: 'passwd' | 'group', spec: string): string[][] {
  const refuse = (why: string) => new UserError(`cannot look up --user ${JSON.stringify(spec)}: /etc/${name} in the root filesystem ${why}`);
  let etcFd: number;
  try {
    etcFd = openSync(path.join(rootfs, 'etc'), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw refuse(code === 'ELOOP' || code === 'ENOTDIR' ? 'is not in a directory /etc (a symbolic link?)' : `cannot be read (${code ?? (err as Error).message})`);
  }
  let fd: number;
  try {
    fd = openSync(`/proc/self/fd/${etcFd}/${name}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOENT of the file, not of /proc (a host without it: refuse rather than read "no entry")
    if (code === 'ENOENT' && existsSync(`/proc/self/fd/${etcFd}`)) return [];
    throw refuse(code === 'ELOOP' ? 'is a symbolic link' : `cannot be read (${code ?? (err as Error).message})`);
  } finally {
    closeSync(etcFd);
  }
  return readRegularFd(fd, MAX_FILE, (why) => refuse(why === 'too large' ? 'is larger than 4 MiB' : 'is not a regular file'))
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const numeric = (s: string) => (/^\d+$/.test(s) ? Number(s) : undefined);
const idOf = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) && Number(s) <= MAX_ID ? Number(s) : undefined);

/** `spec` (checked by shim/run-options.ts checkUserSpec) against `rootfs`; one line when it names
 * what the root filesystem does not have. */
export function resolveUser(rootfs: string, spec: string): ProcessUser {
  const [userPart, groupPart] = spec.split(':') as [string, string | undefined];
  const passwd = readEtc(rootfs, 'passwd', spec);
  const userNum = numeric(userPart);
  // First match wins, by name or by uid, as runc's lookup.
  const entry = passwd.find((f) => f.length >= 4 && idOf(f[2]) !== undefined && (f[0] === userPart || (userNum !== undefined && idOf(f[2]) === userNum)));
  let uid: number;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (entry) {
    uid = idOf(entry[2])!;
    gid = idOf(entry[3]) ?? 0;
    home = entry[5] || '/';
    name = entry[0];
  } else if (userNum !== undefined) uid = userNum;
  else throw new UserError(`unable to find user ${userPart}: no matching entries in the root filesystem's /etc/passwd`);

  if (groupPart !== undefined) {
    const groupNum = numeric(groupPart);
    const g = readEtc(rootfs, 'group', spec).find((f) => f.length >= 3 && idOf(f[2]) !== undefined && (f[0] === groupPart || (groupNum !== undefined && idOf(f[2]) === groupNum)));
    if (g) gid = idOf(g[2])!;
    else if (groupNum !== undefined) gid = groupNum;
    else throw new UserError(`unable to find group ${groupPart}: no matching entries in the root filesystem's /etc/group`);
    return { uid, gid, additionalGids: [gid], home };
  }
  if (name === undefined) return { uid, gid, additionalGids: [gid], home };
  const extra = readEtc(rootfs, 'group', spec)
    .filter((f) => f.length >= 4 && idOf(f[2]) !== undefined && f[3]!.split(',').includes(name!))
    .map((f) => idOf(f[2])!)
    .filter((g, i, all) => g !== gid && all.indexOf(g) === i);
  return { uid, gid, additionalGids: [gid, ...extra], home };
}
