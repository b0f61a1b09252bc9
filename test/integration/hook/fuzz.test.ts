// The hook's stdin fuzz through the real binary (the unit fuzz runs the same generator
// in-process, with more inputs): a cold `tsrun hook <stage>` process per input, inside a sandbox
// host, started from an empty working directory. Each must exit 0 silently or exit 1 with one
// clean line, print nothing on stdout, and write nothing outside its state root (where only the
// log may appear): not in its working directory, not beside the root.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SandboxHost } from '../../harness/sandbox.js';
import { hostileCases } from '../../unit/hook/hostile.js';

const SEED = Number(process.env.FUZZ_SEED ?? 4242);
const COUNT = Number(process.env.FUZZ_PROCESS_COUNT ?? 150);

let host: SandboxHost;
let outer: string;

beforeAll(async () => {
  host = await SandboxHost.create('hookfuzz');
  outer = mkdtempSync(path.join(os.tmpdir(), 'tsrun-hookfuzz-'));
});

afterAll(() => {
  host.destroy();
  rmSync(outer, { recursive: true, force: true });
});

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(path.join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]));
}

describe(`hook process fuzz (seed ${SEED}, ${COUNT} inputs)`, () => {
  it('every input: exit 0 silently, or exit 1 with one clean line; nothing written outside the state root', () => {
    // The sandbox's own pin as "our" pid: in the hook's namespace, so never wired.
    const cases = hostileCases(SEED, COUNT, host.ns.pid);
    const root = path.join(outer, 'root');
    const cwd = path.join(outer, 'cwd');
    mkdirSync(cwd);
    const problems: string[] = [];
    for (const [i, c] of cases.entries()) {
      const r = host.tsrun(['hook', c.stage], { input: c.input, cwd, env: { TSRUN_ROOT: root } });
      const why = (msg: string) => problems.push(`#${i} ${c.label} [${JSON.stringify(c.stage)}]: ${msg}: ${JSON.stringify(r.stderr.slice(0, 300))}`);
      if (r.stdout !== '') why('something on stdout');
      if (r.status === 0) {
        if (r.stderr !== '') why('exit 0 but something on stderr');
      } else if (r.status === 1) {
        if (!/^tsrun: hook [^\n]+\n$/.test(r.stderr)) why('not exactly one line');
        if (/\n\s+at |Error: |internal error/.test(r.stderr)) why('a stack trace or an internal error');
      } else {
        why(`exit ${r.status} (signal ${r.signal})`);
      }
    }
    expect(problems).toEqual([]);
    expect(readdirSync(cwd)).toEqual([]);
    expect(readdirSync(outer).sort()).toEqual(['cwd', 'root']);
    expect(filesUnder(root)).toEqual(['log/tsrun.log']);
  }, 300_000);
});
