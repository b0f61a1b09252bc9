import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inheritableByFdinfo, inheritableFds } from '../../../runtime/inherited-fds.js';

// /proc/<pid>/fdinfo/<fd> as Linux writes it: flags in octal, O_CLOEXEC (02000000) for a
// close-on-exec descriptor.
const fdinfo = (flags: string) => `pos:\t0\nflags:\t${flags}\nmnt_id:\t25\nino:\t1234\n`;

describe('inherited descriptors (runtime/inherited-fds.ts)', () => {
  it('reads close-on-exec from fdinfo flags', () => {
    expect(inheritableByFdinfo(fdinfo('02100001'))).toBe(false); // O_CLOEXEC|O_LARGEFILE|O_WRONLY
    expect(inheritableByFdinfo(fdinfo('0100001'))).toBe(true);
    expect(inheritableByFdinfo(fdinfo('00'))).toBe(true);
    expect(inheritableByFdinfo('pos:\t0\n')).toBe(false); // no flags line: nothing is done
  });

  it('lists only descriptors above 15 that are inheritable; one closed since the listing is skipped', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-fdinfo-'));
    try {
      const fd = path.join(dir, 'fd');
      const info = path.join(dir, 'fdinfo');
      mkdirSync(fd);
      mkdirSync(info);
      for (const [n, flags] of [['0', '02'], ['5', '0100000'], ['16', '02100000'], ['40', '0100001'], ['200', '01'], ['251', '02000000']] as const) {
        writeFileSync(path.join(fd, n), '');
        writeFileSync(path.join(info, n), fdinfo(flags));
      }
      writeFileSync(path.join(fd, '300'), ''); // listed, closed before its fdinfo was read
      expect(inheritableFds(fd, info).sort((a, b) => a - b)).toEqual([40, 200]);
      expect(inheritableFds(path.join(dir, 'none'), info)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
