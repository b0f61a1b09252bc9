// `run -u` / `exec -u` read the root filesystem's /etc/passwd and /etc/group on the HOST, as root,
// while a running container (root inside) can rewrite that directory at will. The lookup checked
// that /etc is a directory and then opened /etc/passwd by path: a container swapping /etc with a
// symbolic link to a host directory (renameat2 RENAME_EXCHANGE, atomic, in a loop) between the
// two made tsrun read the host's file instead (the user, its groups and its home came from the
// host). Here the swapper runs on the host against a scratch root filesystem, which is what a
// container's writes to its own root are; nothing is mounted and no namespace is needed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveUser } from '../../../shim/user.js';

// Swaps DIR/etc and DIR/etc.swap (a symbolic link) atomically, as fast as it can, until killed.
const SWAPPER = String.raw`
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b = (os.path.join(sys.argv[1], n).encode() for n in ('etc', 'etc.swap'))
print('up', flush=True)
while True:
    if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit('renameat2: errno %d' % ctypes.get_errno())
`;

let dir: string;
let swapper: ChildProcess | undefined;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-userrace-'));
  const rootfs = path.join(dir, 'rootfs');
  const hostEtc = path.join(dir, 'host-etc'); // stands for the host's /etc
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  mkdirSync(hostEtc);
  writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nmine:x:1000:1000::/home/mine:/bin/sh\n');
  writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\n');
  writeFileSync(path.join(hostEtc, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nmine:x:4242:4242::/host-secret:/bin/sh\nhostonly:x:4343:4343::/host-only:/bin/sh\n');
  writeFileSync(path.join(hostEtc, 'group'), 'root:x:0:\nhostgroup:x:4444:mine\n');
  // an absolute link, as a container would write it: on the host it names the host's directory
  symlinkSync(hostEtc, path.join(rootfs, 'etc.swap'));
});
afterAll(async () => {
  if (swapper && swapper.exitCode === null && swapper.signalCode === null) {
    const gone = new Promise((r) => swapper!.once('exit', r));
    swapper.kill('SIGKILL');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('-u against a root filesystem that a container rewrites meanwhile', () => {
  it('never reads a file outside the root filesystem, however /etc is swapped with a link', async () => {
    const rootfs = path.join(dir, 'rootfs');
    swapper = spawn('python3', ['-c', SWAPPER, rootfs], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      swapper!.stdout!.once('data', () => resolve());
      swapper!.once('exit', (code) => reject(new Error(`swapper exited ${code}`)));
    });
    const seen = new Map<string, number>();
    const deadline = Date.now() + 3000;
    let tries = 0;
    while (Date.now() < deadline && tries < 20000) {
      tries++;
      let what: string;
      try {
        const u = resolveUser(rootfs, 'mine');
        what = `${u.uid}:${u.gid}:${u.home}:${u.additionalGids.join(',')}`;
      } catch (err) {
        what = `refused: ${(err as Error).message.replace(/.*root filesystem /, '')}`;
      }
      seen.set(what, (seen.get(what) ?? 0) + 1);
      try {
        what = String(resolveUser(rootfs, 'hostonly').uid);
      } catch {
        what = 'no hostonly';
      }
      seen.set(what, (seen.get(what) ?? 0) + 1);
    }
    const gone = new Promise((r) => swapper!.once('exit', r));
    swapper.kill('SIGKILL');
    await gone;
    const outcomes = [...seen.keys()];
    // The container's own entry, a refusal (/etc a link at that moment), or "no entry": never the
    // host's entry (uid 4242 or 4343, home /host-secret, group 4444).
    expect(outcomes.filter((o) => /4242|4343|4444|host-secret|host-only/.test(o))).toEqual([]);
    expect(outcomes).toContain('1000:1000:/home/mine:1000');
  });
});
