// jest's globalTeardown: a namespace pin (`unshare --net sleep infinity`) still alive when every
// test file has finished means a test skipped its cleanup (a hook that threw before destroy()).
// Such a child keeps jest's event loop alive, so jest would never exit and CI would hang with a
// live namespace. Kill every pin this process started, and say so: it is still a test bug.
import { readFileSync, readdirSync } from 'node:fs';

interface Proc {
  pid: number;
  ppid: number;
  argv: string[];
}

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(name), ppid, argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `unshare --net sleep infinity` before and after unshare has exec'd sleep. */
const isPin = (argv: string[]): boolean =>
  (argv[0]?.endsWith('sleep') === true && argv[1] === 'infinity' && argv.length === 2) ||
  (argv[0]?.endsWith('unshare') === true && argv.includes('--net') && argv.at(-2) === 'sleep' && argv.at(-1) === 'infinity');

export default function reapPins(): void {
  const pins = processes().filter((p) => p.ppid === process.pid && isPin(p.argv));
  for (const p of pins) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (pins.length > 0) {
    process.stderr.write(`test harness: ${pins.length} sandbox namespace pin(s) outlived their tests and were killed (pids ${pins.map((p) => p.pid).join(', ')}): a test skipped its cleanup\n`);
  }
}
