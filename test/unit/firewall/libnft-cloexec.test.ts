// libnftables' netlink socket is made close-on-exec when its context is (runtime/firewall/libnft.ts):
// libmnl opens it without SOCK_CLOEXEC, so without the mark every program tsrun started afterwards
// (the DNS resolver, conmon) inherited it, and closing a caller's inheritable descriptors before
// those start (runtime/inherited-fds.ts) closed it under libnftables (EBADF on its next command).
// Run in a child Node process in a network namespace of its own (a listing changes nothing).
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const LIBNFT = path.join(process.cwd(), 'dist', 'runtime', 'firewall', 'libnft.js');

const inheritable = `() => require('fs').readdirSync('/proc/self/fd').filter((n) => { try { const m = /^flags:\\s*([0-7]+)$/m.exec(require('fs').readFileSync('/proc/self/fdinfo/' + n, 'utf8')); return Number(n) > 2 && m !== null && (parseInt(m[1], 8) & 0o2000000) === 0; } catch { return false; } })`;

describe('libnftables context (runtime/firewall/libnft.ts)', () => {
  it('leaves no inheritable descriptor behind: its netlink socket is close-on-exec, and a second command still works', () => {
    const code = `const list = ${inheritable}; import(${JSON.stringify(LIBNFT)}).then((m) => { if (!m.libnftAvailable()) { console.log('unavailable'); return; } const before = list(); const a = m.runLibnft('list tables'); const after = list(); const b = m.runLibnft('list tables'); console.log(JSON.stringify({ before, after, ok: a.ok && b.ok })); }).catch((e) => { console.error(e); process.exit(99); });`;
    const r = spawnSync('unshare', ['--net', process.execPath, '-e', code], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(r.stderr).toBe('');
    if (r.stdout.trim() === 'unavailable') return; // no libnftables here: nothing to check
    const out = JSON.parse(r.stdout) as { before: string[]; after: string[]; ok: boolean };
    expect(out.ok).toBe(true);
    expect(out.after).toEqual(out.before);
  });
});
