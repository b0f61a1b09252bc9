// Fuzzing the hook's front door in-process: a few hundred malformed or hostile states through
// hookMain. Each must end cleanly (exit 0 for a stage with nothing to do, else exit 1 with one
// line naming the problem: never a stack trace, never an "internal error"), and nothing may be
// written anywhere but the log under the state root. The same runs through the real binary in
// test/integration/hook/fuzz.test.ts.
import { afterAll, describe, expect, it } from '@jest/globals';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hookMain } from '../../../hook/main.js';
import { hostileCases } from './hostile.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const COUNT = Number(process.env.FUZZ_COUNT ?? 400);

const base = mkdtempSync(path.join(os.tmpdir(), 'tsrun-fuzz-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Every file under dir, relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(path.join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]));
}

describe(`hook stdin fuzz (seed ${SEED}, ${COUNT} inputs)`, () => {
  it('every input ends in exit 0 or one clean line and exit 1, writing nothing but the log', async () => {
    const cases = hostileCases(SEED, COUNT, process.pid);
    const root = path.join(base, 'root');
    const input = path.join(base, 'input');
    const problems: string[] = [];
    const codes = { 0: 0, 1: 0 } as Record<number, number>;
    for (const [i, c] of cases.entries()) {
      writeFileSync(input, c.input);
      const fd = openSync(input, 'r');
      const err: string[] = [];
      let code: number;
      try {
        code = await hookMain(c.stage, { stdinFd: fd, env: { TSRUN_ROOT: root }, writeErr: (l) => void err.push(l) });
      } catch (e) {
        problems.push(`#${i} ${c.label}: hookMain threw ${String(e)}`);
        continue;
      } finally {
        closeSync(fd);
      }
      codes[code] = (codes[code] ?? 0) + 1;
      const out = err.join('');
      const why = (msg: string) => problems.push(`#${i} ${c.label} [${JSON.stringify(c.stage)}]: ${msg}: ${JSON.stringify(out.slice(0, 300))}`);
      if (code === 0) {
        if (out !== '') why('exit 0 but something on stderr');
      } else if (code === 1) {
        if (!/^tsrun: hook [^\n]+\n$/.test(out)) why('not exactly one line');
        if (/\n\s+at |Error: /.test(out)) why('a stack trace');
        if (/internal error/.test(out)) why('an internal error');
        if (out.length > 600) why('a line longer than 600 characters');
      } else {
        why(`exit ${code}`);
      }
    }
    if (process.env.FUZZ_VERBOSE) console.log(codes);
    expect(problems).toEqual([]);
    // Both outcomes occurred: the generator is not all garbage, nor all valid.
    expect(codes[0]).toBeGreaterThan(10);
    expect(codes[1]).toBeGreaterThan(COUNT / 2);
    expect(filesUnder(base).sort()).toEqual(['input', 'root/log/tsrun.log']);
  }, 120_000);
});
